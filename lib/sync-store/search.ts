// Search over synced mail, for one user: full text over subject, sender, recipients and body
// text (messages.search_vector, migrations/003_search.sql), filters by account, folder, date
// and flags, newest first (or most relevant first) with an opaque cursor. What a web front end
// calls (searchMessages) and what `npm run mail:search` prints.
//
// Isolation: every query has `m.user_id = $1`; an account id, folder or cursor of another user
// matches nothing. A cursor also carries a fingerprint of the user and the search it belongs to
// and is refused for any other (SearchInputError), so a cursor copied from another user's
// results, or from another search, is an error rather than a silent wrong page.
//
// Stability: results are ordered by (search_date, id) descending (with the rank first when
// sorting by relevance) and the cursor is the last row's position, so rows inserted while a
// user pages (new mail, newer than the first page) never shift or repeat the pages after it.
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { z } from 'zod';
import { canonicalFlag } from './flags';
import { validIds } from './rows';
import { folderKey } from '../imap/server-text';
import { cleanText } from './storable';

/** The text search configuration of the index (migrations/003_search.sql); queries must use the same. */
export const SEARCH_CONFIG = 'english';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const flagList = z
  .array(z.string().trim().min(1).max(255))
  .max(20)
  .default([])
  .transform((flags) => [...new Set(flags.map(canonicalFlag))]);

const date = z.coerce.date().refine((d) => d.getUTCFullYear() >= 1 && d.getUTCFullYear() <= 9999, 'out of range');

/** A search as a front end sends it; validated by searchMessages (errors: SearchInputError). */
export const searchQuerySchema = z
  .object({
    /** Web-search syntax: words (all must match), "a phrase", `or`, -word to exclude. */
    text: z
      .string()
      .max(1000)
      .transform((t) => cleanText(t).trim())
      .optional(),
    accountIds: z
      .array(z.string().regex(UUID, 'not an account id (a UUID)'))
      .max(100)
      .transform((ids) => ids.map((i) => i.toLowerCase()))
      .optional(),
    folders: z
      .array(z.string().min(1).max(1000))
      .max(100)
      // The key folders are stored under (NUL and lone surrogates made U+FFFD), so a folder
      // whose server name held them is found by that name too.
      .transform((f) => f.map((x) => folderKey(x)))
      .optional(),
    /** From this instant on (inclusive). */
    since: date.optional(),
    /** Before this instant (exclusive). */
    before: date.optional(),
    /** Messages with every one of these flags (system flags in any case: `\seen` is `\Seen`). */
    flags: flagList,
    /** Messages with none of these flags (`\Seen` here: unread mail). */
    withoutFlags: flagList,
    sort: z.enum(['newest', 'relevance']).default('newest'),
    limit: z.number().int().min(1).max(200).default(50),
    /** nextCursor of the previous page. */
    cursor: z.string().min(1).max(1000).optional(),
  })
  .strict()
  .refine((q) => !(q.since && q.before) || q.since < q.before, {
    message: 'since must be before before',
    path: ['since'],
  })
  .refine((q) => q.sort !== 'relevance' || !!q.text, { message: 'relevance needs a text query', path: ['sort'] });

export type SearchQueryInput = z.input<typeof searchQuerySchema>;
export type SearchQuery = z.output<typeof searchQuerySchema>;

export class SearchInputError extends Error {
  override name = 'SearchInputError';
}

export interface SearchHit {
  id: number;
  accountId: string;
  folder: string;
  uid: number;
  messageId: string | null;
  from: string | null;
  to: string[];
  subject: string | null;
  /** INTERNALDATE (else the Date header, else when stored): what results are ordered by. */
  date: Date;
  flags: string[];
  size: number | null;
  /** ts_rank of the text query (subject counts most, then sender, recipients, body); null without text. */
  rank: number | null;
  /** The beginning of the body text (whitespace collapsed). */
  excerpt: string;
}

