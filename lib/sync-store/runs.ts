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
