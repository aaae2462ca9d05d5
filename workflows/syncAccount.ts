// syncAccount: one durable sync of one IMAP account into PostgreSQL.
//
// Deterministic orchestration only; all I/O is in activities/sync.ts. The input and the
// history carry ids and counts, never passwords or message bodies. Per folder, the
// activities first reconcile stored state (UIDVALIDITY, flags, deletions), then fetch new
// mail in checkpointed batches; long syncs continue-as-new so history stays small.
//
// A rejected password (or a revoked OAuth2 refresh token) is not retried: the account is
// marked needs_attention and the workflow waits for the passwordUpdated or credentialsUpdated
// signal (sent by update-password and set-token). If none comes within authWaitSeconds it ends
// with status needs_attention; later runs do not try the old credential again, they go
// straight to waiting.
//
// A folder whose fetch still fails after every retry (a server that stalls, drips or answers
// beyond our limits in that folder) is recorded in sync_errors and the sync goes on with the
// other folders; the run ends 'partial' (patch FOLDER_ERRORS_PATCH).
//
// One sync of an account at a time (patch SYNC_EXCLUSIVE_PATCH): the IDLE watcher starts syncs
// under the account's fixed id (signal-with-start, `folders: ['INBOX']`), the Schedule under its
// own ids. A run that finds another sync of the account recorded as running signals it (syncNow,
// with the folders it was asked for) and ends 'skipped'; that one makes one more pass. A
// syncNow that arrives while the run is finishing is not lost: the run continues as new.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities/sync';
import { ACCOUNT_ID, SYNC_STATUS } from '../contracts/search-attributes';
import {
  credentialsUpdatedSignal,
  ERR_ACCOUNT_NOT_FOUND,
  ERR_AUTH,
  ERR_SECRET_KEY,
  FOLDER_LEVEL_ERRORS,
  passwordUpdatedSignal,
  type AuthFailureDetails,
  progressQuery,
  syncNowSignal,
  type FolderPlan,
  type SyncAccountInput,
  type SyncNowRequest,
  type SyncProgress,
  type SyncResult,
  type SyncStatus,
} from '../contracts/sync';

type Activities = ReturnType<typeof activities.createSyncActivities>;

const DEFAULT_AUTH_WAIT_SECONDS = 7 * 24 * 3600;
const DEFAULT_HEARTBEAT_SECONDS = 30;
const DEFAULT_FETCH_CALLS_PER_RUN = 100;

const NON_RETRYABLE = [ERR_AUTH, ERR_ACCOUNT_NOT_FOUND, ERR_SECRET_KEY];
/** Record a folder whose fetch failed after every retry, and go on with the others. */
export const FOLDER_ERRORS_PATCH = 'sync-folder-errors-continue';
/** One sync of an account at a time, syncNow by folder, no request lost while finishing (see above). */
export const SYNC_EXCLUSIVE_PATCH = 'sync-one-at-a-time';

/** beginSync, recordFolderError and finishSync as local activities (each is idempotent per run). */
export const SYNC_LOCAL_RECORDS_PATCH = 'sync-local-records';

/** What syncNow asked for beyond the pass being run: every folder, or these. */
interface Pending {
  all: boolean;
  folders: Set<string>;
}

function addRequest(pending: Pending, req: SyncNowRequest | undefined): void {
  if (req?.folders?.length) for (const f of req.folders) pending.folders.add(f);
  else pending.all = true;
}

const isPending = (p: Pending) => p.all || p.folders.size > 0;
/** The request a pending set stands for (no folders: every folder). */
const asRequest = (p: Pending): SyncNowRequest => (p.all ? {} : { folders: [...p.folders] });

function failureType(err: unknown): string | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.type ?? undefined;
  return undefined;
}

function failureAuthMethod(err: unknown): AuthFailureDetails['authMethod'] | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure)
    return (err.cause.details?.[0] as AuthFailureDetails | undefined)?.authMethod;
  return undefined;
}

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

