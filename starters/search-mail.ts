// Searches one user's synced mail (lib/sync-store/search.ts): words over subject, sender,
// recipients and body text, filters by account, folder, date and flags, newest first (or most
// relevant first), one page at a time with the cursor it prints. Everything printed comes from
// mail anyone can send: the table shows it through lib/cli/printable.ts, --json escapes it.
import {
  commandMain,
  duration,
  emailAddress,
  EXIT,
  oneOf,
  positiveInteger,
  UsageError,
  type OptionValues,
} from '../lib/cli';
import { printable, printableJson } from '../lib/cli/printable';
import { searchMessages, SearchInputError, type SearchHit, type SearchQueryInput } from '../lib/sync-store/search';
import { accountIdOption, openAccountDb } from './account-common';

const spec = {
  name: 'mail:search',
  summary:
    "Search a user's synced mail: words in subject, sender, recipients and body; filters by account, folder, date and flags; newest first, a page at a time.",
  options: {
    user: { type: 'string', value: '<email>', description: 'the owner whose mail is searched', required: true },
    text: {
      type: 'string',
      short: 'q',
      value: '<words>',
      description: 'words that must all match (English forms: invoice finds invoices); "a phrase", or, -word',
    },
    account: { type: 'string', value: '<id>', description: 'only this account (npm run account:list)', multiple: true },
    folder: { type: 'string', value: '<name>', description: 'only this folder, e.g. INBOX', multiple: true },
    since: {
      type: 'string',
      value: '<date|age>',
      description: 'from this date (2026-01-31, ISO 8601) or age (7d, 12h)',
    },
    before: { type: 'string', value: '<date|age>', description: 'before this date or age' },
    flag: {
      type: 'string',
      value: '<flag>',
      description: 'only messages with this flag (\\Seen, \\Flagged, ... in any case, or a keyword)',
      multiple: true,
    },
    'without-flag': { type: 'string', value: '<flag>', description: 'only messages without this flag', multiple: true },
    unread: { type: 'boolean', description: 'only unread messages (same as --without-flag \\Seen)' },
    sort: { type: 'string', value: '<order>', description: 'newest or relevance (needs --text)', default: 'newest' },
    limit: { type: 'string', value: '<n>', description: 'messages per page (at most 200)', default: '20' },
    cursor: { type: 'string', value: '<cursor>', description: 'the next page: the cursor the previous page printed' },
    json: { type: 'boolean', description: 'print JSON (stdout only)' },
  },
  examples: [
    'npm run mail:search -- --user owner@example.com --text "quarterly invoice"',
    'npm run mail:search -- --user owner@example.com --folder INBOX --unread --since 7d',
    'npm run -s mail:search -- --user owner@example.com --text invoice --json',
  ],
  notes: [
    "Only the given user's mail is searched. A page ends with the command for the next one (--cursor); the cursor only works with the same user and filters.",
    "Flags need quoting in a shell: --flag '\\Flagged'.",
  ],
} as const;

/** A date option: an ISO 8601 date or an age before now (7d). */
function dateOption(option: string, value: string): Date {
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/i.test(value.trim())) return new Date(Date.now() - duration(option, value));
  const d = new Date(value.trim());
  if (Number.isNaN(d.getTime()))
    throw new UsageError(`--${option} ${value} is not a date: use e.g. 2026-01-31, 2026-01-31T08:00:00Z or 7d`);
  return d;
}

function toQuery(values: OptionValues<typeof spec.options>): SearchQueryInput {
  const limit = positiveInteger('limit', values.limit ?? '20');
  if (limit > 200) throw new UsageError(`--limit ${limit} is more than 200 messages per page`);
  const sort = oneOf('sort', values.sort ?? 'newest', ['newest', 'relevance'] as const);
  if (sort === 'relevance' && !values.text) throw new UsageError('--sort relevance needs --text');
  // Not split at commas (listOf would): a keyword may contain one.
  const flagValues = (v: readonly string[]) => v.map((f) => f.trim()).filter(Boolean);
  const withoutFlags = flagValues(values['without-flag']);
  if (values.unread) withoutFlags.push('\\Seen');
  return {
    ...(values.text !== undefined ? { text: values.text } : {}),
    ...(values.account.length ? { accountIds: values.account.map(accountIdOption) } : {}),
    ...(values.folder.length ? { folders: values.folder } : {}),
    ...(values.since !== undefined ? { since: dateOption('since', values.since) } : {}),
    ...(values.before !== undefined ? { before: dateOption('before', values.before) } : {}),
    flags: flagValues(values.flag),
    withoutFlags,
    sort,
    limit,
    ...(values.cursor !== undefined ? { cursor: values.cursor.trim() } : {}),
  };
}

const FLAG_LETTERS: Record<string, string> = {
  '\\Seen': 'S',
  '\\Answered': 'A',
  '\\Flagged': 'F',
  '\\Draft': 'D',
  '\\Deleted': 'X',
};

function row(h: SearchHit): string {
  const date = h.date.toISOString().slice(0, 16).replace('T', ' ');
  // Letters for system flags, + for keywords.
  const flags = [...new Set(h.flags.map((f) => FLAG_LETTERS[f] ?? (f.startsWith('\\') ? '' : '+')))].join('') || '-';
  return [
    date,
    printable(h.folder, 14).padEnd(14),
    flags.padEnd(4),
    printable(h.from, 30).padEnd(30),
    printable(h.subject ?? '(no subject)', 60),
  ].join('  ');
}

commandMain(spec, async (values) => {
  const user = emailAddress('user', values.user);
  const query = toQuery(values);
  const db = openAccountDb();
  try {
    const owner = await db.store.findUserByEmail(user);
    if (!owner) throw new Error(`No mailroom user ${user}; add an account for it with npm run account:add`);
    let result;
    try {
      result = await searchMessages(db.pool, owner.id, query);
    } catch (err) {
      if (err instanceof SearchInputError) throw new UsageError(err.message);
      throw err;
    }
    if (values.json) {
      process.stdout.write(`${printableJson(result)}\n`);
      return EXIT.done;
    }
    if (result.indexing)
      console.error(
        "Note: some of this user's messages are not indexed for search yet (run npm run db:setup to finish indexing them).",
      );
    if (!result.messages.length) {
      console.log(query.cursor ? 'No more messages.' : 'No messages match.');
      return EXIT.done;
    }
    console.log(['date (UTC)      ', 'folder'.padEnd(14), 'flag', 'from'.padEnd(30), 'subject'].join('  '));
    for (const h of result.messages) console.log(row(h));
    if (result.nextCursor) {
      console.log(`\nMore: npm run mail:search -- <the same options> --cursor ${result.nextCursor}`);
    }
    return EXIT.done;
  } finally {
    await db.close();
  }
});
