// Makes Temporal match the accounts in PostgreSQL: each account's Schedule (./schedules.ts)
// and, when watchers are on, its IDLE watcher (./watchers.ts). Idempotent: running it twice
// changes nothing. Used by sync:reconcile, the account starters and the demo.
import { ScheduleNotFoundError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Account, Store } from '../sync-store';
import { SYNC_SCHEDULE_PREFIX, syncScheduleId } from '../../contracts/sync';
import { WATCH_WORKFLOW_PREFIX, watchWorkflowId } from '../../contracts/watch';
import { reconcileAccountSchedule, type ScheduleOutcome } from './schedules';
import { reconcileAccountWatcher, runningWatcherIds, type WatcherOutcome, type WatchSettings } from './watchers';

export interface ReconcileSummary {
  created: string[];
  updated: string[];
  paused: string[];
  unpaused: string[];
  deleted: string[];
  unchanged: string[];
  /** Watchers started (ids watch-account-<accountId>); present when watchers are managed. */
  watchersStarted?: string[];
  /** Watchers cancelled: account disabled or gone, or watchers switched off. */
  watchersStopped?: string[];
  /** Accounts whose server has no IDLE (their watcher ended; the Schedule alone syncs them). */
  watchersUnsupported?: string[];
}

export interface AccountReconcile {
  schedule: ScheduleOutcome | 'updated+paused' | 'updated+unpaused';
  /** Absent when watchers are not managed by this call. */
  watcher?: WatcherOutcome;
}

/**
 * One account's Schedule and (with `watch`) watcher. The Schedule of a watched account runs at
 * least every `watch.leastIntervalSeconds` apart.
 */
export async function reconcileAccount(
  client: Client,
  store: Pick<Store, 'getWatcher'>,
  account: Account,
  taskQueue: string,
  watch?: WatchSettings,
  dryRun = false,
): Promise<AccountReconcile> {
  const least = watch?.enabled ? (watch.leastIntervalSeconds ?? 0) : 0;
  const schedule = await reconcileAccountSchedule(client, account, taskQueue, dryRun, least);
  if (!watch) return { schedule };
  return { schedule, watcher: await reconcileAccountWatcher(client, store, account, taskQueue, watch, dryRun) };
}

/**
 * Reconciles every account (of one user, or of all users; orphan Schedules and watchers only in
 * the latter case). Without `watch`, watchers are left as they are.
 */
export async function reconcileSchedules(deps: {
  client: Client;
  store: Store;
  taskQueue: string;
  userId?: string;
  dryRun?: boolean;
  watch?: WatchSettings;
}): Promise<ReconcileSummary> {
  const summary: ReconcileSummary = { created: [], updated: [], paused: [], unpaused: [], deleted: [], unchanged: [] };
  if (deps.watch) Object.assign(summary, { watchersStarted: [], watchersStopped: [], watchersUnsupported: [] });
  const users = deps.userId ? [{ id: deps.userId }] : await deps.store.listUsers();
  const known = new Set<string>();
  const knownAccounts = new Set<string>();
  for (const user of users) {
    for (const account of await deps.store.listAccounts(user.id)) {
      const scheduleId = syncScheduleId(account.id);
      known.add(scheduleId);
      knownAccounts.add(account.id);
      const outcome = await reconcileAccount(deps.client, deps.store, account, deps.taskQueue, deps.watch, deps.dryRun);
      for (const part of outcome.schedule.split('+') as (keyof ReconcileSummary)[]) summary[part]?.push(scheduleId);
      const watcherId = watchWorkflowId(account.id);
      if (outcome.watcher === 'started') summary.watchersStarted?.push(watcherId);
      if (outcome.watcher === 'stopped') summary.watchersStopped?.push(watcherId);
      if (outcome.watcher === 'unsupported') summary.watchersUnsupported?.push(watcherId);
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
    // Watchers whose account is gone (they would stop by themselves at their next check).
    if (deps.watch) {
      for (const id of await runningWatcherIds(deps.client)) {
        if (!id.startsWith(WATCH_WORKFLOW_PREFIX) || knownAccounts.has(id.slice(WATCH_WORKFLOW_PREFIX.length)))
          continue;
        if (!deps.dryRun) {
          try {
            await deps.client.workflow.getHandle(id).cancel();
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
            continue;
          }
        }
        summary.watchersStopped?.push(id);
      }
    }
  }
  return summary;
}
