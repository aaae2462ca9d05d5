// Asking for a sync of one account without ever running two at once: a running sync is asked
// for one more pass (syncNow signal); otherwise the account's Schedule is triggered with overlap
// SKIP; an account without a Schedule is started under its fixed workflow id (USE_EXISTING).
// Used by `sync:now` (startSyncNow, which also finds the workflow to follow) and by the IDLE
// watcher's requestSync activity (requestFolderSync: one round trip, fire and return).
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowIdConflictPolicy,
  type Client,
} from '@temporalio/client';
import { ACCOUNT_ID } from '../../contracts/search-attributes';
import {
  SYNC_WORKFLOW_TYPE,
  syncNowSignal,
  syncScheduleId,
  syncWorkflowId,
  type SyncAccountInput,
} from '../../contracts/sync';
import { runningSyncWorkflows } from './schedules';

export interface AccountKey {
  userId: string;
  /** The account id. */
  id: string;
}

/** Starts the account's sync under its fixed id, or joins the one running under it. */
async function startFixed(client: Client, account: AccountKey, taskQueue: string): Promise<string> {
  const input: SyncAccountInput = { userId: account.userId, accountId: account.id };
  const handle = await client.workflow.start(SYNC_WORKFLOW_TYPE, {
    taskQueue,
    workflowId: syncWorkflowId(account.id),
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    args: [input],
    typedSearchAttributes: [{ key: ACCOUNT_ID, value: account.id }],
  });
  return handle.workflowId;
}

export type SyncRequest =
  | { how: 'signalled'; workflowId: string }
  | { how: 'triggered'; workflowId: null }
  | { how: 'started'; workflowId: string }
  | { how: 'signal-with-start'; workflowId: string };

/**
 * The IDLE watcher's request: one pass over `folders` (INBOX; absent: every folder) by the
 * account's sync, in one round trip to Temporal. Signal-with-start on the account's fixed sync id: a sync running under
 * it makes one more pass (a burst of requests, one pass); otherwise a new one starts with those
 * folders only. A new run that finds a Schedule's sync of the account running hands the request
 * to it and ends (syncAccount, SYNC_EXCLUSIVE_PATCH): never two syncs of one account at once.
 */
export async function requestFolderSync(
  client: Client,
  account: AccountKey,
  taskQueue: string,
  folders?: string[],
): Promise<SyncRequest> {
  const input: SyncAccountInput = { userId: account.userId, accountId: account.id, ...(folders ? { folders } : {}) };
  const handle = await client.workflow.signalWithStart(SYNC_WORKFLOW_TYPE, {
    taskQueue,
    workflowId: syncWorkflowId(account.id),
    args: [input],
    signal: syncNowSignal,
    signalArgs: [folders ? { folders } : {}],
    typedSearchAttributes: [{ key: ACCOUNT_ID, value: account.id }],
  });
  return { how: 'signal-with-start', workflowId: handle.workflowId };
}

/**
 * Asks for one sync of the account and returns at once. Many requests while a sync runs give
 * that sync one more pass, not one sync each.
 */
export async function requestSync(client: Client, account: AccountKey, taskQueue: string): Promise<SyncRequest> {
  const running = await runningSyncWorkflows(client, account.id);
  if (running.length) {
    await client.workflow.getHandle(running[0]).signal(syncNowSignal);
    return { how: 'signalled', workflowId: running[0] };
  }
  try {
    // trigger() defaults to ALLOW_ALL; SKIP keeps the one-sync-per-account guarantee.
    await client.schedule.getHandle(syncScheduleId(account.id)).trigger(ScheduleOverlapPolicy.SKIP);
    return { how: 'triggered', workflowId: null };
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  return { how: 'started', workflowId: await startFixed(client, account, taskQueue) };
}

/** Starts (or joins) a sync of the account and returns the id of the workflow doing it. */
export async function startSyncNow(
  client: Client,
  account: AccountKey,
  taskQueue: string,
): Promise<{ workflowId: string; joined: boolean }> {
  const running = await runningSyncWorkflows(client, account.id);
  if (running.length) {
    await client.workflow.getHandle(running[0]).signal(syncNowSignal);
    return { workflowId: running[0], joined: true };
  }
  const schedule = client.schedule.getHandle(syncScheduleId(account.id));
  try {
    const before = await schedule.describe();
    const seen = new Set(before.info.recentActions.map((a) => a.action.workflow.workflowId));
    // trigger() defaults to ALLOW_ALL; SKIP keeps the one-sync-per-account guarantee.
    await schedule.trigger(ScheduleOverlapPolicy.SKIP);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const d = await schedule.describe();
      const started = [
        ...d.info.runningActions.map((a) => a.workflow.workflowId),
        ...d.info.recentActions.map((a) => a.action.workflow.workflowId),
      ].find((id) => !seen.has(id));
      if (started) return { workflowId: started, joined: false };
      const other = d.info.runningActions[0];
      if (other) return { workflowId: other.workflow.workflowId, joined: true };
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      `Triggered schedule ${schedule.scheduleId} but no sync started within 15 s; is it paused? (npm run sync:reconcile)`,
    );
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  // No Schedule (not reconciled yet): start directly under the account's fixed workflow id,
  // joining a sync that already runs under it.
  return { workflowId: await startFixed(client, account, taskQueue), joined: false };
}
