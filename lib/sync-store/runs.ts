// Sync runs of the account-sync repository (lib/sync-store/index.ts): one row per sync, begun
// and finished by the sync activities, listed by the account starters.
import type { Pool } from 'pg';
import { serverText } from '../imap/server-text';
import { toRun, validIds } from './rows';
import type { SyncRun, SyncRunStatus } from './types';

export function createRunStore(pool: Pool) {
  return {
    // --- sync runs -------------------------------------------------------------------------

    /** Records the start of a sync; idempotent per workflow run, so an activity retry adds no row. */
    async beginSyncRun(
      userId: string,
      accountId: string,
      workflowId: string,
      workflowRunId: string,
    ): Promise<number | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        `INSERT INTO sync_runs (account_id, user_id, workflow_id, workflow_run_id)
         SELECT id, user_id, $3, $4 FROM mail_accounts WHERE user_id = $1 AND id = $2
         ON CONFLICT (workflow_run_id) DO UPDATE SET workflow_id = EXCLUDED.workflow_id
         RETURNING id`,
        [userId, accountId, workflowId, workflowRunId],
      );
      return rows[0] ? Number(rows[0].id) : null;
    },

    /**
     * One sync of an account at a time: opens this run's record unless another run of the
     * account is still recorded as running, which is returned instead. The account's row is
     * locked for the check, so two syncs starting together cannot both go ahead. Idempotent per
     * workflow run like beginSyncRun. `supersede`: a run the caller found gone (its workflow is
     * closed) is closed as failed first.
     */
    async claimSyncRun(
      userId: string,
      accountId: string,
      workflowId: string,
      workflowRunId: string,
      supersede?: number,
    ): Promise<{ id: number } | { running: { workflowId: string; syncRunId: number } } | null> {
      if (!validIds(userId, accountId)) return null;
      const db = await pool.connect();
      let failed: Error | undefined;
      try {
        await db.query('BEGIN');
        const account = await db.query('SELECT id FROM mail_accounts WHERE user_id = $1 AND id = $2 FOR UPDATE', [
          userId,
          accountId,
        ]);
        if (!account.rows[0]) {
          await db.query('ROLLBACK');
          return null;
        }
        const own = await db.query('SELECT id FROM sync_runs WHERE workflow_run_id = $1', [workflowRunId]);
        if (own.rows[0]) {
          await db.query('COMMIT');
          return { id: Number(own.rows[0].id) };
        }
        if (supersede !== undefined)
          await db.query(
            `UPDATE sync_runs SET status = 'failed', finished_at = now(),
               error = 'abandoned: its workflow ended without closing this record (terminated?)'
             WHERE user_id = $1 AND account_id = $2 AND id = $3 AND status = 'running'`,
            [userId, accountId, supersede],
          );
        const other = await db.query(
          `SELECT id, workflow_id FROM sync_runs WHERE user_id = $1 AND account_id = $2 AND status = 'running'
           ORDER BY started_at DESC LIMIT 1`,
          [userId, accountId],
        );
        if (other.rows[0]) {
          await db.query('COMMIT');
          return { running: { workflowId: String(other.rows[0].workflow_id), syncRunId: Number(other.rows[0].id) } };
        }
        const inserted = await db.query(
          `INSERT INTO sync_runs (account_id, user_id, workflow_id, workflow_run_id) VALUES ($2, $1, $3, $4) RETURNING id`,
          [userId, accountId, workflowId, workflowRunId],
        );
        await db.query('COMMIT');
        return { id: Number(inserted.rows[0].id) };
      } catch (err) {
        failed = err as Error;
        await db.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        // A connection that failed mid-transaction (PostgreSQL cut) is not given back to the pool.
        db.release(failed);
      }
    },

    async finishSyncRun(
      userId: string,
      syncRunId: number,
      outcome: { status: Exclude<SyncRunStatus, 'running'>; folders?: number; error?: string | null },
    ): Promise<SyncRun | null> {
      if (!validIds(userId)) return null;
      const { rows } = await pool.query(
        `UPDATE sync_runs SET status = $3, finished_at = now(), folders = COALESCE($4, folders), error = $5
         WHERE user_id = $1 AND id = $2 RETURNING *`,
        // The error quotes servers (folder names, NO texts): recording it must not fail.
        [
          userId,
          syncRunId,
          outcome.status,
          outcome.folders ?? null,
          outcome.error === null || outcome.error === undefined ? null : serverText(outcome.error, 4000),
        ],
      );
      return rows[0] ? toRun(rows[0]) : null;
    },

    /**
     * Retention: deletes the account's finished runs started more than `keepDays` ago, except
     * its `keepLast` newest (an account that syncs rarely keeps its history). Running records
     * are never deleted; sync_errors keep their rows (their sync_run_id becomes NULL).
     * Returns how many were deleted.
     */
    async pruneSyncRuns(
      userId: string,
      accountId: string,
      retention: { keepDays: number; keepLast: number },
    ): Promise<number> {
      if (!validIds(userId, accountId)) return 0;
      const { rowCount } = await pool.query(
        `DELETE FROM sync_runs r
         WHERE r.user_id = $1 AND r.account_id = $2 AND r.status <> 'running'
           AND r.started_at < now() - make_interval(days => $3)
           AND r.id NOT IN (
             SELECT id FROM sync_runs WHERE user_id = $1 AND account_id = $2
             ORDER BY started_at DESC, id DESC LIMIT $4)`,
        [userId, accountId, retention.keepDays, retention.keepLast],
      );
      return rowCount ?? 0;
    },

    async listSyncRuns(userId: string, accountId: string, limit = 20): Promise<SyncRun[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query(
        'SELECT * FROM sync_runs WHERE user_id = $1 AND account_id = $2 ORDER BY started_at DESC, id DESC LIMIT $3',
        [userId, accountId, limit],
      );
      return rows.map(toRun);
    },
  };
}
