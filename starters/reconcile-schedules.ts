// Makes Temporal Schedules match the accounts in PostgreSQL: one Schedule per account
// (id sync-account-<accountId>) starting syncAccount every sync_interval_seconds with
// overlap policy SKIP (a sync still running means the next one is skipped, never stacked),
// paused while the account is disabled, deleted once the account is gone. Idempotent:
// run it after account changes, from cron, or at deploy; running it twice changes nothing.
//
// Also exports the schedule helpers the other starters use.
import {
  Client,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowNotFoundError,
  type ScheduleDescription,
  type ScheduleOptions,
} from '@temporalio/client';
import { createStore, type Account, type Store } from '../lib/sync-store';
import { commandMain, emailAddress, EXIT, type ExitCode, type OptionValues } from '../lib/cli';
import { createPool } from '../lib/storage/db';
import { ACCOUNT_ID } from '../contracts/search-attributes';
import { loadSyncConfig } from '../lib/config/sync';
import { connectClient } from '../lib/temporal';
import {
  SYNC_SCHEDULE_PREFIX,
  SYNC_WORKFLOW_TYPE,
  syncScheduleId,
  syncWorkflowId,
  type SyncAccountInput,
} from '../contracts/sync';
// Schedules start the workflow by function reference (its name is what the server stores).
import { syncAccount } from '../workflows/syncAccount';

export interface ReconcileSummary {
  created: string[];
  updated: string[];
  paused: string[];
  unpaused: string[];
  deleted: string[];
  unchanged: string[];
}

const PAUSE_NOTE = 'account disabled in mailroom (reconcile-schedules)';

/** The Schedule an account should have. */
export function desiredSchedule(account: Account, taskQueue: string): ScheduleOptions {
  const input: SyncAccountInput = { userId: account.userId, accountId: account.id };
  return {
    scheduleId: syncScheduleId(account.id),
    spec: { intervals: [{ every: `${account.syncIntervalSeconds}s` }] },
    action: {
      type: 'startWorkflow',
      workflowType: syncAccount,
      // Temporal appends the scheduled time to this id for each run.
      workflowId: syncWorkflowId(account.id),
      taskQueue,
      args: [input],
      typedSearchAttributes: [{ key: ACCOUNT_ID, value: account.id }],
    },
    policies: {
      overlap: ScheduleOverlapPolicy.SKIP,
      // After an outage, one catch-up run is enough; missed intervals are not replayed.
      catchupWindow: `${Math.max(10, Math.min(account.syncIntervalSeconds, 3600))}s`,
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

async function describeOrNull(client: Client, scheduleId: string): Promise<ScheduleDescription | null> {
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
): Promise<keyof ReconcileSummary | 'updated+paused' | 'updated+unpaused'> {
  const desired = desiredSchedule(account, taskQueue);
  const current = await describeOrNull(client, desired.scheduleId);
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
  const schedule = await describeOrNull(client, syncScheduleId(accountId));
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

/** Reconciles every account (of one user, or of all users; orphan Schedules only in the latter case). */
export async function reconcileSchedules(deps: {
  client: Client;
  store: Store;
  taskQueue: string;
  userId?: string;
  dryRun?: boolean;
}): Promise<ReconcileSummary> {
  const summary: ReconcileSummary = { created: [], updated: [], paused: [], unpaused: [], deleted: [], unchanged: [] };
  const users = deps.userId ? [{ id: deps.userId }] : await deps.store.listUsers();
  const known = new Set<string>();
  for (const user of users) {
    for (const account of await deps.store.listAccounts(user.id)) {
      const scheduleId = syncScheduleId(account.id);
      known.add(scheduleId);
      const outcome = await reconcileAccountSchedule(deps.client, account, deps.taskQueue, deps.dryRun);
      for (const part of outcome.split('+') as (keyof ReconcileSummary)[]) summary[part].push(scheduleId);
    }
  }
  if (!deps.userId) {
    // Schedules whose account is gone. (The list is eventually consistent: a Schedule
    // created moments ago may be missing from it, one deleted moments ago may linger.)
    for await (const s of deps.client.schedule.list()) {
      if (!s.scheduleId.startsWith(SYNC_SCHEDULE_PREFIX) || known.has(s.scheduleId)) continue;
      if (deps.dryRun) {
        summary.deleted.push(s.scheduleId);
        continue;
      }
      try {
        await deps.client.schedule.getHandle(s.scheduleId).delete();
        summary.deleted.push(s.scheduleId);
      } catch (err) {
        if (!(err instanceof ScheduleNotFoundError)) throw err;
      }
    }
  }
  return summary;
}

const spec = {
  name: 'sync:reconcile',
  summary:
    'Make the Temporal Schedules match the accounts in PostgreSQL: one per account at its interval, paused while disabled, deleted once the account is gone. Idempotent.',
  options: {
    user: {
      type: 'string',
      value: '<email>',
      description: "only this user's accounts (orphan Schedules are then left alone)",
    },
    'dry-run': { type: 'boolean', description: 'say what would change, change nothing' },
  },
  examples: ['npm run sync:reconcile', 'npm run sync:reconcile -- --dry-run'],
} as const;

async function main(values: OptionValues<typeof spec.options>): Promise<ExitCode> {
  const only = values.user !== undefined ? emailAddress('user', values.user) : undefined;
  const config = loadSyncConfig();
  const pool = createPool(config.databaseUrl, { max: 2 });
  const store = createStore(pool);
  try {
    let userId: string | undefined;
    if (only) {
      const user = await store.findUserByEmail(only);
      if (!user) throw new Error(`No mailroom user ${only}; list the accounts with: npm run account:list`);
      userId = user.id;
    }
    const client = await connectClient();
    try {
      const summary = await reconcileSchedules({
        client,
        store,
        taskQueue: config.taskQueue,
        userId,
        dryRun: values['dry-run'],
      });
      const prefix = values['dry-run'] ? 'would be ' : '';
      for (const [what, ids] of Object.entries(summary)) {
        for (const id of ids) console.log(`${prefix}${what}: ${id}`);
      }
      const counts = Object.entries(summary).map(([k, v]) => `${v.length} ${prefix}${k}`);
      console.log(`Schedules reconciled (task queue ${config.taskQueue}): ${counts.join(', ')}`);
    } finally {
      await client.connection.close();
    }
  } finally {
    await pool.end();
  }
  return EXIT.done;
}

// Also imported (the schedule helpers) by the other starters: run only as a script.
if (require.main === module) commandMain(spec, main);
