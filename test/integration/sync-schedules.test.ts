// The schedule reconciler against the Temporal dev server: one Schedule per account,
// created, updated, paused/unpaused with the account, deleted with it; and "sync now"
// through the Schedule (trigger, overlap SKIP) never runs two syncs of one account.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createStore, type Account, type Store } from '../../lib/sync-store';
import { addAccountWithPassword, setAccountPassword } from '../../lib/sync-store/credentials';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { reconcileSchedules } from '../../starters/reconcile-schedules';
import { startSyncNow } from '../../starters/sync-now';
import { createSyncWorker, type SyncWorker } from '../../workers/sync';
import type { syncAccount } from '../../workflows/syncAccount';
import { passwordUpdatedSignal, progressQuery, syncScheduleId, type SyncAccountInput } from '../../contracts/sync';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  fillMailbox,
  imapSession,
  quietTemporalLogs,
  startTestDovecot,
  syncWorkflowBundle,
  waitFor,
  type TestDatabase,
  type TestDovecot,
} from './sync-fixtures';

const keyEntry = generateKeyEntry('k1');
const keyring = parseKeyring(keyEntry);
const taskQueue = `sync-sched-${randomBytes(4).toString('hex')}`;
const CAROL = { user: 'carol@example.test', password: 'carol-secret' };

describe('schedule reconciler', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dovecot: TestDovecot;
  let store: Store;
  let worker: SyncWorker;
  let workerRun: Promise<void>;
  let alice: string;
  let bob: string;
  let a1: Account;
  let a2: Account;
  let b1: Account;

  const settings = (imapUser: string, syncIntervalSeconds: number, enabled = true) => ({
    imapHost: '127.0.0.1',
    imapPort: dovecot.imapPort,
    imapTls: false,
    imapUser,
    syncIntervalSeconds,
    enabled,
  });

  before(async () => {
    quietTemporalLogs();
    [env, db, dovecot] = await Promise.all([startTestTemporal(), createTestDatabase(), startTestDovecot([CAROL])]);
    store = createStore(db.pool);
    alice = (await store.ensureUser('alice@example.com')).id;
    bob = (await store.ensureUser('bob@example.com')).id;
    a1 = await addAccountWithPassword(store, keyring, alice, settings(CAROL.user, 3600), 'wrong-password');
    a2 = await addAccountWithPassword(store, keyring, alice, settings('a2@example.test', 7200), 'x');
    b1 = await addAccountWithPassword(store, keyring, bob, settings('b1@example.test', 900, false), 'x');
    worker = await createSyncWorker(env.nativeConnection, env.namespace ?? 'default', {
      env: { ...process.env, DATABASE_URL: db.url, MAILROOM_SECRET_KEYS: keyEntry, SYNC_TASK_QUEUE: taskQueue },
      // Plaintext payloads, like env.client: the tests read histories directly.
      dataConverter: null,
      pool: db.pool,
      workflowBundle: await syncWorkflowBundle(),
    });
    workerRun = worker.run();
  });

  after(async () => {
    worker?.shutdown();
    await workerRun?.catch(() => {});
    await env?.teardown();
    await dovecot?.cleanup();
    await db?.drop();
  });

  const reconcile = () => reconcileSchedules({ client: env.client, store, taskQueue });
  const describeSchedule = (account: Account) => env.client.schedule.getHandle(syncScheduleId(account.id)).describe();

  it('creates one schedule per account, paused when the account is disabled', async () => {
    const summary = await reconcile();
    assert.deepEqual([...summary.created].sort(), [a1, a2, b1].map((a) => syncScheduleId(a.id)).sort());

    const d1 = await describeSchedule(a1);
    assert.equal(d1.state.paused, false);
    assert.equal(d1.spec.intervals?.[0].every, 3600_000);
    assert.equal(d1.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(d1.action.taskQueue, taskQueue);
    assert.equal(d1.action.workflowType, 'syncAccount');
    assert.deepEqual(d1.action.args, [{ userId: alice, accountId: a1.id } satisfies SyncAccountInput]);
    assert.equal((await describeSchedule(b1)).state.paused, true);

    const again = await reconcile();
    assert.equal(
      again.created.length + again.updated.length + again.paused.length + again.unpaused.length + again.deleted.length,
      0,
    );
    assert.equal(again.unchanged.length, 3);
  });

  it('follows account changes: disabled -> paused, enabled -> unpaused, new interval -> updated', async () => {
    await store.updateAccountSettings(alice, a1.id, { enabled: false });
    await store.updateAccountSettings(alice, a2.id, { syncIntervalSeconds: 1800 });
    await store.updateAccountSettings(bob, b1.id, { enabled: true });
    const summary = await reconcile();
    assert.deepEqual(summary.paused, [syncScheduleId(a1.id)]);
    assert.deepEqual(summary.updated, [syncScheduleId(a2.id)]);
    assert.deepEqual(summary.unpaused, [syncScheduleId(b1.id)]);
    assert.equal((await describeSchedule(a1)).state.paused, true);
    assert.equal((await describeSchedule(a2)).spec.intervals?.[0].every, 1800_000);
    assert.equal((await describeSchedule(b1)).state.paused, false);
  });

  it('deletes the schedule of a removed account', async () => {
    // Schedule listing is eventually consistent: wait until the server lists them.
    await waitFor('schedules listed', async () => {
      const ids: string[] = [];
      for await (const s of env.client.schedule.list()) ids.push(s.scheduleId);
      return ids.includes(syncScheduleId(a2.id));
    });
    assert.ok(await store.removeAccount(alice, a2.id));
    const summary = await reconcile();
    assert.deepEqual(summary.deleted, [syncScheduleId(a2.id)]);
    await assert.rejects(describeSchedule(a2), /not found/i);
    assert.equal((await reconcile()).deleted.length, 0);
  });

  it('sync now triggers the schedule, and a second sync now joins the running sync instead of starting another', async () => {
    const imap = await imapSession(dovecot, CAROL.user, CAROL.password);
    await fillMailbox(imap, { INBOX: 3 });
    await imap.logout();
    await store.updateAccountSettings(alice, a1.id, { enabled: true });
    await reconcile();

    // a1's stored password is wrong, so its sync stays running (waiting for a new one).
    const first = await startSyncNow(env.client, a1, taskQueue);
    assert.equal(first.joined, false);
    assert.ok(first.workflowId.startsWith(`sync-account-${a1.id}-`), `scheduled workflow id, got ${first.workflowId}`);
    const handle = env.client.workflow.getHandle<typeof syncAccount>(first.workflowId);
    await waitFor('needs_attention', async () => (await handle.query(progressQuery)).status === 'needs_attention');

    const second = await startSyncNow(env.client, a1, taskQueue);
    assert.deepEqual(second, { workflowId: first.workflowId, joined: true });
    assert.equal((await describeSchedule(a1)).info.runningActions.length, 1);

    await setAccountPassword(store, keyring, alice, a1.id, CAROL.password);
    await handle.signal(passwordUpdatedSignal);
    const result = await handle.result();
    assert.equal(result.status, 'succeeded');
    // The syncNow signal from the second call asked for one more pass; it finds nothing new.
    assert.equal(result.messagesAdded, 3);
    assert.equal((await store.listMessages(alice, a1.id)).length, 3);
  });
});
