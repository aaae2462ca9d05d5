// syncAccount: one durable sync of one IMAP account into PostgreSQL.
//
// Deterministic orchestration only; all I/O is in activities/sync.ts. The input and the
// history carry ids and counts, never passwords or message bodies. Per folder, the
// activities first reconcile stored state (UIDVALIDITY, flags, deletions), then fetch new
// mail in checkpointed batches; long syncs continue-as-new so history stays small.
//
// A rejected password is not retried: the account is marked needs_attention and the
// workflow waits for the passwordUpdated signal (sent by starters/update-password.ts). If
// none comes within authWaitSeconds it ends with status needs_attention; later runs do not
// try the old password again, they go straight to waiting.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setHandler,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities/sync';
import { ACCOUNT_ID, SYNC_STATUS } from '../lib/search-attributes';
import {
  ERR_ACCOUNT_NOT_FOUND,
  ERR_AUTH,
  ERR_SECRET_KEY,
  passwordUpdatedSignal,
  progressQuery,
  syncNowSignal,
  type FolderPlan,
  type SyncAccountInput,
  type SyncProgress,
  type SyncResult,
  type SyncStatus,
} from './sync-definitions';

type Activities = ReturnType<typeof activities.createSyncActivities>;

const DEFAULT_AUTH_WAIT_SECONDS = 7 * 24 * 3600;
const DEFAULT_HEARTBEAT_SECONDS = 30;
const DEFAULT_FETCH_CALLS_PER_RUN = 100;

const NON_RETRYABLE = [ERR_AUTH, ERR_ACCOUNT_NOT_FOUND, ERR_SECRET_KEY];

function failureType(err: unknown): string | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.type ?? undefined;
  return undefined;
}

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

