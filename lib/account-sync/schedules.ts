// One Temporal Schedule per account (id sync-account-<accountId>) starting syncAccount every
// sync_interval_seconds with overlap policy SKIP (a sync still running means the next one is
// skipped, never stacked), paused while the account is disabled, deleted once the account is
// gone. Used by the reconciler (./reconcile.ts), the account starters and the watcher's
// sync requests (./sync-now.ts), so it lives below all of them.
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleOptions,
} from '@temporalio/client';
import type { Account } from '../sync-store';
import { ACCOUNT_ID } from '../../contracts/search-attributes';
import { SYNC_WORKFLOW_TYPE, syncScheduleId, syncWorkflowId, type SyncAccountInput } from '../../contracts/sync';

export type ScheduleOutcome = 'created' | 'updated' | 'paused' | 'unpaused' | 'unchanged';

const PAUSE_NOTE = 'account disabled in mailroom (reconcile-schedules)';

/**
 * The Schedule an account should have. `leastIntervalSeconds`: while a watcher syncs the account
 * promptly, its Schedule (the safety net) may run less often (SYNC_WATCHED_INTERVAL_MINUTES).
 */
export function desiredSchedule(account: Account, taskQueue: string, leastIntervalSeconds = 0): ScheduleOptions {
  const input: SyncAccountInput = { userId: account.userId, accountId: account.id };
  const every = Math.max(account.syncIntervalSeconds, leastIntervalSeconds);
  return {
    scheduleId: syncScheduleId(account.id),
    spec: { intervals: [{ every: `${every}s` }] },
    action: {
      type: 'startWorkflow',
      // By name: lib/ may not import the workflow (the server stores only the name anyway).
      workflowType: SYNC_WORKFLOW_TYPE,
      // Temporal appends the scheduled time to this id for each run.
      workflowId: syncWorkflowId(account.id),
      taskQueue,
      args: [input],
      typedSearchAttributes: [{ key: ACCOUNT_ID, value: account.id }],
    },
    policies: {
      overlap: ScheduleOverlapPolicy.SKIP,
      // After an outage, one catch-up run is enough; missed intervals are not replayed.
      catchupWindow: `${Math.max(10, Math.min(every, 3600))}s`,
      pauseOnFailure: false,
    },
    memo: { userId: account.userId, accountId: account.id },
    state: { paused: !account.enabled, note: account.enabled ? undefined : PAUSE_NOTE },
  };
}

function sameDefinition(current: ScheduleDescription, desired: ScheduleOptions): boolean {
  const interval = current.spec.intervals?.[0];
  const args = current.action.args as SyncAccountInput[] | undefined;
  const want = desired.action.args?.[0] as SyncAccountInput;
  return (
    (current.spec.intervals?.length ?? 0) === 1 &&
    interval?.every === Number(/^(\d+)s$/.exec(String(desired.spec.intervals?.[0].every))?.[1]) * 1000 &&
    current.action.workflowType === SYNC_WORKFLOW_TYPE &&
    current.action.taskQueue === desired.action.taskQueue &&
    current.action.workflowId === desired.action.workflowId &&
    args?.[0]?.userId === want.userId &&
    args?.[0]?.accountId === want.accountId &&
    current.policies.overlap === ScheduleOverlapPolicy.SKIP
  );
}

export async function describeScheduleOrNull(client: Client, scheduleId: string): Promise<ScheduleDescription | null> {
  try {
    return await client.schedule.getHandle(scheduleId).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return null;
    throw err;
  }
}

/** Creates, updates, pauses or unpauses one account's Schedule. Returns what it did. */
export async function reconcileAccountSchedule(
  client: Client,
  account: Account,
  taskQueue: string,
  dryRun = false,
  leastIntervalSeconds = 0,
): Promise<ScheduleOutcome | 'updated+paused' | 'updated+unpaused'> {
  const desired = desiredSchedule(account, taskQueue, leastIntervalSeconds);
  const current = await describeScheduleOrNull(client, desired.scheduleId);
  if (!current) {
    if (!dryRun) await client.schedule.create(desired);
    return 'created';
  }
  const handle = client.schedule.getHandle(desired.scheduleId);
  let updated = false;
  if (!sameDefinition(current, desired)) {
    if (!dryRun) {
      await handle.update((previous) => ({
        ...previous,
        spec: desired.spec,
        action: desired.action as typeof previous.action,
        policies: { ...previous.policies, ...desired.policies },
        // Keep the paused state; it is set below.
        state: previous.state,
      }));
    }
    updated = true;
  }
  const shouldPause = !account.enabled;
  if (current.state.paused !== shouldPause) {
    if (!dryRun) {
      if (shouldPause) await handle.pause(PAUSE_NOTE);
      else await handle.unpause('account enabled in mailroom (reconcile-schedules)');
    }
    const change = shouldPause ? 'paused' : 'unpaused';
    return updated ? `updated+${change}` : change;
  }
  return updated ? 'updated' : 'unchanged';
}

/** Deletes an account's Schedule; returns false when there was none. */
export async function deleteAccountSchedule(client: Client, accountId: string): Promise<boolean> {
  try {
    await client.schedule.getHandle(syncScheduleId(accountId)).delete();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

/** Ids of the account's sync workflows that are running now (scheduled or started by hand). */
export async function runningSyncWorkflows(client: Client, accountId: string): Promise<string[]> {
  const ids: string[] = [];
  const schedule = await describeScheduleOrNull(client, syncScheduleId(accountId));
  for (const a of schedule?.info.runningActions ?? []) ids.push(a.workflow.workflowId);
  try {
    const manual = await client.workflow.getHandle(syncWorkflowId(accountId)).describe();
    if (manual.status.name === 'RUNNING') ids.push(manual.workflowId);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  // Any other sync of the account (started by hand under another id): every run sets AccountId.
  // Visibility lags a second or so behind, which only matters for a sync that just started.
  for await (const w of client.workflow.list({
    query: `WorkflowType = '${SYNC_WORKFLOW_TYPE}' AND AccountId = '${accountId}' AND ExecutionStatus = 'Running'`,
  })) {
    ids.push(w.workflowId);
  }
  return [...new Set(ids)];
}
