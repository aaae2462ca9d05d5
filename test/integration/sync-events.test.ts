// New-message events end to end (docs/account-sync.md "New-message events"), against Dovecot,
// PostgreSQL and the Temporal dev server: the sync worker starts the sample application workflow
// (workflows/examples/messageConsumer.ts, in a worker of its own on another task queue) and a
// signed webhook delivery per new message, received here by a node:http server that checks
// every signature. Re-syncs and repeated dispatches start nothing twice; a receiver that is down
// gets its events once it is back; a refused webhook and one failing past the give-up time are
// recorded as failed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import pino from 'pino';
import { createMessageEvents } from '../../activities/sync/events';
import { messageEventWorkflowId, messageWebhookWorkflowId, type MessageEvent } from '../../contracts/message-events';
import { syncWorkflowId, type SyncAccountInput, type SyncResult } from '../../contracts/sync';
import { NO_MESSAGE_EVENTS, type MessageEventsConfig } from '../../lib/config/sync';
import { SIGNATURE_HEADER, verifyWebhook } from '../../lib/message-events/signature';
import { syncRegistry } from '../../lib/observability/sync-metrics';
import { createStore, type MessageEventRecord, type Store } from '../../lib/sync-store';
import { addAccountWithPassword } from '../../lib/sync-store/credentials';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { freePort } from '../../scripts/stack/ports';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  fillMailbox,
  imapSession,
  quietTemporalLogs,
  recordSyncHistory,
  startSyncTestWorker,
  startTestDovecot,
  waitFor,
  type TestDatabase,
  type TestDovecot,
} from './sync-fixtures';

const keyEntry = generateKeyEntry('k1');
const keyring = parseKeyring(keyEntry);
const suffix = randomBytes(4).toString('hex');
const taskQueue = `sync-events-${suffix}`;
const consumerQueue = `message-consumer-${suffix}`;
const SECRET = randomBytes(24).toString('hex');
const CAROL = { user: 'carol@example.test', password: 'carol-secret' };
const DAVE = { user: 'dave@example.test', password: 'dave-secret' };

