// The demo's account features after the first syncs (scripts/stack/sync-demo.ts calls these):
// mail within seconds (the IDLE watchers are started, a message is appended to a demo mailbox and
// the time until its row is in PostgreSQL printed), a search over synced mail, and one message
// sent from a demo account, shown in the outbox, in the account's Sent folder and, after a sync,
// in PostgreSQL. Each returns the lines the demo prints.
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { reconcileSchedules, startSyncNow } from '../../lib/account-sync';
import { createDraft, sendDraft, waitForSend, type OutboxCommandDeps } from '../../lib/outbox/commands';
import type { Account, Store } from '../../lib/sync-store';
import { searchMessages } from '../../lib/sync-store/search';
import type { syncAccount } from '../../workflows/syncAccount';
import { appendDemoMessage } from './demo-mailbox';

/** Polls `check` every `everyMs` until it is true; false after `timeoutMs`. */
async function until(check: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Starts the accounts' IDLE watchers, appends one message to `login`'s INBOX once its watcher
 * idles, and reports how long until its row was in PostgreSQL; then searches for it.
 */
export async function demoWatcherAndSearch(o: {
  client: Client;
  store: Store;
  pool: Pool;
  taskQueue: string;
  ownerEmail: string;
  account: Account;
  server: { host: string; port: number };
  login: { user: string; password: string };
}): Promise<string[]> {
  const summary = await reconcileSchedules({
    client: o.client,
    store: o.store,
    taskQueue: o.taskQueue,
    watch: { enabled: true },
  });
  const lines = [
    `Mail within seconds: ${summary.watchersStarted?.length ?? 0} IMAP IDLE watchers started (one per account; npm run account:list shows their state).`,
  ];
  const idle = await until(
    async () => (await o.store.getWatcher(o.account.userId, o.account.id))?.state === 'idle',
    60_000,
    200,
  );
  if (!idle) {
    lines.push(`  The watcher of ${o.login.user} is not idle after 60 s; the Schedule still syncs it.`);
    return lines;
  }
  const token = `lighthouse${randomBytes(3).toString('hex')}`;
  const subject = `Arrived while watched: ${token}`;
  await appendDemoMessage(o.server, o.login, subject);
  const appended = Date.now();
  const arrived = await until(
    async () =>
      (
        await o.pool.query('SELECT 1 FROM messages WHERE user_id = $1 AND account_id = $2 AND subject = $3', [
          o.account.userId,
          o.account.id,
          subject,
        ])
      ).rowCount === 1,
    60_000,
  );
  lines.push(
    arrived
      ? `  A message appended to ${o.login.user}'s INBOX was in PostgreSQL ${seconds(Date.now() - appended)} later (the watcher asked for a sync; no Schedule run).`
      : `  A message appended to ${o.login.user}'s INBOX was not in PostgreSQL within 60 s (see the sync worker's log).`,
  );
  const found = await searchMessages(o.pool, o.account.userId, { text: token, limit: 5 });
  lines.push(
    `  Search "${token}": ${found.messages.length} message(s)${found.messages[0] ? `, "${found.messages[0].subject}" in ${found.messages[0].folder}` : ''}. Try: npm run mail:search -- --user ${o.ownerEmail} --text ${token}`,
  );
  return lines;
}

/** Sends one message from `account` now, waits for it, and shows its Sent copy in PostgreSQL after a sync. */
export async function demoSend(o: {
  client: Client;
  pool: Pool;
  deps: OutboxCommandDeps;
  syncTaskQueue: string;
  account: Account;
  to: string;
}): Promise<string[]> {
  const subject = `Hello from the mailroom demo ${randomBytes(3).toString('hex')}`;
  const draft = await createDraft(o.deps, o.account.userId, o.account.id, {
    to: [o.to],
    subject,
    text: 'Sent by the sendMessage workflow: one copy, a Sent copy, and the outbox row says so.',
  });
  const { message, workflowId } = await sendDraft(o.deps, o.account.userId, draft.id);
  const result = await waitForSend(o.deps, message);
  const lines = [
    `Sent from ${o.account.imapUser} to ${o.to}: ${result.status} (${result.recipientsAccepted} accepted), Sent copy in ${result.sentFolder ?? 'no folder'}; outbox id ${draft.id}, workflow ${workflowId}.`,
  ];
  // The Sent folder is synced like any other: one sync brings the copy to PostgreSQL.
  const { workflowId: syncId } = await startSyncNow(o.client, o.account, o.syncTaskQueue);
  await o.client.workflow.getHandle<typeof syncAccount>(syncId).result();
  const { rows } = await o.pool.query(
    'SELECT folder FROM messages WHERE user_id = $1 AND account_id = $2 AND subject = $3 ORDER BY folder',
    [o.account.userId, o.account.id, subject],
  );
  lines.push(
    `  After a sync, PostgreSQL has it in: ${rows.length ? rows.map((r) => r.folder as string).join(', ') : 'no folder yet'}.`,
  );
  return lines;
}
