// Folders and messages of the account-sync repository (lib/sync-store/index.ts): folder
// checkpoints, message batches, flag changes and deletions. Checkpoints move only inside the
// transaction that stores (or deletes, or re-flags) the rows they cover, so a crash at any
// point leaves the database consistent and the next attempt resumes exactly where the last
// commit stopped. Every query has `user_id = $1` in its WHERE clause.
//
// Folder names are the server's: each function stores and looks a folder up under its key
// (lib/imap/server-text.ts folderKey: NUL and lone surrogates as U+FFFD, which PostgreSQL would
// refuse), so callers pass the server's name as they got it and use it for IMAP commands.
import type { Pool, PoolClient } from 'pg';
import { withTransaction } from '../storage/db';
import { folderKey, folderLabel, serverText } from '../imap/server-text';
import { isPostgresDataError } from '../storage/pg-errors';
import { toFolderState, toStoredMessage, toSyncError, validIds } from './rows';
import { canonicalFlags } from './flags';
import { extractBodyText } from './search-text';
import { insertMessageEvents } from './events';
import {
  type FlagChange,
  type FolderState,
  type NewMessage,
  type SkippedMessage,
  type StoredMessage,
  type SyncError,
  UidValidityMismatch,
} from './types';

export interface StoreOptions {
  /**
   * Record a new-message event for each inserted message when the account has no setting of
   * its own (mail_accounts.events_enabled NULL): the worker's SYNC_EVENTS_* / SYNC_WEBHOOK_*
   * configuration says whether anything receives them.
   */
  eventsByDefault?: boolean;
}

async function lockFolder(
  db: PoolClient,
  userId: string,
  accountId: string,
  folder: string,
): Promise<FolderState | null> {
  const { rows } = await db.query(
    'SELECT folder, uidvalidity, last_uid, highest_modseq FROM folder_sync_state WHERE user_id = $1 AND account_id = $2 AND folder = $3 FOR UPDATE',
    [userId, accountId, folder],
  );
  return rows[0] ? toFolderState(rows[0]) : null;
}

// search_date and search_vector are filled by the messages_search_fields trigger (migrations/003_search.sql).
const INSERT_MESSAGE = `INSERT INTO messages (account_id, user_id, folder, uidvalidity, uid, message_id, from_address, to_addresses, subject,
                       sent_at, internal_date, flags, modseq, size, raw, raw_ref, body_text)
 VALUES ($2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
 ON CONFLICT ON CONSTRAINT messages_account_folder_uid_key DO NOTHING
 RETURNING id`;

/**
 * Inserts a batch inside the caller's transaction. With `isolate`, each message gets a
 * savepoint and one that PostgreSQL refuses for its data is returned as skipped instead of
 * failing the batch; without it (the fast path, one round trip per message) any error fails
 * the batch and the caller retries it isolated.
 */
async function insertMessages(
  db: PoolClient,
  key: { userId: string; accountId: string; folder: string; uidValidity: number },
  messages: NewMessage[],
  isolate: boolean,
): Promise<{ inserted: number; refused: SkippedMessage[]; ids: number[] }> {
  let inserted = 0;
  const refused: SkippedMessage[] = [];
  // Row ids of the messages this call inserted (not those already there): the new-message events.
  const ids: number[] = [];
  const insert = async (params: unknown[]) => {
    const res = await db.query(INSERT_MESSAGE, params);
    inserted += res.rowCount ?? 0;
    for (const r of res.rows) ids.push(Number(r.id));
  };
  for (const m of messages) {
    const params = [
      key.userId,
      key.accountId,
      key.folder,
      key.uidValidity,
      m.uid,
      m.messageId,
      m.from,
      m.to,
      m.subject,
      m.sentAt,
      m.internalDate,
      canonicalFlags(m.flags),
      m.modseq,
      m.size,
      m.raw,
      m.rawRef,
      m.bodyText ?? null,
    ];
    if (!isolate) {
      await insert(params);
      continue;
    }
    await db.query('SAVEPOINT message');
    try {
      await insert(params);
      await db.query('RELEASE SAVEPOINT message');
    } catch (err) {
      if (!isPostgresDataError(err)) throw err;
      await db.query('ROLLBACK TO SAVEPOINT message');
      const e = err as { message: string; code: string };
      refused.push({
        uid: m.uid,
        kind: 'data',
        size: m.size,
        reason: `PostgreSQL refused the message: ${e.message} (SQLSTATE ${e.code})`,
      });
    }
  }
  return { inserted, refused, ids };
}

