// Indexes for search the messages stored before migrations/003_search.sql: extracts their body
// text (mailparser, in Node: MIME is not parsed in SQL), canonicalises their flags and fills
// search_date and search_vector (the messages_search_fields trigger does both on the UPDATE).
//
// Batched so a large table is never locked as a whole: each batch is one short UPDATE of at
// most `batchSize` rows (row locks only, for milliseconds; sync and search go on meanwhile),
// and the MIME parsing happens before it, with no lock held. Resumable and safe to run twice
// or twice at once: it only touches rows whose search_vector is still NULL, found through the
// partial index messages_search_pending_idx, which empties as it goes. `npm run db:setup`
// (scripts/setup-db.ts) runs it after applying the migrations.
import type { Pool } from 'pg';
import { extractBodyText } from './search-text';

export interface BackfillOptions {
  /** Rows per UPDATE (one short transaction each). */
  batchSize?: number;
  /** Raw bytes read per query while a batch is assembled (memory bound: raw messages can be large). */
  maxBytesPerRead?: number;
  log?: (line: string) => void;
}

const DEADLOCK = '40P01';

async function updateBatch(pool: Pool, ids: string[], bodies: (string | null)[]): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await pool.query(
        `UPDATE messages m SET body_text = b.body, flags = m.flags
         FROM unnest($1::bigint[], $2::text[]) AS b(id, body)
         WHERE m.id = b.id AND m.search_vector IS NULL`,
        [ids, bodies],
      );
      return res.rowCount ?? 0;
    } catch (err) {
      // A sync updating the same rows' flags in another order: PostgreSQL aborts one of the two.
      if ((err as { code?: string }).code !== DEADLOCK || attempt >= 5) throw err;
    }
  }
}

/** Indexes every message not indexed yet; returns how many it indexed. */
export async function backfillSearchIndex(pool: Pool, options: BackfillOptions = {}): Promise<number> {
  const batchSize = options.batchSize ?? 500;
  const maxBytes = options.maxBytesPerRead ?? 32 * 1024 * 1024;
  const log = options.log ?? (() => {});
  let after: { userId: string; id: string } = { userId: '00000000-0000-0000-0000-000000000000', id: '0' };
  let indexed = 0;
  let lastLog = Date.now();
  for (;;) {
    const { rows } = await pool.query<{ user_id: string; id: string; bytes: number | null }>(
      `SELECT user_id, id, octet_length(raw) AS bytes FROM messages
       WHERE search_vector IS NULL AND (user_id, id) > ($1::uuid, $2::bigint)
       ORDER BY user_id, id LIMIT $3`,
      [after.userId, after.id, batchSize],
    );
    if (!rows.length) break;
    after = { userId: rows[rows.length - 1].user_id, id: rows[rows.length - 1].id };
    const ids: string[] = [];
    const bodies: (string | null)[] = [];
    // Raw bodies in groups of at most maxBytes (one message larger than that is read alone).
    for (let i = 0; i < rows.length;) {
      const group: string[] = [];
      let bytes = 0;
      while (i < rows.length && (group.length === 0 || bytes + (rows[i].bytes ?? 0) <= maxBytes)) {
        bytes += rows[i].bytes ?? 0;
        group.push(rows[i++].id);
      }
      const raws = await pool.query<{ id: string; raw: Buffer | null }>(
        'SELECT id, raw FROM messages WHERE id = ANY($1::bigint[])',
        [group],
      );
      for (const r of raws.rows) {
        ids.push(r.id);
        // No raw (stored without its body): searchable by its headers.
        bodies.push(r.raw ? await extractBodyText(r.raw) : null);
      }
    }
    // `flags = m.flags` makes the trigger canonicalise them; `search_vector IS NULL` leaves a row
    // another backfill run indexed meanwhile alone.
    indexed += await updateBatch(pool, ids, bodies);
    if (Date.now() - lastLog > 5000) {
      log(`search index backfill: ${indexed} messages indexed so far`);
      lastLog = Date.now();
    }
  }
  if (indexed) log(`search index backfill: ${indexed} messages indexed`);
  return indexed;
}