export async function syncAccount(input: SyncAccountInput): Promise<SyncResult> {
  const { userId, accountId } = input;
  const options = input.options ?? {};
  // Decided once per run, before the first command; runs begun by older code keep their behaviour.
  const exclusive = patched(SYNC_EXCLUSIVE_PATCH);
  const localRecords = patched(SYNC_LOCAL_RECORDS_PATCH);
  const authWaitMs = (options.authWaitSeconds ?? DEFAULT_AUTH_WAIT_SECONDS) * 1000;
  const fetchCallsPerRun = options.fetchCallsPerRun ?? DEFAULT_FETCH_CALLS_PER_RUN;

  // Network errors and server timeouts: retried with exponential backoff (about 8 minutes
  // in all); after that the run is recorded as failed and the next scheduled run tries again.
  const retry = {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '2m',
    maximumAttempts: options.imapMaxAttempts ?? 8,
    nonRetryableErrorTypes: NON_RETRYABLE,
  };
  const imap = proxyActivities<Activities>({
    startToCloseTimeout: '2h',
    heartbeatTimeout: `${options.heartbeatTimeoutSeconds ?? DEFAULT_HEARTBEAT_SECONDS}s`,
    retry,
  });
  const dbOptions = { startToCloseTimeout: '1m', retry: { ...retry, maximumAttempts: 20 } } as const;
  // The sync record's steps (beginSync, recordFolderError, finishSync) are short PostgreSQL
  // writes: as local activities they cost no task-queue round trip and no workflow task of their
  // own (SYNC_LOCAL_RECORDS_PATCH). A watcher's INBOX sync is then two workflow tasks fewer.
  const db = localRecords ? proxyLocalActivities<Activities>(dbOptions) : proxyActivities<Activities>(dbOptions);
  const failedFolders: string[] = [...(input.resume?.failedFolders ?? [])];

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
  // SYNC_EXCLUSIVE_PATCH: what this run is asked to sync next (a new run: its input's folders).
  const pending: Pending = resume
    ? {
        all: resume.pending?.all ?? syncNowRequested,
        folders: new Set(resume.pending?.folders ?? []),
      }
    : { all: !input.folders?.length, folders: new Set(input.folders ?? []) };
  // The folders of the pass being run, kept if the pass starts over (a new credential); a
  // continued run's pass, should it start over, covers every folder.
  const current: Pending = { all: resume !== undefined, folders: new Set() };
  setHandler(progressQuery, () => progress);
  setHandler(passwordUpdatedSignal, () => {
    passwordUpdated = true;
  });
  // The same for any credential (an OAuth2 refresh token from set-token).
  setHandler(credentialsUpdatedSignal, () => {
    passwordUpdated = true;
  });
  setHandler(syncNowSignal, (req?: SyncNowRequest) => {
    syncNowRequested = true;
    if (exclusive) addRequest(pending, req);
  });

  const setStatus = (status: SyncStatus) => {
    progress.status = status;
    upsertSearchAttributes([
      { key: ACCOUNT_ID, value: accountId },
      { key: SYNC_STATUS, value: status },
    ]);
  };
  setStatus('running');
  /** Ends the run without syncing (account gone or disabled, another sync joined): why, and nothing counted. */
  const skipped = (reason: string | null, runId: number | null): SyncResult => {
    setStatus('skipped');
    progress.phase = 'done';
    progress.reason = reason;
    return {
      accountId,
      syncRunId: runId,
      status: 'skipped',
      reason,
      folders: 0,
      messagesAdded: 0,
      messagesUpdated: 0,
      messagesDeleted: 0,
    };
  };

  const ref = { userId, accountId };
  let syncRunId: number;
  let waitReason: string | null = null;
  let authMethod: AuthFailureDetails['authMethod'] = 'password';
  if (resume) {
    syncRunId = resume.syncRunId;
  } else {
    const info = workflowInfo();
    const run = { ...ref, workflowId: info.workflowId, workflowRunId: info.runId };
    let begun = await db.beginSync(exclusive ? { ...run, exclusive } : run);
    for (let tries = 0; begun.state === 'busy' && begun.running; tries++) {
      const other = begun.running;
      if (other.workflowId !== info.workflowId && tries < 3) {
        try {
          // That sync makes one more pass with what this run was asked for.
          await getExternalWorkflowHandle(other.workflowId).signal(syncNowSignal, asRequest(pending));
          const reason = `joined sync ${other.workflowId} of account ${accountId}, which was running: it makes one more pass`;
          const result = skipped(reason, null);
          setCurrentDetails(`account ${accountId}: ${reason}`);
          return result;
        } catch (err) {
          if (isCancellation(err)) throw err;
          // Its workflow is closed (terminated without closing the record): the record is stale.
        }
      }
      // An earlier run under this very id (terminated), or a workflow that is gone: take over.
      begun = await db.beginSync({ ...run, exclusive, supersede: other.syncRunId });
    }
    if (begun.state === 'missing' || begun.state === 'disabled' || begun.syncRunId === null)
      return skipped(begun.reason, null);
    syncRunId = begun.syncRunId;
    authMethod = begun.authMethod ?? 'password';
    if (begun.state === 'needs_attention') waitReason = begun.reason ?? 'the IMAP server rejected the password';
  }

  const finish = async (
    status: 'succeeded' | 'partial' | 'needs_attention' | 'failed' | 'cancelled',
    error: string | null,
  ): Promise<SyncResult> => {
    progress.phase = 'finishing';
    const totals = await db.finishSync({ ...ref, syncRunId, status, folders: progress.foldersTotal, error });
    progress.phase = 'done';
    progress.messagesPending = 0;
    const skipped = totals?.messagesSkipped ?? progress.messagesSkipped ?? 0;
    setCurrentDetails(
      `account ${accountId}: ${status}, ${progress.foldersTotal} folder(s), ${totals?.messagesAdded ?? progress.messagesStored} added, ${totals?.messagesDeleted ?? progress.messagesDeleted} deleted, ${skipped} skipped${failedFolders.length ? `, ${failedFolders.length} folder(s) failed` : ''}`,
    );
    return {
      accountId,
      syncRunId,
      status: status === 'needs_attention' ? 'needs_attention' : status === 'partial' ? 'partial' : 'succeeded',
      reason: status === 'needs_attention' || status === 'partial' ? error : null,
      folders: progress.foldersTotal,
      messagesAdded: totals?.messagesAdded ?? progress.messagesStored,
      messagesUpdated: totals?.messagesUpdated ?? progress.flagsUpdated,
      messagesDeleted: totals?.messagesDeleted ?? progress.messagesDeleted,
      messagesSkipped: skipped,
      foldersFailed: failedFolders.length,
    };
  };
  const updatePending = () => {
    const found = progress.messagesFound ?? progress.messagesPending;
    progress.messagesPending = Math.max(0, found - progress.messagesStored - (progress.messagesSkipped ?? 0));
  };

  let plan: FolderPlan[] | undefined = resume?.folders;
  let fetchCalls = 0;
  let continueNow = false;
  let restart = false;
  try {
    passes: for (;;) {
      try {
        if (waitReason !== null) throw ApplicationFailure.nonRetryable(waitReason, ERR_AUTH);
        if (!plan) {
          progress.phase = 'listing';
          let only: string[] | undefined;
          if (exclusive) {
            // This pass covers what was asked so far; what arrives from now on is the next pass.
            current.all ||= pending.all;
            for (const f of pending.folders) current.folders.add(f);
            pending.all = false;
            pending.folders.clear();
            syncNowRequested = false;
            only = current.all ? undefined : [...current.folders];
          }
          const prepared = await imap.prepareFolders(only ? { ...ref, syncRunId, only } : { ...ref, syncRunId });
          plan = prepared.folders;
          for (const f of prepared.foldersFailed ?? []) if (!failedFolders.includes(f)) failedFolders.push(f);
          progress.foldersFailed = failedFolders.length;
          progress.foldersTotal = plan.length;
          progress.foldersDone = 0;
          const found = plan.reduce((n, f) => n + f.pending, 0);
          progress.messagesFound =
            (progress.messagesFound ?? progress.messagesStored + (progress.messagesSkipped ?? 0)) + found;
          updatePending();
          // The Web UI's "current details": account and folder counts, never addresses.
          setCurrentDetails(`account ${accountId}: ${plan.length} folder(s), ${found} message(s) to fetch`);
          progress.flagsUpdated += prepared.flagsUpdated;
          progress.messagesDeleted += prepared.messagesDeleted;
        }
        progress.phase = 'fetching';
        while (plan.length > 0) {
          const folder = plan[0];
          progress.folder = folder.path;
          const before = progress.messagesStored;
          const skippedBefore = progress.messagesSkipped ?? 0;
          let fetched;
          try {
            fetched = await imap.fetchNewMessages({
              ...ref,
              syncRunId,
              folder: folder.path,
              uidValidity: folder.uidValidity,
            });
          } catch (err) {
            const type = failureType(err);
            // The folder's server session kept failing: record it, go on with the others.
            if (type !== undefined && FOLDER_LEVEL_ERRORS.includes(type) && patched(FOLDER_ERRORS_PATCH)) {
              await db.recordFolderError({ ...ref, syncRunId, folder: folder.path, reason: failureMessage(err) });
              if (!failedFolders.includes(folder.path)) failedFolders.push(folder.path);
              progress.foldersFailed = failedFolders.length;
              plan.shift();
              progress.foldersDone++;
              continue;
            }
            throw err;
          }
          fetchCalls++;
          if (fetched.uidValidityChanged) {
            // The folder was recreated under us: resynchronise just that folder.
            const again = await imap.prepareFolders({ ...ref, syncRunId, only: [folder.path] });
            progress.messagesDeleted += again.messagesDeleted;
            progress.messagesFound =
              (progress.messagesFound ?? progress.messagesPending) + again.folders.reduce((n, f) => n + f.pending, 0);
            for (const f of again.foldersFailed ?? []) if (!failedFolders.includes(f)) failedFolders.push(f);
            progress.foldersFailed = failedFolders.length;
            updatePending();
            plan.splice(0, 1, ...again.folders);
            if (!again.folders.length) progress.foldersDone++;
            continue;
          }
          progress.messagesStored = before + fetched.stored;
          progress.messagesSkipped = skippedBefore + (fetched.skipped ?? 0);
          updatePending();
          if (fetched.done) {
            plan.shift();
            progress.foldersDone++;
          }
          if (plan.length > 0 && (fetchCalls >= fetchCallsPerRun || workflowInfo().continueAsNewSuggested)) {
            continueNow = true;
            break passes;
          }
        }
        if (exclusive ? isPending(pending) : syncNowRequested) {
          // Someone asked for a sync while this one ran: one more pass picks up what
          // arrived in folders already done.
          syncNowRequested = false;
          current.all = false;
          current.folders.clear();
          plan = undefined;
          continue;
        }
        let done: SyncResult;
        if (failedFolders.length) {
          setStatus('partial');
          done = await finish(
            'partial',
            `${failedFolders.length} folder(s) could not be synced this run: ${failedFolders.join(', ')}; they are tried again next run (reasons in sync_errors, npm run account:list)`,
          );
        } else {
          setStatus('succeeded');
          done = await finish('succeeded', null);
        }
        // A syncNow that came while the record was being closed: a fresh run does it.
        if (exclusive && isPending(pending)) {
          restart = true;
          break passes;
        }
        return done;
      } catch (err) {
        const type = waitReason !== null ? ERR_AUTH : failureType(err);
        if (type === ERR_AUTH) {
          const reason = waitReason ?? failureMessage(err);
          waitReason = null;
          authMethod = failureAuthMethod(err) ?? authMethod;
          progress.reason = reason;
          progress.phase = authMethod === 'oauth2' ? 'waiting_for_token' : 'waiting_for_password';
          setStatus('needs_attention');
          const updated = await condition(() => passwordUpdated, authWaitMs);
          if (!updated) return await finish('needs_attention', reason);
          passwordUpdated = false;
          progress.reason = null;
          setStatus('running');
          plan = undefined;
          continue;
        }
        if (type === ERR_ACCOUNT_NOT_FOUND) return skipped(failureMessage(err), syncRunId);
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
      `Sync of account ${accountId} failed: ${message}. The next scheduled run retries; to retry now run: npm run sync:now -- --user <owner email> --account ${accountId}`,
      'SyncFailed',
    );
  }
  // Outside the try: continueAsNew works by throwing, which must not count as a failure.
  if (restart)
    return await continueAsNew<typeof syncAccount>({
      userId,
      accountId,
      options,
      ...(pending.all ? {} : { folders: [...pending.folders] }),
    });
  progress.continuedAsNew++;
  if (!continueNow || !plan)
    throw ApplicationFailure.nonRetryable('syncAccount: internal error, left the sync loop without a result');
  return await continueAsNew<typeof syncAccount>({
    userId,
    accountId,
    options,
    resume: {
      syncRunId,
      folders: plan,
      progress,
      syncNowRequested,
      failedFolders,
      ...(exclusive ? { pending: { all: pending.all, folders: [...pending.folders] } } : {}),
    },
  });
}
