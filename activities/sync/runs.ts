// The sync_runs record of one sync: opened by beginSync (which also says whether the account
// can be synced now), folder errors recorded, closed by finishSync with its final counts.
import type pino from 'pino';
import { syncFolderErrors } from '../../lib/observability/sync-metrics';
import type { Store, SyncRunStatus } from '../../lib/sync-store';
import type { MessageEvents } from './events';
import type { Sessions } from './session';
import type { AccountRef, BeginSyncResult } from './types';

/** Runs kept per account whatever their age (SYNC_RUNS_KEEP_DAYS prunes the older ones beyond these). */
export const SYNC_RUNS_KEEP_LAST = 20;

export function createSyncRunActivities({
  store,
  events,
  sessions,
  keepDays = 0,
  log,
}: {
  store: Store;
  events?: Pick<MessageEvents, 'dispatch'>;
  /** The run's parked IMAP connection is closed in finishSync. */
  sessions?: Pick<Sessions, 'dropParked'>;
  /** SYNC_RUNS_KEEP_DAYS: finishSync prunes the account's older runs; 0 keeps every run. */
  keepDays?: number;
  log?: Pick<pino.Logger, 'warn'>;
}) {
  return {
    /** Opens a sync_runs record and tells the workflow whether the account can be synced now. */
    async beginSync(
      input: AccountRef & {
        workflowId: string;
        workflowRunId: string;
        /** One sync of the account at a time: 'busy' when another is recorded as running (SYNC_EXCLUSIVE_PATCH). */
        exclusive?: boolean;
        /** A running record whose workflow the caller found closed: closed as failed first. */
        supersede?: number;
      },
    ): Promise<BeginSyncResult> {
      const account = await store.getAccount(input.userId, input.accountId);
      if (!account) return { syncRunId: null, state: 'missing', reason: `account ${input.accountId} does not exist` };
      if (!account.enabled)
        return { syncRunId: null, state: 'disabled', reason: `account ${input.accountId} is disabled` };
      let syncRunId: number | null;
      if (input.exclusive) {
        const claim = await store.claimSyncRun(
          input.userId,
          input.accountId,
          input.workflowId,
          input.workflowRunId,
          input.supersede,
        );
        if (claim && 'running' in claim)
          return {
            syncRunId: null,
            state: 'busy',
            reason: `sync ${claim.running.workflowId} of account ${input.accountId} is running`,
            running: claim.running,
          };
        syncRunId = claim?.id ?? null;
      } else {
        syncRunId = await store.beginSyncRun(input.userId, input.accountId, input.workflowId, input.workflowRunId);
      }
      if (syncRunId === null)
        return { syncRunId: null, state: 'missing', reason: `account ${input.accountId} does not exist` };
      if (account.status === 'needs_attention')
        return { syncRunId, state: 'needs_attention', reason: account.statusReason, authMethod: account.authMethod };
      return { syncRunId, state: 'ready', reason: null, authMethod: account.authMethod };
    },

    /** Records that a folder could not be synced in this run (its fetch failed after every retry). */
    async recordFolderError(input: AccountRef & { syncRunId: number; folder: string; reason: string }): Promise<void> {
      await store.recordFolderError(input.userId, input.accountId, input.syncRunId, input.folder, input.reason);
      syncFolderErrors.inc();
    },

    /** Closes the sync_runs record; its counters were kept up to date by each transaction. */
    async finishSync(
      input: AccountRef & {
        syncRunId: number;
        status: Exclude<SyncRunStatus, 'running'>;
        folders?: number;
        error?: string | null;
      },
    ) {
      await sessions?.dropParked(input.accountId);
      const run = await store.finishSyncRun(input.userId, input.syncRunId, {
        status: input.status,
        folders: input.folders,
        error: input.error,
      });
      // New-message events a fetch left pending (a crash, Temporal unreachable): sent now.
      await events?.dispatch(input, { deadlineMs: 20_000 });
      // With a watcher an account gets a run per burst of new mail: the old ones go here, a few
      // rows at a time (an index range on the account), so the table stays the size of its window.
      if (keepDays > 0)
        await store
          .pruneSyncRuns(input.userId, input.accountId, { keepDays, keepLast: SYNC_RUNS_KEEP_LAST })
          .catch((err: unknown) =>
            log?.warn({ accountId: input.accountId, err: (err as Error).message }, 'old sync runs not pruned'),
          );
      return run
        ? {
            messagesAdded: run.messagesAdded,
            messagesUpdated: run.messagesUpdated,
            messagesDeleted: run.messagesDeleted,
            messagesSkipped: run.messagesSkipped,
            folders: run.folders,
          }
        : null;
    },
  };
}
