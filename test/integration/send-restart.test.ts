// A scheduled send survives a crash of both the worker and the Temporal server (issue 23): the
// dev server runs on its own SQLite file here, so the send's timer is persisted. Worker and server
// are killed (SIGKILL, no shutdown) while the send waits, the server restarts on the same file,
// a new worker comes up, and the message goes out once, not before its time. How late it fired
// is printed, not asserted (the machine may be loaded).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createOutboxStore, type OutboxStore } from '../../lib/outbox';
import { createStore, type Account } from '../../lib/sync-store';
import { addAccountWithPassword } from '../../lib/sync-store/credentials';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { sendWorkflowId } from '../../contracts/send';
import { startSmtpTarget, type SmtpTarget } from '../../scripts/stack/smtp-target';
import { startTemporalDevServer, type LocalTemporal } from '../../scripts/stack/temporal-dev';
import { freePort } from '../../scripts/stack/ports';
import { createSendWorker } from '../../workers/send';
import { sendMessage } from '../../workflows/sendMessage';
import {
  createTestDatabase,
  quietTemporalLogs,
  startTestDovecot,
  syncWorkflowBundle,
  waitFor,
  type TestDatabase,
  type TestDovecot,
} from './sync-fixtures';

const keyEntry = generateKeyEntry('k1');
const taskQueue = `send-restart-${randomBytes(4).toString('hex')}`;
const ALICE = { user: 'alice@example.test', password: `pw-${randomBytes(6).toString('hex')}` };
const DELAY_MS = 20_000;

describe('a scheduled send across a crash of the worker and the Temporal server', () => {
  let dir: string;
  let port: number;
  let uiPort: number;
  let temporal: LocalTemporal | undefined;
  let db: TestDatabase;
  let dovecot: TestDovecot;
  let smtp: SmtpTarget;
  let outbox: OutboxStore;
  let userId: string;
  let alice: Account;
  let stopWorker: (() => Promise<void>) | undefined;

  const startTemporal = () =>
    startTemporalDevServer({
      dbFile: join(dir, 'temporal.sqlite'),
      port,
      uiPort,
      logFile: join(dir, 'temporal.log'),
    });

  /** A send worker on its own connection (a killed server takes the old one with it). */
  async function startWorker(): Promise<() => Promise<void>> {
    const connection = await NativeConnection.connect({ address: temporal!.address });
    const w = await createSendWorker(connection, 'default', {
      env: { ...process.env, DATABASE_URL: db.url, MAILROOM_SECRET_KEYS: keyEntry, SEND_TASK_QUEUE: taskQueue },
      dataConverter: null,
      pool: db.pool,
      workflowBundle: await syncWorkflowBundle(),
    });
    const running = w.run();
    return async () => {
      if (w.getState() === 'RUNNING') w.shutdown();
      await running.catch(() => {});
      await connection.close().catch(() => {});
    };
  }

  async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const connection = await Connection.connect({ address: temporal!.address });
    try {
      return await fn(new Client({ connection, namespace: 'default' }));
    } finally {
      await connection.close();
    }
  }

  before(async () => {
    quietTemporalLogs();
    dir = mkdtempSync(join(tmpdir(), 'mailroom-send-restart-'));
    [port, uiPort] = [await freePort(), await freePort()];
    [temporal, db, dovecot, smtp] = await Promise.all([
      startTemporal(),
      createTestDatabase(),
      startTestDovecot([ALICE]),
      startSmtpTarget({ directory: join(dir, 'smtp'), localDomains: [], mailboxes: [], auth: { users: [ALICE] } }),
    ]);
    const store = createStore(db.pool);
    outbox = createOutboxStore(db.pool);
    userId = (await store.ensureUser('owner@example.com')).id;
    alice = await addAccountWithPassword(
      store,
      parseKeyring(keyEntry),
      userId,
      {
        imapHost: '127.0.0.1',
        imapPort: dovecot.imapPort,
        imapTls: false,
        imapUser: ALICE.user,
        syncIntervalSeconds: 300,
      },
      ALICE.password,
    );
    await outbox.updateSmtpSettings(userId, alice.id, {
      host: '127.0.0.1',
      port: smtp.port,
      tls: 'none',
      sentFolder: 'Sent',
    });
    stopWorker = await startWorker();
  });

  after(async () => {
    await stopWorker?.();
    await temporal?.stop();
    await smtp?.stop();
    await dovecot?.cleanup();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fires once, not before its time, after the worker and the server were killed while it waited', async () => {
    const draft = await outbox.createDraft(userId, alice.id, { to: 'heidi@remote.example', text: 'at nine sharp' });
    const workflowId = sendWorkflowId(alice.id, draft.id);
    const sendAt = new Date(Date.now() + DELAY_MS);
    await outbox.markScheduled(userId, draft.id, sendAt, workflowId);
    await withClient((client) =>
      client.workflow.start(sendMessage, {
        taskQueue,
        workflowId,
        args: [{ userId, accountId: alice.id, outboxId: draft.id }],
      }),
    );
    await waitFor(
      'the send waits on its timer',
      async () => (await outbox.get(userId, draft.id))?.status === 'scheduled',
    );
    await withClient(async (client) => {
      await waitFor('the timer is started', async () => {
        const { events } = await client.workflow.getHandle(workflowId).fetchHistory();
        return (events ?? []).some((e) => e.timerStartedEventAttributes);
      });
    });

    // Both crash while the send waits; the server comes back on the same SQLite file.
    await stopWorker!();
    stopWorker = undefined;
    await temporal!.kill();
    temporal = await startTemporal();
    stopWorker = await startWorker();
    assert.ok(Date.now() < sendAt.getTime(), 'the crash and the restart happened while the send waited');

    const result = await withClient((client) => client.workflow.getHandle<typeof sendMessage>(workflowId).result());
    assert.equal(result.status, 'sent');
    const copies = (await smtp.deliveries()).filter((d) => d.messageId === draft.messageId);
    assert.equal(copies.length, 1, 'one copy');
    const row = await outbox.get(userId, draft.id);
    assert.equal(row?.status, 'sent');
    const sentAt = row?.submittedAt ?? new Date();
    assert.ok(
      sentAt.getTime() >= sendAt.getTime(),
      `not before its time: sent ${sentAt.toISOString()}, due ${sendAt.toISOString()}`,
    );
    console.log(`# scheduled send fired ${sentAt.getTime() - sendAt.getTime()} ms after its time, across the crash`);
  });
});