/** Records skipped messages (once each: a retried batch adds nothing); returns how many were new. */
async function insertSkipped(
  db: PoolClient,
  key: { userId: string; accountId: string; folder: string; uidValidity: number },
  skipped: SkippedMessage[],
  syncRunId: number | undefined,
): Promise<number> {
  if (!skipped.length) return 0;
  const res = await db.query(
    `INSERT INTO sync_errors (account_id, user_id, sync_run_id, folder, uidvalidity, uid, kind, size, reason)
     SELECT $2, $1, $3, $4, $5, s.uid, s.kind, s.size, s.reason
     FROM jsonb_to_recordset($6::jsonb) AS s(uid bigint, kind text, size bigint, reason text)
     ON CONFLICT (account_id, folder, uidvalidity, uid) WHERE uid IS NOT NULL DO NOTHING`,
    [
      key.userId,
      key.accountId,
      syncRunId ?? null,
      key.folder,
      key.uidValidity,
      JSON.stringify(skipped.map((s) => ({ uid: s.uid, kind: s.kind, size: s.size, reason: serverText(s.reason) }))),
    ],
  );
  return res.rowCount ?? 0;
}

/** Adds to a sync run's counters inside the caller's transaction. */
async function bumpRun(
  db: PoolClient,
  userId: string,
  syncRunId: number | undefined,
  column: 'messages_added' | 'messages_updated' | 'messages_deleted' | 'messages_skipped',
  n: number,
): Promise<void> {
  if (!syncRunId || n === 0) return;
  await db.query(`UPDATE sync_runs SET ${column} = ${column} + $3 WHERE id = $2 AND user_id = $1`, [
    userId,
    syncRunId,
    n,
  ]);
}