/** The application's webhook receiver: verifies every signature, counts deliveries per event. */
class Receiver {
  mode: 'up' | 'down' = 'up';
  /** Accepted deliveries per event id, with the body as received. */
  readonly delivered = new Map<number, { count: number; event: MessageEvent }>();
  /** 503s answered while down (or on /down), per event id. */
  readonly refusedWhileDown = new Map<number, number>();
  badSignatures = 0;
  private server!: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const check = verifyWebhook([SECRET], raw, req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined);
        if (!check.ok) {
          this.badSignatures++;
          res.writeHead(401).end(check.reason);
          return;
        }
        const event = JSON.parse(raw.toString()) as MessageEvent;
        if (req.url === '/refuse') {
          res.writeHead(400).end('unknown account');
          return;
        }
        if (this.mode === 'down' || req.url === '/down') {
          this.refusedWhileDown.set(event.eventId, (this.refusedWhileDown.get(event.eventId) ?? 0) + 1);
          res.writeHead(503).end('maintenance');
          return;
        }
        const seen = this.delivered.get(event.eventId);
        this.delivered.set(event.eventId, { count: (seen?.count ?? 0) + 1, event });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('new-message events', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dovecot: TestDovecot;
  let store: Store;
  let syncWorker: { stop(): Promise<void> };
  let consumer: Worker;
  let consumerRun: Promise<void>;
  let userId: string;
  let carol: string;
  let dave: string;
  const receiver = new Receiver();
  let eventsConfig: MessageEventsConfig;

  before(async () => {
    quietTemporalLogs();
    [env, db, dovecot] = await Promise.all([
      startTestTemporal(),
      createTestDatabase(),
      startTestDovecot([CAROL, DAVE]),
      receiver.start(),
    ]);
    store = createStore(db.pool);
    userId = (await store.ensureUser('owner@example.com')).id;
    const account = (imapUser: string, password: string) =>
      addAccountWithPassword(
        store,
        keyring,
        userId,
        { imapHost: '127.0.0.1', imapPort: dovecot.imapPort, imapTls: false, imapUser, syncIntervalSeconds: 3600 },
        password,
      );
    carol = (await account(CAROL.user, CAROL.password)).id;
    dave = (await account(DAVE.user, DAVE.password)).id;
    eventsConfig = {
      ...NO_MESSAGE_EVENTS,
      enabledByDefault: true,
      workflowType: 'handleNewMessage',
      workflowTaskQueue: consumerQueue,
      webhookUrl: `${receiver.base}/hooks/mail`,
      webhookSecrets: [SECRET],
      webhookTimeoutMs: 5000,
      webhookRetryInitialSeconds: 1,
      webhookRetryMaxSeconds: 2,
      webhookGiveUpSeconds: 600,
    };
    syncWorker = await startSyncTestWorker(env, { db, keyEntry, taskQueue, config: { events: eventsConfig } });
    consumer = await Worker.create({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue: consumerQueue,
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: require.resolve('../../workflows/examples/messageConsumer'),
        logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: (m: string) => console.error(m) },
      }),
    });
    consumerRun = consumer.run();
  });

  after(async () => {
    consumer?.shutdown();
    await consumerRun?.catch(() => {});
    await syncWorker?.stop();
    await env?.teardown();
    await receiver.stop();
    await dovecot?.cleanup();
    await db?.drop();
  });

  async function sync(accountId: string): Promise<SyncResult> {
    const input: SyncAccountInput = { userId, accountId };
    return env.client.workflow.execute('syncAccount', {
      taskQueue,
      workflowId: `${syncWorkflowId(accountId)}-${randomBytes(3).toString('hex')}`,
      args: [input],
    });
  }

  async function append(login: { user: string; password: string }, folders: Record<string, number>, startAt = 1) {
    const imap = await imapSession(dovecot, login.user, login.password);
    try {
      await fillMailbox(imap, folders, startAt);
    } finally {
      await imap.logout();
    }
  }

  const events = (accountId: string) => store.listMessageEvents(userId, accountId);
  const byMessage = (rows: MessageEventRecord[]) => new Map(rows.map((e) => [e.messageId, e]));

  it('N new messages: N application workflows started once, N signed webhooks delivered once', async () => {
    await append(CAROL, { INBOX: 5, Archive: 3 });
    const result = await sync(carol);
    assert.equal(result.messagesAdded, 8);

    const messages = await store.listMessages(userId, carol);
    assert.equal(messages.length, 8);
    const rows = await events(carol);
    assert.deepEqual(
      rows.map((e) => e.messageId).sort((a, b) => a - b),
      messages.map((m) => m.id).sort((a, b) => a - b),
    );
    // Dispatched within the sync itself (after each batch, and in finishSync).
    assert.ok(rows.every((e) => e.dispatchedAt !== null && e.workflowStarted));

    for (const m of messages) {
      const handle = env.client.workflow.getHandle(messageEventWorkflowId(carol, m.id));
      const out = (await handle.result()) as { eventId: number; messageId: number };
      assert.equal(out.messageId, m.id);
      assert.equal(out.eventId, byMessage(rows).get(m.id)!.id);
    }

    await waitFor('8 webhooks delivered', async () => receiver.delivered.size === 8, 60_000);
    await waitFor(
      'webhook_status delivered on every event',
      async () => (await events(carol)).every((e) => e.webhookStatus === 'delivered'),
      30_000,
    );
    assert.equal(receiver.badSignatures, 0);
    for (const m of messages) {
      const got = [...receiver.delivered.values()].find((d) => d.event.messageId === m.id);
      assert.ok(got, `webhook for message ${m.id}`);
      assert.equal(got.count, 1);
      assert.deepEqual(got.event, {
        type: 'messageNew',
        eventId: byMessage(rows).get(m.id)!.id,
        userId,
        accountId: carol,
        messageId: m.id,
        folder: m.folder,
        occurredAt: byMessage(rows).get(m.id)!.createdAt.toISOString(),
      });
    }

    // Ids only in the histories: no address, subject or body.
    const histories = JSON.stringify([
      await env.client.workflow.getHandle(messageEventWorkflowId(carol, messages[0].id)).fetchHistory(),
      await env.client.workflow.getHandle(messageWebhookWorkflowId(carol, messages[0].id)).fetchHistory(),
    ]);
    for (const secret of ['example.org', 'example.test', 'message 1', 'Body of', SECRET, '/hooks/mail'])
      assert.ok(!histories.includes(secret), `history holds "${secret}"`);
  });

  it('a re-sync, a retried batch and a second dispatch of the same rows start nothing twice', async () => {
    const before = await events(carol);
    const runIds = new Map<string, string>();
    for (const e of before) {
      for (const id of [messageEventWorkflowId(carol, e.messageId), messageWebhookWorkflowId(carol, e.messageId)])
        runIds.set(id, (await env.client.workflow.getHandle(id).describe()).runId);
    }

    // Nothing new on the server: no new event.
    assert.equal((await sync(carol)).messagesAdded, 0);
    assert.equal((await events(carol)).length, before.length);

    // A retried batch (the activity died after its commit): the rows are there, no event is added.
    const inbox = (await store.getFolderState(userId, carol, 'INBOX'))!;
    const stored = (await store.listMessages(userId, carol, 'INBOX'))[0];
    const again = await store.storeMessages(
      userId,
      carol,
      'INBOX',
      inbox.uidValidity,
      [{ ...stored, raw: Buffer.from('Subject: x\r\n\r\nx\r\n'), bodyText: null }],
      stored.uid,
      undefined,
      [],
      { eventsByDefault: true },
    );
    assert.deepEqual({ inserted: again.inserted, events: again.events }, { inserted: 0, events: 0 });

    // A worker that died between starting the workflows and marking the rows: the rows are
    // pending again, the next sync's finishSync dispatches them, and every start is a duplicate.
    await db.pool.query('UPDATE message_events SET dispatched_at = NULL WHERE account_id = $1', [carol]);
    assert.equal((await store.listPendingEvents(userId, carol, 100)).length, before.length);
    await sync(carol);
    const after = await events(carol);
    assert.ok(after.every((e) => e.dispatchedAt !== null && e.webhookStatus === 'delivered'));
    for (const [id, runId] of runIds)
      assert.equal((await env.client.workflow.getHandle(id).describe()).runId, runId, `${id} started again`);

    // The dispatcher on its own, twice over the same pending rows: duplicates only.
    await db.pool.query('UPDATE message_events SET dispatched_at = NULL WHERE account_id = $1', [carol]);
    const dispatcher = createMessageEvents({
      store,
      temporal: env.client,
      config: eventsConfig,
      taskQueue,
      log: pino({ level: 'silent' }),
    });
    for (let i = 0; i < 2; i++) {
      const summary = await dispatcher.dispatch({ userId, accountId: carol });
      assert.deepEqual(
        { started: summary.workflowsStarted + summary.webhooksStarted, pending: summary.pending },
        { started: 0, pending: false },
      );
    }
    assert.ok([...receiver.delivered.values()].every((d) => d.count === 1));
    assert.equal(receiver.delivered.size, 8);
  });

  it('Temporal unreachable: the dispatch fails nothing, the events stay pending, the next dispatch sends them', async () => {
    await db.pool.query('UPDATE message_events SET dispatched_at = NULL WHERE account_id = $1', [carol]);
    // A client whose server is not there (nothing listens on that port).
    const nowhere = new Client({ connection: Connection.lazy({ address: `127.0.0.1:${await freePort()}` }) });
    const unreachable = createMessageEvents({
      store,
      temporal: nowhere,
      config: eventsConfig,
      taskQueue,
      log: pino({ level: 'silent' }),
    });
    const failed = await unreachable.dispatch({ userId, accountId: carol });
    assert.deepEqual({ dispatched: failed.dispatched, pending: failed.pending }, { dispatched: 0, pending: true });
    assert.equal((await store.listPendingEvents(userId, carol, 100)).length, 8);
    const metrics = await syncRegistry.getSingleMetricAsString('mailroom_sync_message_events_dispatched_total');
    assert.match(metrics, /form="any",outcome="failed"\} [1-9]/);
    await nowhere.connection.close();

    // The next sync step (here its finishSync) sends them: duplicates of what ran, nothing new.
    await sync(carol);
    assert.deepEqual(await store.listPendingEvents(userId, carol, 100), []);
    assert.ok([...receiver.delivered.values()].every((d) => d.count === 1));
  });

  it('a receiver that is down gets its events after retries once it is back', async () => {
    receiver.mode = 'down';
    await append(CAROL, { INBOX: 2 }, 100);
    assert.equal((await sync(carol)).messagesAdded, 2);
    const fresh = (await events(carol)).filter((e) => !receiver.delivered.has(e.id));
    assert.equal(fresh.length, 2);
    // The application workflows do not wait for the webhook.
    for (const e of fresh) await env.client.workflow.getHandle(messageEventWorkflowId(carol, e.messageId)).result();

    // Failing attempts are recorded on the event while the delivery goes on.
    await waitFor(
      'two failed attempts recorded per event',
      async () => {
        const rows = (await events(carol)).filter((e) => fresh.some((f) => f.id === e.id));
        return rows.every(
          (e) => e.webhookStatus === 'pending' && e.webhookAttempts >= 2 && /HTTP 503/.test(e.webhookError ?? ''),
        );
      },
      60_000,
    );
    receiver.mode = 'up';
    await waitFor(
      'both delivered after the receiver came back',
      async () => (await events(carol)).every((e) => e.webhookStatus === 'delivered'),
      60_000,
    );
    // RECORD_HISTORIES=1: a delivery that took retries, for test/integration/replay.test.ts.
    await recordSyncHistory(
      env.client,
      messageWebhookWorkflowId(carol, fresh[0].messageId),
      undefined,
      'webhook-retried',
    );
    for (const e of fresh) {
      assert.ok((receiver.refusedWhileDown.get(e.id) ?? 0) >= 2);
      assert.equal(receiver.delivered.get(e.id)?.count, 1);
    }
    assert.equal(receiver.badSignatures, 0);
  });

  it('a refused webhook fails at once, one failing past the give-up time after retries: both recorded, never dropped', async () => {
    // An account with a webhook URL of its own, which the receiver refuses (HTTP 400).
    await store.updateEventSettings(userId, dave, { webhookUrl: `${receiver.base}/refuse` });
    await append(DAVE, { INBOX: 1 });
    assert.equal((await sync(dave)).messagesAdded, 1);
    const [refused] = await events(dave);
    await assert.rejects(
      env.client.workflow.getHandle(messageWebhookWorkflowId(dave, refused.messageId)).result(),
      (err: unknown) => err instanceof WorkflowFailedError && /refused: HTTP 400;/.test(String(err.cause?.message)),
    );
    await recordSyncHistory(
      env.client,
      messageWebhookWorkflowId(dave, refused.messageId),
      undefined,
      'webhook-refused',
    );
    const failed = (await events(dave))[0];
    assert.equal(failed.webhookStatus, 'failed');
    assert.equal(failed.webhookAttempts, 1);
    assert.match(failed.webhookError ?? '', /HTTP 400: unknown account/);
    // The application workflow was started all the same.
    await env.client.workflow.getHandle(messageEventWorkflowId(dave, refused.messageId)).result();

    // A receiver that stays down: given up after giveUpSeconds (4 s here), recorded as failed.
    await store.updateEventSettings(userId, dave, { webhookUrl: `${receiver.base}/down` });
    await append(DAVE, { INBOX: 1 }, 50);
    const shortGiveUp = createMessageEvents({
      store,
      temporal: env.client,
      config: { ...eventsConfig, workflowType: null, webhookGiveUpSeconds: 4 },
      taskQueue,
      log: pino({ level: 'silent' }),
    });
    // Stored (with its event) as a sync would, dispatched by the short-lived configuration.
    const state = (await store.getFolderState(userId, dave, 'INBOX'))!;
    const { events: recorded } = await store.storeMessages(
      userId,
      dave,
      'INBOX',
      state.uidValidity,
      [
        {
          uid: state.lastUid + 1,
          messageId: null,
          from: null,
          to: [],
          subject: null,
          sentAt: null,
          internalDate: null,
          flags: [],
          modseq: null,
          size: 10,
          raw: Buffer.from('Subject: y\r\n\r\ny\r\n'),
          rawRef: null,
        },
      ],
      state.lastUid + 1,
      undefined,
      [],
      { eventsByDefault: shortGiveUp.eventsByDefault },
    );
    assert.equal(recorded, 1);
    const pending = await store.listPendingEvents(userId, dave, 10);
    assert.equal(pending.length, 1);
    const summary = await shortGiveUp.dispatch({ userId, accountId: dave });
    assert.equal(summary.webhooksStarted, 1);
    await assert.rejects(
      env.client.workflow.getHandle(messageWebhookWorkflowId(dave, pending[0].messageId)).result(),
      (err: unknown) => err instanceof WorkflowFailedError && /given up/.test(String(err.cause?.message)),
    );
    await recordSyncHistory(
      env.client,
      messageWebhookWorkflowId(dave, pending[0].messageId),
      undefined,
      'webhook-given-up',
    );
    // The receiver's address and answer stay out of history: they are in the record.
    const failedHistory = JSON.stringify(
      await env.client.workflow.getHandle(messageWebhookWorkflowId(dave, pending[0].messageId)).fetchHistory(),
    );
    assert.ok(!failedHistory.includes(receiver.base.replace('http://', '')), 'receiver address in history');
    assert.ok(!failedHistory.includes('maintenance'), "receiver's answer in history");
    const gaveUp = (await events(dave)).find((e) => e.id === pending[0].id)!;
    assert.equal(gaveUp.webhookStatus, 'failed');
    assert.ok(gaveUp.webhookAttempts >= 2, `attempts ${gaveUp.webhookAttempts}`);
    assert.match(
      gaveUp.webhookError ?? '',
      /given up.*HTTP 503.*\nlast attempt: POST http:\/\/127\.0\.0\.1:\d+\/down answered HTTP 503: maintenance$/s,
    );
    assert.ok((receiver.refusedWhileDown.get(pending[0].id) ?? 0) >= 2);

    const metrics = await syncRegistry.getSingleMetricAsString('mailroom_sync_webhook_deliveries_total');
    assert.match(metrics, /outcome="given_up"\} [1-9]/);
    assert.match(metrics, /outcome="delivered"\} [1-9]/);
  });
});
