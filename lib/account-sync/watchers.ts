// Starting and stopping an account's IMAP IDLE watcher (workflows/watchAccount.ts, id
// watch-account-<accountId>, on the sync task queue): running while the account is enabled and
// watchers are on (SYNC_WATCH), cancelled otherwise. A start while one runs is a no-op (fixed
// id, USE_EXISTING). A watcher that found no IDLE on the server ended itself ('unsupported');
// it is tried again once a day, in case the server learned IDLE.
import { WorkflowIdConflictPolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Account, Store } from '../sync-store';
import type { SyncConfig } from '../config/sync';
import { ACCOUNT_ID } from '../../contracts/search-attributes';
import { WATCH_WORKFLOW_TYPE, watchWorkflowId, type WatchAccountInput, type WatchOptions } from '../../contracts/watch';

export interface WatchSettings {
  /** Watchers on (SYNC_WATCH). */
  enabled: boolean;
  /** Least Schedule interval of a watched account (SYNC_WATCHED_INTERVAL_MINUTES), seconds. */
  leastIntervalSeconds?: number;
  /** Options every new watcher starts with. */
  options?: WatchOptions;
}

/** The watcher settings the configuration gives. */
export function watchSettings(
  config: Pick<SyncConfig, 'watch' | 'watchedIntervalSeconds' | 'watchReconnectMaxSeconds' | 'watchMaxIdleSeconds'>,
): WatchSettings {
  return {
    enabled: config.watch,
    leastIntervalSeconds: config.watchedIntervalSeconds,
    // The workflow's own knobs; the activity's (coalescing, IDLE re-issue) come from the worker's configuration.
    options: { reconnectMaxSeconds: config.watchReconnectMaxSeconds, maxIdleSeconds: config.watchMaxIdleSeconds },
  };
}

export type WatcherOutcome = 'started' | 'running' | 'stopped' | 'absent' | 'unsupported';

/** How long a watcher that found no IDLE is left alone before the reconciler tries again. */
const UNSUPPORTED_RETRY_MS = 24 * 3600 * 1000;

/**
 * The account's watcher: absent (none runs), running, or stopping: cancelled, and its watch
 * activity is closing the connection (it learns of the cancel at its next heartbeat, so this
 * lasts up to about 25 s; the workflow ends once it has, see WATCH_STOP_AFTER_WATCH_PATCH).
 */
export async function watcherStatus(client: Client, accountId: string): Promise<'absent' | 'running' | 'stopping'> {
  try {
    const d = await client.workflow.getHandle(watchWorkflowId(accountId)).describe();
    if (d.status.name !== 'RUNNING') return 'absent';
    // Cancel requested (the workflow may not have seen it yet), or its watch activity told to stop.
    const cancelling =
      d.raw.workflowExtendedInfo?.cancelRequested === true ||
      (d.raw.pendingActivities ?? []).some(
        (a) => a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED,
      );
    return cancelling ? 'stopping' : 'running';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'absent';
    throw err;
  }
}

/** Whether the account's watcher runs (a stopping one counts: it still holds its connection). */
export async function watcherRunning(client: Client, accountId: string): Promise<boolean> {
  return (await watcherStatus(client, accountId)) !== 'absent';
}

/**
 * Starts the account's watcher unless one runs (then nothing happens). `replaceStopping`: the
 * one that runs is a cancelled one still closing its connection; it is ended (terminated) and
 * a new one started, else the account, enabled again meanwhile, would be left without a watcher.
 */
export async function startAccountWatcher(
  client: Client,
  account: Pick<Account, 'id' | 'userId'>,
  taskQueue: string,
  options?: WatchOptions,
  replaceStopping = false,
): Promise<void> {
  const input: WatchAccountInput = { userId: account.userId, accountId: account.id, ...(options ? { options } : {}) };
  await client.workflow.start(WATCH_WORKFLOW_TYPE, {
    taskQueue,
    workflowId: watchWorkflowId(account.id),
    workflowIdConflictPolicy: replaceStopping
      ? WorkflowIdConflictPolicy.TERMINATE_EXISTING
      : WorkflowIdConflictPolicy.USE_EXISTING,
    args: [input],
    typedSearchAttributes: [{ key: ACCOUNT_ID, value: account.id }],
    staticSummary: `IMAP IDLE watcher of account ${account.id}`,
  });
}

/** Cancels the account's watcher (it records 'stopped'); false when none ran. */
export async function stopAccountWatcher(client: Client, accountId: string, dryRun = false): Promise<boolean> {
  const status = await watcherStatus(client, accountId);
  if (status === 'absent') return false;
  // Cancelled already: it is closing its connection.
  if (dryRun || status === 'stopping') return true;
  try {
    await client.workflow.getHandle(watchWorkflowId(accountId)).cancel();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    return false;
  }
  return true;
}

/** Makes one account's watcher match the account (enabled) and the settings. */
export async function reconcileAccountWatcher(
  client: Client,
  store: Pick<Store, 'getWatcher'>,
  account: Account,
  taskQueue: string,
  watch: WatchSettings,
  dryRun = false,
): Promise<WatcherOutcome> {
  if (!watch.enabled || !account.enabled)
    return (await stopAccountWatcher(client, account.id, dryRun)) ? 'stopped' : 'absent';
  const status = await watcherStatus(client, account.id);
  if (status === 'running') return 'running';
  const last = await store.getWatcher(account.userId, account.id);
  if (
    status === 'absent' &&
    last?.state === 'unsupported' &&
    Date.now() - last.stateChangedAt.getTime() < UNSUPPORTED_RETRY_MS
  )
    return 'unsupported';
  if (!dryRun) await startAccountWatcher(client, account, taskQueue, watch.options, status === 'stopping');
  return 'started';
}

/** Ids of the running watchers of all accounts (visibility: a second or so behind). */
export async function runningWatcherIds(client: Client): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({
    query: `WorkflowType = '${WATCH_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`,
  })) {
    ids.push(w.workflowId);
  }
  return ids;
}