export function createMessageStore(pool: Pool) {
  return {
    // --- folders ---------------------------------------------------------------------------

    async getFolderStates(userId: string, accountId: string): Promise<FolderState[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query(
        'SELECT folder, uidvalidity, last_uid, highest_modseq FROM folder_sync_state WHERE user_id = $1 AND account_id = $2 ORDER BY folder',
        [userId, accountId],
      );
      return rows.map(toFolderState);
    },

    async getFolderState(userId: string, accountId: string, folder: string): Promise<FolderState | null> {
      if (!validIds(userId, accountId)) return null;
      folder = folderKey(folder);
      const { rows } = await pool.query(
        'SELECT folder, uidvalidity, last_uid, highest_modseq FROM folder_sync_state WHERE user_id = $1 AND account_id = $2 AND folder = $3',
        [userId, accountId, folder],
      );
      return rows[0] ? toFolderState(rows[0]) : null;
    },

    /**
     * Starts (or checks) a folder's checkpoint against the server's UIDVALIDITY. When the
     * server's value changed, its UIDs mean different messages now: every stored message of
     * the folder is dropped and the checkpoint restarts from zero, in one transaction.
     */
    async beginFolder(
      userId: string,
      accountId: string,
      folder: string,
      uidValidity: number,
      syncRunId?: number,
    ): Promise<{ state: FolderState; reset: boolean; dropped: number }> {
      if (!validIds(userId, accountId))
        throw new Error(`beginFolder: account ${accountId} not found for user ${userId}`);
      folder = folderKey(folder);
      return withTransaction(pool, async (db) => {
        // Serialises with a concurrent first sync of the same folder.
        await db.query('SELECT 1 FROM mail_accounts WHERE user_id = $1 AND id = $2 FOR UPDATE', [userId, accountId]);
        const existing = await lockFolder(db, userId, accountId, folder);
        if (existing && existing.uidValidity === uidValidity) return { state: existing, reset: false, dropped: 0 };
        let dropped = 0;
        if (existing) {
          const del = await db.query('DELETE FROM messages WHERE user_id = $1 AND account_id = $2 AND folder = $3', [
            userId,
            accountId,
            folder,
          ]);
          dropped = del.rowCount ?? 0;
          // Skipped-message records name UIDs of the old UIDVALIDITY, which mean nothing now.
          await db.query(
            'DELETE FROM sync_errors WHERE user_id = $1 AND account_id = $2 AND folder = $3 AND uid IS NOT NULL',
            [userId, accountId, folder],
          );
          await bumpRun(db, userId, syncRunId, 'messages_deleted', dropped);
        }
        const { rows } = await db.query(
          `INSERT INTO folder_sync_state (account_id, user_id, folder, uidvalidity, last_uid, highest_modseq)
           SELECT id, user_id, $3, $4, 0, NULL FROM mail_accounts WHERE user_id = $1 AND id = $2
           ON CONFLICT (account_id, folder) DO UPDATE SET uidvalidity = EXCLUDED.uidvalidity, last_uid = 0, highest_modseq = NULL, updated_at = now()
           RETURNING folder, uidvalidity, last_uid, highest_modseq`,
          [userId, accountId, folder, uidValidity],
        );
        if (!rows[0]) throw new Error(`beginFolder: account ${accountId} not found for user ${userId}`);
        return { state: toFolderState(rows[0]), reset: existing !== null, dropped };
      });
    },

    /**
     * Stores one fetched batch, records the messages it skips (sync_errors) and advances the
     * folder checkpoint to `checkpointUid`, all in one transaction. Idempotent: a row that is
     * already there is left alone, a skip already recorded is not counted again. A message
     * PostgreSQL refuses for its data (SQLSTATE class 22 or 54) does not fail the batch: the
     * batch is redone with a savepoint per message and that one is recorded as skipped.
     */
    async storeMessages(
      userId: string,
      accountId: string,
      folder: string,
      uidValidity: number,
      messages: NewMessage[],
      checkpointUid: number,
      syncRunId?: number,
      skipped: SkippedMessage[] = [],
      options: StoreOptions = {},
    ): Promise<{ inserted: number; skipped: number; lastUid: number; events: number }> {
      folder = folderKey(folder);
      const key = { userId, accountId, folder, uidValidity };
      // Body text for search, parsed before the transaction so no lock waits for mailparser; one
      // message at a time, so a batch's parsed attachments are not all in memory at once.
      const withText: NewMessage[] = [];
      for (const m of messages)
        withText.push(m.bodyText !== undefined || !m.raw ? m : { ...m, bodyText: await extractBodyText(m.raw) });
      messages = withText;
      const attempt = (isolate: boolean) =>
        withTransaction(pool, async (db) => {
          const state = validIds(userId, accountId) ? await lockFolder(db, userId, accountId, folder) : null;
          if (!state)
            throw new Error(
              `storeMessages: folder "${folderLabel(folder)}" of account ${accountId} has no sync state for user ${userId}`,
            );
          if (state.uidValidity !== uidValidity)
            throw new UidValidityMismatch(
              `folder "${folderLabel(folder)}": UIDVALIDITY is now ${state.uidValidity}, not ${uidValidity}`,
            );
          const { inserted, refused, ids } = await insertMessages(db, key, messages, isolate);
          // The outbox: the events commit with their messages (lib/sync-store/events.ts).
          const events = await insertMessageEvents(db, key, ids, options.eventsByDefault ?? false);
          const newlySkipped = await insertSkipped(db, key, [...skipped, ...refused], syncRunId);
          const { rows } = await db.query(
            `UPDATE folder_sync_state SET last_uid = GREATEST(last_uid, $4), updated_at = now()
             WHERE user_id = $1 AND account_id = $2 AND folder = $3 RETURNING last_uid`,
            [userId, accountId, folder, checkpointUid],
          );
          await bumpRun(db, userId, syncRunId, 'messages_added', inserted);
          await bumpRun(db, userId, syncRunId, 'messages_skipped', newlySkipped);
          return { inserted, skipped: newlySkipped, lastUid: Number(rows[0].last_uid), events };
        });
      try {
        return await attempt(false);
      } catch (err) {
        if (!isPostgresDataError(err)) throw err;
        return attempt(true);
      }
    },

    /**
     * Records that a folder could not be synced in this run (once per run and folder: a
     * retried activity updates the reason). The folder is tried again next run.
     */
    async recordFolderError(
      userId: string,
      accountId: string,
      syncRunId: number,
      folder: string,
      reason: string,
    ): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query(
        `INSERT INTO sync_errors (account_id, user_id, sync_run_id, folder, kind, reason)
         SELECT id, user_id, $3, $4, 'folder', $5 FROM mail_accounts WHERE user_id = $1 AND id = $2
         ON CONFLICT (sync_run_id, folder) WHERE uid IS NULL DO UPDATE SET reason = EXCLUDED.reason, created_at = now()`,
        [userId, accountId, syncRunId, folderKey(folder), serverText(reason)],
      );
      return rowCount === 1;
    },

    /** Recorded sync errors of an account, newest first (of one run, when given). */
    async listSyncErrors(
      userId: string,
      accountId: string,
      options: { syncRunId?: number; limit?: number } = {},
    ): Promise<SyncError[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query(
        `SELECT * FROM sync_errors WHERE user_id = $1 AND account_id = $2 AND ($3::bigint IS NULL OR sync_run_id = $3)
         ORDER BY created_at DESC, id DESC LIMIT $4`,
        [userId, accountId, options.syncRunId ?? null, options.limit ?? 100],
      );
      return rows.map(toSyncError);
    },

    /**
     * Applies server flags to stored messages (only rows whose flags differ count as updated)
     * and records the HIGHESTMODSEQ they were read at, together.
     */
    async applyFlagChanges(
      userId: string,
      accountId: string,
      folder: string,
      uidValidity: number,
      changes: FlagChange[],
      highestModseq: string | null,
      syncRunId?: number,
    ): Promise<number> {
      folder = folderKey(folder);
      return withTransaction(pool, async (db) => {
        const state = validIds(userId, accountId) ? await lockFolder(db, userId, accountId, folder) : null;
        if (!state)
          throw new Error(
            `applyFlagChanges: folder "${folderLabel(folder)}" of account ${accountId} has no sync state for user ${userId}`,
          );
        if (state.uidValidity !== uidValidity)
          throw new UidValidityMismatch(
            `folder "${folderLabel(folder)}": UIDVALIDITY is now ${state.uidValidity}, not ${uidValidity}`,
          );
        let updated = 0;
        if (changes.length) {
          const res = await db.query(
            `UPDATE messages m SET flags = c.flags, modseq = COALESCE(c.modseq, m.modseq), updated_at = now()
             FROM (SELECT * FROM jsonb_to_recordset($5::jsonb) AS x(uid bigint, flags text[], modseq bigint)) c
             WHERE m.user_id = $1 AND m.account_id = $2 AND m.folder = $3 AND m.uidvalidity = $4 AND m.uid = c.uid
               AND m.flags IS DISTINCT FROM c.flags`,
            [
              userId,
              accountId,
              folder,
              uidValidity,
              JSON.stringify(changes.map((c) => ({ uid: c.uid, flags: canonicalFlags(c.flags), modseq: c.modseq }))),
            ],
          );
          updated = res.rowCount ?? 0;
        }
        await db.query(
          'UPDATE folder_sync_state SET highest_modseq = $4, updated_at = now() WHERE user_id = $1 AND account_id = $2 AND folder = $3',
          [userId, accountId, folder, highestModseq],
        );
        await bumpRun(db, userId, syncRunId, 'messages_updated', updated);
        return updated;
      });
    },

    /**
     * Deletes stored messages up to `upToUid` whose UID the server no longer has. Bounded by
     * upToUid (the checkpoint when the server's UID list was read) so a message stored after
     * that list was taken is never mistaken for a deleted one.
     */
    async deleteMissingMessages(
      userId: string,
      accountId: string,
      folder: string,
      uidValidity: number,
      serverUids: number[],
      upToUid: number,
      syncRunId?: number,
    ): Promise<number> {
      if (!validIds(userId, accountId)) return 0;
      folder = folderKey(folder);
      return withTransaction(pool, async (db) => {
        const res = await db.query(
          `DELETE FROM messages WHERE user_id = $1 AND account_id = $2 AND folder = $3 AND uidvalidity = $4 AND uid <= $5
             AND NOT (uid = ANY($6::bigint[]))`,
          [userId, accountId, folder, uidValidity, upToUid, serverUids],
        );
        const deleted = res.rowCount ?? 0;
        await bumpRun(db, userId, syncRunId, 'messages_deleted', deleted);
        return deleted;
      });
    },

    /** Forgets folders the server no longer lists (deleted or renamed), with their messages. */
    async removeFoldersExcept(
      userId: string,
      accountId: string,
      folders: string[],
      syncRunId?: number,
    ): Promise<{ folders: string[]; messages: number }> {
      if (!validIds(userId, accountId)) return { folders: [], messages: 0 };
      folders = folders.map(folderKey);
      return withTransaction(pool, async (db) => {
        const gone = await db.query(
          'DELETE FROM folder_sync_state WHERE user_id = $1 AND account_id = $2 AND NOT (folder = ANY($3::text[])) RETURNING folder',
          [userId, accountId, folders],
        );
        const msgs = await db.query(
          'DELETE FROM messages WHERE user_id = $1 AND account_id = $2 AND NOT (folder = ANY($3::text[]))',
          [userId, accountId, folders],
        );
        await db.query(
          'DELETE FROM sync_errors WHERE user_id = $1 AND account_id = $2 AND uid IS NOT NULL AND NOT (folder = ANY($3::text[]))',
          [userId, accountId, folders],
        );
        await bumpRun(db, userId, syncRunId, 'messages_deleted', msgs.rowCount ?? 0);
        return { folders: gone.rows.map((r) => r.folder as string), messages: msgs.rowCount ?? 0 };
      });
    },

    // --- messages --------------------------------------------------------------------------

    async listMessages(userId: string, accountId: string, folder?: string): Promise<StoredMessage[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query(
        `SELECT id, account_id, folder, uidvalidity, uid, message_id, from_address, to_addresses, subject, sent_at, internal_date,
                flags, modseq, size, raw_ref, raw IS NOT NULL AS has_raw
         FROM messages WHERE user_id = $1 AND account_id = $2 AND ($3::text IS NULL OR folder = $3)
         ORDER BY folder, uid`,
        [userId, accountId, folder === undefined ? null : folderKey(folder)],
      );
      return rows.map(toStoredMessage);
    },

    async getMessageRaw(userId: string, messageId: number): Promise<Buffer | null> {
      if (!validIds(userId) || !Number.isSafeInteger(messageId)) return null;
      const { rows } = await pool.query('SELECT raw FROM messages WHERE user_id = $1 AND id = $2', [userId, messageId]);
      return rows[0]?.raw ?? null;
    },

    async deleteMessage(userId: string, messageId: number): Promise<boolean> {
      if (!validIds(userId) || !Number.isSafeInteger(messageId)) return false;
      const { rowCount } = await pool.query('DELETE FROM messages WHERE user_id = $1 AND id = $2', [userId, messageId]);
      return rowCount === 1;
    },
  };
}
