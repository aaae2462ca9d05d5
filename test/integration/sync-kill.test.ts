// A sync worker killed (SIGKILL) in the middle of a folder: a new worker takes the activity
// over after its heartbeat timeout and resumes from the last committed checkpoint. The
// store ends up equal to the server: no duplicates, no gaps, exact sync_runs counters.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createStore, type Store } from '../../lib/sync-store';
import { addAccountWithPassword } from '../../lib/sync-store/credentials';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import type { syncAccount } from '../../workflows/syncAccount';
import { syncWorkflowId } from '../../contracts/sync';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  fillMailbox,
  imapSession,
  quietTemporalLogs,
  serverView,
  sortMessages,
  startTestDovecot,
  waitFor,
  type TestDatabase,
  type TestDovecot,
} from './sync-fixtures';

const ROOT = join(__dirname, '..', '..');
const DAVE = { user: 'dave@example.test', password: 'dave-secret' };
const keyEntry = generateKeyEntry('k1');
const taskQueue = `sync-kill-${randomBytes(4).toString('hex')}`;
const TOTAL = { INBOX: 90, Sent: 30 };

describe('worker killed mid-sync', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dovecot: TestDovecot;
  let store: Store;
  const children: ChildProcess[] = [];

  before(async () => {
    quietTemporalLogs();
    [env, db, dovecot] = await Promise.all([startTestTemporal(), createTestDatabase(), startTestDovecot([DAVE])]);
    store = createStore(db.pool);
    const imap = await imapSession(dovecot, DAVE.user, DAVE.password);
    await fillMailbox(imap, TOTAL);
    await imap.logout();
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await env?.teardown();
    await dovecot?.cleanup();
    await db?.drop();
  });

  function startWorkerProcess(): { child: ChildProcess; output: () => string } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/sync-main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_NAMESPACE: env.namespace ?? 'default',
        DATABASE_URL: db.url,
        MAILROOM_SECRET_KEYS: keyEntry,
        SYNC_TASK_QUEUE: taskQueue,
        SYNC_METRICS_PORT: '0',
        // Plaintext payloads, like env.client (no codec configured there).
        MAILROOM_CODEC_KEYS: 'none',
        // Small, slow batches so the kill lands in the middle of a folder.
        SYNC_BATCH_SIZE: '5',
        SYNC_BATCHES_PER_ACTIVITY: '1000',
        SYNC_BATCH_PAUSE_MS: '150',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    children.push(child);
    return { child, output: () => out };
  }

  const count = async (userId: string, accountId: string) => (await store.listMessages(userId, accountId)).length;

  it('resumes from the checkpoint without duplicates or gaps', async () => {
    const userId = (await store.ensureUser('dave.owner@example.com')).id;
    const account = await addAccountWithPassword(
      store,
      parseKeyring(keyEntry),
      userId,
      {
        imapHost: '127.0.0.1',
        imapPort: dovecot.imapPort,
        imapTls: false,
        imapUser: DAVE.user,
        syncIntervalSeconds: 600,
      },
      DAVE.password,
    );
    const handle = await env.client.workflow.start<typeof syncAccount>('syncAccount', {
      taskQueue,
      workflowId: syncWorkflowId(account.id),
      args: [{ userId, accountId: account.id, options: { heartbeatTimeoutSeconds: 3 } }],
    });

    const first = startWorkerProcess();
    await waitFor(
      'the first worker to store some messages',
      async () => (await count(userId, account.id)) >= 20,
      120_000,
      50,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\nworker output:\n${first.output()}`);
    });
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const atKill = await count(userId, account.id);
    const total = TOTAL.INBOX + TOTAL.Sent;
    assert.ok(atKill < total, `killed too late (${atKill} of ${total} stored)`);

    const second = startWorkerProcess();
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      handle.result(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`sync did not finish; second worker output:\n${second.output()}`)),
          150_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    second.child.kill('SIGTERM');

    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesAdded, total, 'sync_runs counters are exact across the kill');

    const stored = await store.listMessages(userId, account.id);
    assert.equal(stored.length, total);
    assert.equal(new Set(stored.map((m) => m.messageId)).size, total, 'no message stored twice');
    const imap = await imapSession(dovecot, DAVE.user, DAVE.password);
    const server = await serverView(imap);
    await imap.logout();
    assert.deepEqual(
      sortMessages(
        stored.map((m) => ({
          folder: m.folder,
          uidValidity: m.uidValidity,
          uid: m.uid,
          messageId: m.messageId,
          flags: m.flags,
        })),
      ),
      server,
    );

    // The interrupted activity was retried (attempt 2+) rather than the sync starting over.
    const history = await handle.fetchHistory();
    const attempts = (history.events ?? []).map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 0);
    assert.ok(
      attempts.some((a) => a >= 2),
      'expected a retried activity attempt after the kill',
    );
  });
});