export interface SearchResult {
  messages: SearchHit[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
  /** Some of the user's messages are not indexed yet (the backfill after migration 003 is still running). */
  indexing: boolean;
}

interface Cursor {
  /** Fingerprint of user and search. */
  k: string;
  /** search_date as PostgreSQL prints it (microseconds kept: a JavaScript Date would lose them). */
  d: string;
  i: string;
  /** Rank as PostgreSQL prints a real (exact round trip), when sorting by relevance. */
  r?: string;
}

function fingerprint(userId: string, q: SearchQuery): string {
  const key = JSON.stringify([
    userId.toLowerCase(),
    q.text ?? null,
    [...(q.accountIds ?? [])].sort(),
    q.folders ? [...q.folders].sort() : null,
    q.since?.toISOString() ?? null,
    q.before?.toISOString() ?? null,
    [...q.flags].sort(),
    [...q.withoutFlags].sort(),
    q.sort,
  ]);
  return createHash('sha256').update(key).digest('base64url').slice(0, 22);
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(value: string, expected: string, sort: SearchQuery['sort']): Cursor {
  let c: Partial<Cursor>;
  try {
    c = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Partial<Cursor>;
  } catch {
    c = {};
  }
  const valid =
    typeof c === 'object' &&
    c !== null &&
    typeof c.k === 'string' &&
    typeof c.d === 'string' &&
    !Number.isNaN(Date.parse(c.d)) &&
    typeof c.i === 'string' &&
    /^\d{1,19}$/.test(c.i) &&
    (sort === 'relevance' ? typeof c.r === 'string' && Number.isFinite(Number(c.r)) : c.r === undefined);
  if (!valid) throw new SearchInputError('cursor is not a cursor of this search (pass nextCursor as it was returned)');
  if (c.k !== expected)
    throw new SearchInputError(
      'cursor belongs to another search (other user, text or filters); start again without a cursor',
    );
  return c as Cursor;
}

/** Validates a search; SearchInputError names every field that is wrong. */
export function parseSearchQuery(input: unknown): SearchQuery {
  const parsed = searchQuerySchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`);
    throw new SearchInputError(`invalid search: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * One page of the user's messages matching `input`, newest first (or most relevant first).
 * Only messages of `userId`: another user's account id, folder or cursor finds nothing.
 */
export async function searchMessages(db: Pool, userId: string, input: SearchQueryInput): Promise<SearchResult> {
  const q = parseSearchQuery(input);
  if (!validIds(userId)) return { messages: [], nextCursor: null, indexing: false };
  const key = fingerprint(userId, q);
  const params: unknown[] = [userId];
  const p = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const where = ['m.user_id = $1', 'm.search_vector IS NOT NULL'];
  let tsquery: string | null = null;
  if (q.text) {
    // websearch_to_tsquery never fails on user input (unbalanced quotes, stray operators).
    tsquery = `websearch_to_tsquery('${SEARCH_CONFIG}'::regconfig, ${p(q.text)})`;
    where.push(`m.search_vector @@ ${tsquery}`);
  }
  if (q.accountIds) where.push(`m.account_id = ANY(${p(q.accountIds)}::uuid[])`);
  if (q.folders) where.push(`m.folder = ANY(${p(q.folders)}::text[])`);
  if (q.since) where.push(`m.search_date >= ${p(q.since)}`);
  if (q.before) where.push(`m.search_date < ${p(q.before)}`);
  if (q.flags.length) where.push(`m.flags @> ${p(q.flags)}::text[]`);
  if (q.withoutFlags.length) where.push(`NOT (m.flags && ${p(q.withoutFlags)}::text[])`);

  const rankExpr = tsquery ? `ts_rank(m.search_vector, ${tsquery})` : 'NULL::real';
  let order = 'm.search_date DESC, m.id DESC';
  if (q.cursor) {
    const c = decodeCursor(q.cursor, key, q.sort);
    if (q.sort === 'relevance') {
      where.push(`(${rankExpr}, m.search_date, m.id) < (${p(c.r)}::real, ${p(c.d)}::timestamptz, ${p(c.i)}::bigint)`);
    } else {
      where.push(`(m.search_date, m.id) < (${p(c.d)}::timestamptz, ${p(c.i)}::bigint)`);
    }
  }
  if (q.sort === 'relevance') order = `${rankExpr} DESC, ${order}`;

  // One row more than the page tells whether there is a next page. The rank and the excerpt are
  // computed for the page's rows only (outside the LIMIT), not for every match; substr reads only
  // the beginning of a compressed body.
  const limit = p(q.limit + 1);
  const sql = `
    SELECT page.id, page.account_id, page.folder, page.uid, page.message_id, page.from_address, page.to_addresses,
           page.subject, page.search_date, page.date_text, page.flags, page.size,
           ${tsquery ? `ts_rank(page.search_vector, ${tsquery})::text` : 'NULL'} AS rank_text,
           substr(page.body_text, 1, 200) AS excerpt
    FROM (
      SELECT m.id, m.account_id, m.folder, m.uid, m.message_id, m.from_address, m.to_addresses, m.subject,
             m.search_date, to_char(m.search_date AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS date_text,
             m.flags, m.size, m.body_text${tsquery ? ', m.search_vector' : ''}
      FROM messages m
      WHERE ${where.join('\n        AND ')}
      ORDER BY ${order}
      LIMIT ${limit}
    ) page`;
  const [{ rows }, pending] = await Promise.all([
    db.query(sql, params),
    db.query('SELECT EXISTS (SELECT 1 FROM messages WHERE user_id = $1 AND search_vector IS NULL) AS pending', [
      userId,
    ]),
  ]);
  // The outer SELECT keeps the inner order (a subquery's ORDER BY + LIMIT; no join or sort above it).
  const page = rows.slice(0, q.limit);
  const hits: SearchHit[] = page.map((r) => ({
    id: Number(r.id),
    accountId: r.account_id as string,
    folder: r.folder as string,
    uid: Number(r.uid),
    messageId: (r.message_id as string | null) ?? null,
    from: (r.from_address as string | null) ?? null,
    to: (r.to_addresses as string[]) ?? [],
    subject: (r.subject as string | null) ?? null,
    date: r.search_date as Date,
    flags: (r.flags as string[]) ?? [],
    size: (r.size as number | null) ?? null,
    rank: tsquery ? Number(r.rank_text) : null,
    excerpt: (r.excerpt as string | null) ?? '',
  }));
  let nextCursor: string | null = null;
  if (rows.length > q.limit) {
    const last = page[page.length - 1];
    nextCursor = encodeCursor({
      k: key,
      d: last.date_text as string,
      i: String(last.id),
      ...(q.sort === 'relevance' ? { r: last.rank_text as string } : {}),
    });
  }
  return { messages: hits, nextCursor, indexing: Boolean(pending.rows[0].pending) };
}
