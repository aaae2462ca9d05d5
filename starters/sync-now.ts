// Syncs one account now and shows progress (a progress bar fed by the workflow's `progress`
// query). Goes through the account's Schedule when it has one (trigger with overlap SKIP),
// so a manual sync never runs beside a scheduled one; if a sync is already running it is
// asked for one more pass (syncNow signal) and followed instead.
//
// Usage: tsx starters/sync-now.ts --user <email> --account <id> [--no-wait]
import { parseArgs } from 'node:util';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import { SingleBar, Presets } from 'cli-progress';
import { createStore, type Account } from '../activities/store';
import { createPool } from '../lib/db';
import { ACCOUNT_ID } from '../lib/search-attributes';
import { loadSyncConfig } from '../lib/sync-config';
import { connectClient } from '../lib/temporal';
import type { syncAccount } from '../workflows/syncAccount';
import { progressQuery, syncNowSignal, syncScheduleId, syncWorkflowId, type SyncProgress, type SyncResult } from '../workflows/sync-definitions';
import { runningSyncWorkflows } from './reconcile-schedules';

/** Starts (or joins) a sync of the account and returns the id of the workflow doing it. */
export async function startSyncNow(client: Client, account: Account, taskQueue: string): Promise<{ workflowId: string; joined: boolean }> {
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
      const started = [...d.info.runningActions.map((a) => a.workflow.workflowId), ...d.info.recentActions.map((a) => a.action.workflow.workflowId)].find(
        (id) => !seen.has(id),
      );
      if (started) return { workflowId: started, joined: false };
      const other = d.info.runningActions[0];
      if (other) return { workflowId: other.workflow.workflowId, joined: true };
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`Triggered schedule ${schedule.scheduleId} but no sync started within 15 s; is it paused? (tsx starters/reconcile-schedules.ts)`);
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  // No Schedule (not reconciled yet): start directly under the account's fixed workflow id,
  // joining a sync that already runs under it.
  const handle = await client.workflow.start<typeof syncAccount>('syncAccount', {
    taskQueue,
    workflowId: syncWorkflowId(account.id),
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    args: [{ userId: account.userId, accountId: account.id }],
    typedSearchAttributes: [{ key: ACCOUNT_ID, value: account.id }],
  });
  return { workflowId: handle.workflowId, joined: false };
}

/**
 * Shows the sync's progress until it ends, or until it waits for a new password (it may wait
 * for days; the caller is told what to do instead of being kept waiting).
 */
async function follow(client: Client, workflowId: string): Promise<SyncResult | { waitingForPassword: string }> {
  const handle = client.workflow.getHandle<typeof syncAccount>(workflowId);
  const bar = new SingleBar(
    { format: ' {bar} {value}/{total} new messages | folder {folders} {folder} | {phase}', hideCursor: true, noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 5000 },
    Presets.shades_classic,
  );
  let started = false;
  let result: SyncResult | undefined;
  let error: unknown;
  const done = handle.result().then(
    (r) => {
      result = r;
    },
    (err) => {
      error = err;
    },
  );
  while (result === undefined && error === undefined) {
    let p: SyncProgress | undefined;
    try {
      p = await handle.query(progressQuery);
    } catch {
      /* not queryable yet (no worker has picked it up) */
    }
    if (p?.status === 'needs_attention') {
      if (started) bar.stop();
      return { waitingForPassword: p.reason ?? 'the IMAP server rejected the password' };
    }
    // The total is known once the folders are listed.
    if (p && p.phase !== 'starting' && p.phase !== 'listing') {
      const payload = { folder: p.folder ?? '', folders: `${Math.min(p.foldersDone + 1, p.foldersTotal)}/${p.foldersTotal}`, phase: p.phase.replaceAll('_', ' ') };
      const total = Math.max(p.messagesPending, p.messagesStored, 1);
      if (!started) {
        bar.start(total, p.messagesStored, payload);
        started = true;
      }
      bar.setTotal(total);
      bar.update(p.messagesStored, payload);
    }
    await Promise.race([done, new Promise((r) => setTimeout(r, 500))]);
  }
  if (started) bar.stop();
  if (error !== undefined) throw error;
  return result as SyncResult;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { user: { type: 'string' }, account: { type: 'string' }, 'no-wait': { type: 'boolean', default: false } } });
  if (!values.user || !values.account) throw new Error('--user <owner email> and --account <account id> are required (see tsx starters/list-accounts.ts)');
  const config = loadSyncConfig();
  const pool = createPool(config.databaseUrl, { max: 2 });
  const store = createStore(pool);
  let account: Account | null;
  try {
    const user = await store.findUserByEmail(values.user);
    account = user ? await store.getAccount(user.id, values.account) : null;
  } finally {
    await pool.end();
  }
  if (!account) throw new Error(`User ${values.user} has no account ${values.account}`);
  if (!account.enabled) throw new Error(`Account ${account.id} is disabled; enable it before syncing`);

  const client = await connectClient();
  try {
    const { workflowId, joined } = await startSyncNow(client, account, config.taskQueue);
    console.log(`${joined ? 'Following the sync already running' : 'Started sync'}: workflow ${workflowId}`);
    if (values['no-wait']) return;
    const result = await follow(client, workflowId);
    if ('waitingForPassword' in result) {
      console.error(
        `Account ${account.id} needs attention: ${result.waitingForPassword}\nThe sync waits for a new password and resumes once it is set: tsx starters/update-password.ts --user ${values.user} --account ${account.id}`,
      );
      process.exitCode = 2;
      return;
    }
    if (result.status === 'needs_attention') {
      console.error(`Account ${account.id} needs attention: ${result.reason}`);
      process.exitCode = 2;
      return;
    }
    if (result.status === 'skipped') {
      console.log(`Sync skipped: ${result.reason}`);
      return;
    }
    console.log(
      `Synced ${account.imapUser}@${account.imapHost}: ${result.folders} folders, ${result.messagesAdded} new, ${result.messagesUpdated} flag changes, ${result.messagesDeleted} deleted`,
    );
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  main().catch((err) => {
    const cause = (err as { cause?: Error }).cause;
    console.error(`sync-now failed: ${(err as Error).message}${cause ? `: ${cause.message}` : ''}`);
    process.exit(1);
  });
}