export async function syncAccount(input: SyncAccountInput): Promise<SyncResult> {
  const { userId, accountId } = input;
  const options = input.options ?? {};
  const authWaitMs = (options.authWaitSeconds ?? DEFAULT_AUTH_WAIT_SECONDS) * 1000;
  const fetchCallsPerRun = options.fetchCallsPerRun ?? DEFAULT_FETCH_CALLS_PER_RUN;

  // Network errors and server timeouts: retried with exponential backoff (about 8 minutes
  // in all); after that the run is recorded as failed and the next scheduled run tries again.
  const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 8, nonRetryableErrorTypes: NON_RETRYABLE };
  const imap = proxyActivities<Activities>({
    startToCloseTimeout: '2h',
    heartbeatTimeout: `${options.heartbeatTimeoutSeconds ?? DEFAULT_HEARTBEAT_SECONDS}s`,
    retry,
  });
  const db = proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: { ...retry, maximumAttempts: 20 } });

  const resume = input.resume;
  const progress: SyncProgress = resume?.progress ?? {
    status: 'running',
    phase: 'starting',
    folder: null,
    foldersDone: 0,
    foldersTotal: 0,
    messagesStored: 0,
    messagesPending: 0,
    flagsUpdated: 0,
    messagesDeleted: 0,
    continuedAsNew: 0,
    reason: null,
  };
  let passwordUpdated = false;
  let syncNowRequested = resume?.syncNowRequested ?? false;
  setHandler(progressQuery, () => progress);
  setHandler(passwordUpdatedSignal, () => {
    passwordUpdated = true;
  });
  setHandler(syncNowSignal, () => {
    syncNowRequested = true;
  });

  const setStatus = (status: SyncStatus) => {
    progress.status = status;
    upsertSearchAttributes([
      { key: ACCOUNT_ID, value: accountId },
      { key: SYNC_STATUS, value: status },
    ]);
  };
  setStatus('running');

  const ref = { userId, accountId };
  let syncRunId: number;
  let waitReason: string | null = null;
  if (resume) {
    syncRunId = resume.syncRunId;
  } else {
    const info = workflowInfo();
    const begun = await db.beginSync({ ...ref, workflowId: info.workflowId, workflowRunId: info.runId });
    if (begun.state === 'missing' || begun.state === 'disabled' || begun.syncRunId === null) {
      setStatus('skipped');
      progress.phase = 'done';
      progress.reason = begun.reason;
      return { accountId, syncRunId: null, status: 'skipped', reason: begun.reason, folders: 0, messagesAdded: 0, messagesUpdated: 0, messagesDeleted: 0 };
    }
    syncRunId = begun.syncRunId;
    if (begun.state === 'needs_attention') waitReason = begun.reason ?? 'the IMAP server rejected the password';
  }

  const finish = async (status: 'succeeded' | 'needs_attention' | 'failed' | 'cancelled', error: string | null): Promise<SyncResult> => {
    progress.phase = 'finishing';
    const totals = await db.finishSync({ ...ref, syncRunId, status, folders: progress.foldersTotal, error });
    progress.phase = 'done';
    setCurrentDetails(`account ${accountId}: ${status}, ${progress.foldersTotal} folder(s), ${totals?.messagesAdded ?? progress.messagesStored} added, ${totals?.messagesDeleted ?? progress.messagesDeleted} deleted`);
    return {
      accountId,
      syncRunId,
      status: status === 'needs_attention' ? 'needs_attention' : 'succeeded',
      reason: status === 'needs_attention' ? error : null,
      folders: progress.foldersTotal,
      messagesAdded: totals?.messagesAdded ?? progress.messagesStored,
      messagesUpdated: totals?.messagesUpdated ?? progress.flagsUpdated,
      messagesDeleted: totals?.messagesDeleted ?? progress.messagesDeleted,
    };
  };

  let plan: FolderPlan[] | undefined = resume?.folders;
  let fetchCalls = 0;
  let continueNow = false;
  try {
    passes: for (;;) {
      try {
        if (waitReason !== null) throw ApplicationFailure.nonRetryable(waitReason, ERR_AUTH);
        if (!plan) {
          progress.phase = 'listing';
          const prepared = await imap.prepareFolders({ ...ref, syncRunId });
          plan = prepared.folders;
          progress.foldersTotal = plan.length;
          progress.foldersDone = 0;
          progress.messagesPending += plan.reduce((n, f) => n + f.pending, 0);
          // The Web UI's "current details": account and folder counts, never addresses.
          setCurrentDetails(`account ${accountId}: ${plan.length} folder(s), ${progress.messagesPending} message(s) to fetch`);
          progress.flagsUpdated += prepared.flagsUpdated;
          progress.messagesDeleted += prepared.messagesDeleted;
        }
        progress.phase = 'fetching';
        while (plan.length > 0) {
          const folder = plan[0];
          progress.folder = folder.path;
          const before = progress.messagesStored;
          const fetched = await imap.fetchNewMessages({ ...ref, syncRunId, folder: folder.path, uidValidity: folder.uidValidity });
          fetchCalls++;
          if (fetched.uidValidityChanged) {
            // The folder was recreated under us: resynchronise just that folder.
            const again = await imap.prepareFolders({ ...ref, syncRunId, only: [folder.path] });
            progress.messagesDeleted += again.messagesDeleted;
            progress.messagesPending += again.folders.reduce((n, f) => n + f.pending, 0);
            plan.splice(0, 1, ...again.folders);
            if (!again.folders.length) progress.foldersDone++;
            continue;
          }
          progress.messagesStored = before + fetched.stored;
          if (fetched.done) {
            plan.shift();
            progress.foldersDone++;
          }
          if (plan.length > 0 && (fetchCalls >= fetchCallsPerRun || workflowInfo().continueAsNewSuggested)) {
            continueNow = true;
            break passes;
          }
        }
        if (syncNowRequested) {
          // Someone asked for a sync while this one ran: one more pass picks up what
          // arrived in folders already done.
          syncNowRequested = false;
          plan = undefined;
          continue;
        }
        setStatus('succeeded');
        return await finish('succeeded', null);
      } catch (err) {
        const type = waitReason !== null ? ERR_AUTH : failureType(err);
        if (type === ERR_AUTH) {
          const reason = waitReason ?? failureMessage(err);
          waitReason = null;
          progress.reason = reason;
          progress.phase = 'waiting_for_password';
          setStatus('needs_attention');
          const updated = await condition(() => passwordUpdated, authWaitMs);
          if (!updated) return await finish('needs_attention', reason);
          passwordUpdated = false;
          progress.reason = null;
          setStatus('running');
          plan = undefined;
          continue;
        }
        if (type === ERR_ACCOUNT_NOT_FOUND) {
          setStatus('skipped');
          progress.phase = 'done';
          progress.reason = failureMessage(err);
          return { accountId, syncRunId, status: 'skipped', reason: progress.reason, folders: 0, messagesAdded: 0, messagesUpdated: 0, messagesDeleted: 0 };
        }
        throw err;
      }
    }
  } catch (err) {
    if (isCancellation(err)) {
      // Cancelled (account removed, operator): close the record even though we are cancelled.
      await CancellationScope.nonCancellable(() => finish('cancelled', 'cancelled'));
      throw err;
    }
    const message = failureMessage(err);
    setStatus('failed');
    await finish('failed', message);
    throw ApplicationFailure.nonRetryable(
      `Sync of account ${accountId} failed: ${message}. The next scheduled run retries; to retry now run: tsx starters/sync-now.ts --user <owner email> --account ${accountId}`,
      'SyncFailed',
    );
  }
  // Outside the try: continueAsNew works by throwing, which must not count as a failure.
  progress.continuedAsNew++;
  if (!continueNow || !plan) throw ApplicationFailure.nonRetryable('syncAccount: internal error, left the sync loop without a result');
  return await continueAsNew<typeof syncAccount>({ userId, accountId, options, resume: { syncRunId, folders: plan, progress, syncNowRequested } });
}
