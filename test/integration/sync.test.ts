// Account sync end to end: a real Dovecot, the real PostgreSQL, the Temporal dev server and
// the sync worker in this process. Tests run in order and build on each other's mailbox.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { addAccountWithPassword, setAccountPassword } from '../../lib/sync-store/credentials';
import { createStore, type Store } from '../../lib/sync-store';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { createSyncWorker, type SyncWorker } from '../../workers/sync';
import type { syncAccount } from '../../workflows/syncAccount';
import { passwordUpdatedSignal, progressQuery, syncWorkflowId, type SyncAccountInput } from '../../contracts/sync';
import { historyToJSON } from '../replay/history-json';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  fillMailbox,
  imapSession,
  serverView,
  sortMessages,
  syncWorkflowBundle,
  testMessage,
  waitFor,
  type TestDatabase,
  type TestDovecot,
  startTestDovecot,
  quietTemporalLogs,
} from './sync-fixtures';

const ALICE = { user: 'alice@example.test', password: 'alice-imap-secret' };
const BOB = { user: 'bob@example.test', password: 'bob-imap-secret' };
const keyEntry = generateKeyEntry('k1');
const keyring = parseKeyring(keyEntry);
const taskQueue = `sync-test-${randomBytes(4).toString('hex')}`;
const MAX_MESSAGE_BYTES = 256 * 1024;

describe('syncAccount workflow against Dovecot and PostgreSQL', () => {
  let env: TestWorkflowEnvironment;
  let dovecot: TestDovecot;
  let db: TestDatabase;
  let store: Store;
  let worker: SyncWorker;
  let workerRun: Promise<void>;
  let aliceId: string;
  let aliceAccount: string;

  before(async () => {
    quietTemporalLogs();
    [env, dovecot, db] = await Promise.all([startTestTemporal(), startTestDovecot([ALICE, BOB]), createTestDatabase()]);
    store = createStore(db.pool);
    worker = await createSyncWorker(env.nativeConnection, env.namespace ?? 'default', {
      env: { ...process.env, DATABASE_URL: db.url, MAILROOM_SECRET_KEYS: keyEntry, SYNC_TASK_QUEUE: taskQueue },
      // Plaintext payloads, like env.client: the tests read histories directly.
      dataConverter: null,
      pool: db.pool,
      workflowBundle: await syncWorkflowBundle(),
      // Small batches so a few dozen messages exercise batching, checkpoints and continue-as-new.
      config: { batchSize: 4, batchesPerActivity: 2, maxMessageBytes: MAX_MESSAGE_BYTES },
    });
    workerRun = worker.run();
    aliceId = (await store.ensureUser('alice.owner@example.com')).id;
    aliceAccount = (
      await addAccountWithPassword(
        store,
        keyring,
        aliceId,
        {
          imapHost: '127.0.0.1',
          imapPort: dovecot.imapPort,
          imapTls: false,
          imapUser: ALICE.user,
          syncIntervalSeconds: 300,
        },
        ALICE.password,
      )
    ).id;
  });

  after(async () => {
    worker?.shutdown();
    await workerRun?.catch(() => {});
    await env?.teardown();
    await dovecot?.cleanup();
    await db?.drop();
  });

  function start(input: SyncAccountInput, suffix = '') {
    return env.client.workflow.start<typeof syncAccount>('syncAccount', {
      taskQueue,
      workflowId: `${syncWorkflowId(input.accountId)}${suffix}-${randomBytes(3).toString('hex')}`,
      args: [input],
    });
  }

  async function storedView(userId: string, accountId: string) {
    const rows = await store.listMessages(userId, accountId);
    return sortMessages(
      rows.map((m) => ({
        folder: m.folder,
        uidValidity: m.uidValidity,
        uid: m.uid,
        messageId: m.messageId,
        flags: m.flags,
      })),
    );
  }

  async function assertMirrors(userId: string, accountId: string, login: { user: string; password: string }) {
    const imap = await imapSession(dovecot, login.user, login.password);
    try {
      assert.deepEqual(await storedView(userId, accountId), await serverView(imap));
    } finally {
      await imap.logout();
    }
  }

  it('initial sync stores every message of several folders, with raw source, and continues as new', async () => {
    const imap = await imapSession(dovecot, ALICE.user, ALICE.password);
    await fillMailbox(imap, { INBOX: 9, Sent: 5, 'Archive.2024': 3 });
    await imap.logout();

    const handle = await start({ userId: aliceId, accountId: aliceAccount, options: { fetchCallsPerRun: 1 } });
    const result = await handle.result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesAdded, 17);
    assert.equal(result.folders, 3);
    // Once done, nothing is pending (the progress bar's total is messagesFound).
    const done = await env.client.workflow.getHandle<typeof syncAccount>(handle.workflowId).query(progressQuery);
    assert.deepEqual(
      { phase: done.phase, pending: done.messagesPending, stored: done.messagesStored },
      { phase: 'done', pending: 0, stored: 17 },
    );
    await assertMirrors(aliceId, aliceAccount, ALICE);

    // Continue-as-new kept each run's history short: the handle's latest run is not the first.
    const latest = await env.client.workflow.getHandle(handle.workflowId).describe();
    assert.notEqual(latest.runId, handle.firstExecutionRunId, 'expected at least one continue-as-new');
    // RECORD_HISTORIES=1 refreshes the replay fixtures (test/replay/histories) from this run.
    if (process.env.RECORD_HISTORIES) {
      for (const [name, runId] of [
        ['first-run', handle.firstExecutionRunId],
        ['last-run', latest.runId],
      ] as const) {
        const history = await env.client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
        writeFileSync(
          join(__dirname, '..', 'replay', 'histories', `sync-initial-${name}.json`),
          historyToJSON(history).replaceAll(`@${hostname()}"`, '@recorder"'),
        );
      }
    }

    const messages = await store.listMessages(aliceId, aliceAccount, 'INBOX');
    assert.equal(messages.length, 9);
    const first = messages[0];
    assert.match(first.subject ?? '', /^INBOX message 1$/);
    assert.equal(first.from, 'Sender 1 <sender1@example.org>');
    assert.deepEqual(first.to, ['someone@example.test']);
    assert.ok(first.hasRaw);
    assert.match(
      first.rawRef ?? '',
      /^imap:\/\/alice%40example\.test@127\.0\.0\.1:\d+\/INBOX;UIDVALIDITY=\d+\/;UID=1$/,
    );
    const raw = (await store.getMessageRaw(aliceId, first.id))?.toString('utf8') ?? '';
    assert.ok(raw.includes(`Message-ID: ${first.messageId}`));

    const states = await store.getFolderStates(aliceId, aliceAccount);
    assert.deepEqual(
      states.map((s) => [s.folder, s.lastUid]),
      [
        ['Archive.2024', 3],
        ['INBOX', 9],
        ['Sent', 5],
      ],
    );
    assert.ok(
      states.every((s) => s.highestModseq !== null),
      'CONDSTORE: HIGHESTMODSEQ recorded',
    );

    const [run] = await store.listSyncRuns(aliceId, aliceAccount);
    assert.equal(run.status, 'succeeded');
    assert.equal(run.messagesAdded, 17);
    assert.ok(run.finishedAt);

    // History (all runs of the chain) carries ids and counts, never the password or a body.
    let runId: string | undefined = handle.firstExecutionRunId;
    const seen = new Set<string>();
    while (runId && !seen.has(runId)) {
      seen.add(runId);
      const history = JSON.stringify(await env.client.workflow.getHandle(handle.workflowId, runId).fetchHistory());
      assert.ok(!history.includes(ALICE.password), 'password in history');
      assert.ok(!history.includes('Body of message'), 'message body in history');
      const m = /"newExecutionRunId":"([^"]+)"/.exec(history);
      runId = m?.[1];
    }
    assert.ok(seen.size > 1);
  });

  it('incremental sync fetches only new mail', async () => {
    const before = await store.listMessages(aliceId, aliceAccount);
    const imap = await imapSession(dovecot, ALICE.user, ALICE.password);
    await fillMailbox(imap, { INBOX: 3, Sent: 2 }, 100);
    await imap.logout();

    const result = await (await start({ userId: aliceId, accountId: aliceAccount })).result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesAdded, 5);
    assert.equal(result.messagesDeleted, 0);
    await assertMirrors(aliceId, aliceAccount, ALICE);
    // The earlier rows were not touched (same row ids), only the new ones were added.
    const afterRows = await store.listMessages(aliceId, aliceAccount);
    const ids = new Map(afterRows.map((m) => [`${m.folder}/${m.uid}`, m.id]));
    for (const m of before) assert.equal(ids.get(`${m.folder}/${m.uid}`), m.id);
    assert.equal(afterRows.length, before.length + 5);
  });

  it('a UIDVALIDITY change resynchronises the folder cleanly', async () => {
    const imap = await imapSession(dovecot, ALICE.user, ALICE.password);
    const oldValidity = Number(((await imap.status('Sent', { uidValidity: true })) || undefined)?.uidValidity);
    // Recreated folder: UIDs start at 1 again but now name other messages.
    await imap.mailboxDelete('Sent');
    const fresh = await fillMailbox(imap, { Sent: 4 }, 500);
    const newValidity = Number(((await imap.status('Sent', { uidValidity: true })) || undefined)?.uidValidity);
    await imap.logout();
    assert.notEqual(newValidity, oldValidity);

    const result = await (await start({ userId: aliceId, accountId: aliceAccount })).result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesDeleted, 7, 'the 7 messages of the old Sent are gone');
    assert.equal(result.messagesAdded, 4);
    await assertMirrors(aliceId, aliceAccount, ALICE);
    const sent = await store.listMessages(aliceId, aliceAccount, 'Sent');
    assert.deepEqual(
      sent.map((m) => m.messageId),
      fresh.Sent,
    );
    assert.ok(sent.every((m) => m.uidValidity === newValidity));
    assert.equal((await store.getFolderState(aliceId, aliceAccount, 'Sent'))?.lastUid, 4);
  });

  it('picks up flag changes (CONDSTORE) and messages deleted on the server', async () => {
    const imap = await imapSession(dovecot, ALICE.user, ALICE.password);
    await imap.mailboxOpen('INBOX');
    await imap.messageFlagsAdd('1', ['\\Flagged', '\\Seen'], { uid: true });
    await imap.messageFlagsAdd('2', ['$Important'], { uid: true });
    await imap.messageDelete('3:4', { uid: true });
    await imap.mailboxOpen('Archive.2024');
    await imap.messageDelete('2', { uid: true });
    const modseq = ((await imap.status('INBOX', { highestModseq: true })) || undefined)?.highestModseq;
    await imap.logout();

    const result = await (await start({ userId: aliceId, accountId: aliceAccount })).result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesAdded, 0);
    assert.equal(result.messagesUpdated, 2);
    assert.equal(result.messagesDeleted, 3);
    await assertMirrors(aliceId, aliceAccount, ALICE);
    const inbox = await store.listMessages(aliceId, aliceAccount, 'INBOX');
    assert.deepEqual(inbox.find((m) => m.uid === 1)?.flags, ['\\Flagged', '\\Seen']);
    assert.deepEqual(inbox.find((m) => m.uid === 2)?.flags, ['$Important']);
    assert.equal((await store.getFolderState(aliceId, aliceAccount, 'INBOX'))?.highestModseq, String(modseq));
  });

  it('another user id cannot sync (or see) the account', async () => {
    const mallory = (await store.ensureUser('mallory@example.com')).id;
    const result = await (await start({ userId: mallory, accountId: aliceAccount }, '-mallory')).result();
    assert.equal(result.status, 'skipped');
    assert.equal(await store.getAccount(mallory, aliceAccount), null);
    assert.deepEqual(await store.listMessages(mallory, aliceAccount), []);
    assert.equal(
      (await store.listSyncRuns(aliceId, aliceAccount)).filter((r) => r.workflowId.includes('-mallory')).length,
      0,
    );
  });

  describe('wrong password', () => {
    let bobId: string;
    let bobAccount: string;

    before(async () => {
      const imap = await imapSession(dovecot, BOB.user, BOB.password);
      await fillMailbox(imap, { INBOX: 2 });
      await imap.logout();
      bobId = (await store.ensureUser('bob.owner@example.com')).id;
      bobAccount = (
        await addAccountWithPassword(
          store,
          keyring,
          bobId,
          {
            imapHost: '127.0.0.1',
            imapPort: dovecot.imapPort,
            imapTls: false,
            imapUser: BOB.user,
            syncIntervalSeconds: 300,
          },
          'not-the-password',
        )
      ).id;
    });

    async function activityAttempts(
      handle: WorkflowHandle,
      name: string,
    ): Promise<{ scheduled: number; attempts: number[]; failures: string[] }> {
      const history = await handle.fetchHistory();
      const scheduledIds = new Set<string>();
      const out = { scheduled: 0, attempts: [] as number[], failures: [] as string[] };
      for (const e of history.events ?? []) {
        if (e.activityTaskScheduledEventAttributes?.activityType?.name === name) {
          out.scheduled++;
          scheduledIds.add(String(e.eventId));
        }
        const started = e.activityTaskStartedEventAttributes;
        if (started && scheduledIds.has(String(started.scheduledEventId))) out.attempts.push(started.attempt ?? 0);
        const failed = e.activityTaskFailedEventAttributes;
        if (failed && scheduledIds.has(String(failed.scheduledEventId)))
          out.failures.push(failed.failure?.message ?? '');
      }
      return out;
    }

    it('fails once without retrying, marks the account, waits for the new password, then syncs', async () => {
      const handle = await start({ userId: bobId, accountId: bobAccount });
      const progress = await waitFor('needs_attention', async () => {
        const p = await handle.query(progressQuery);
        return p.status === 'needs_attention' ? p : undefined;
      });
      assert.equal(progress.phase, 'waiting_for_password');
      assert.match(progress.reason ?? '', /rejected the login of bob@example\.test.*AUTHENTICATIONFAILED/);

      const account = await store.getAccount(bobId, bobAccount);
      assert.equal(account?.status, 'needs_attention');
      assert.match(account?.statusReason ?? '', /rejected the login/);

      // Give a retry loop time to show itself: there must be exactly one attempt.
      await new Promise((r) => setTimeout(r, 2500));
      const prepare = await activityAttempts(handle, 'prepareFolders');
      assert.equal(prepare.scheduled, 1);
      assert.deepEqual(prepare.attempts, [1]);
      assert.equal(prepare.failures.length, 1);
      assert.match(prepare.failures[0], /npm run account:password/);

      assert.ok(await setAccountPassword(store, keyring, bobId, bobAccount, BOB.password));
      await handle.signal(passwordUpdatedSignal);
      const result = await handle.result();
      assert.equal(result.status, 'succeeded');
      assert.equal(result.messagesAdded, 2);
      assert.equal((await store.getAccount(bobId, bobAccount))?.status, 'ok');
      await assertMirrors(bobId, bobAccount, BOB);
    });

    it('without a new password the run ends as needs_attention, and the next run does not retry the old password', async () => {
      await setAccountPassword(store, keyring, bobId, bobAccount, 'wrong-again');
      const first = await start({ userId: bobId, accountId: bobAccount, options: { authWaitSeconds: 1 } });
      const result = await first.result();
      assert.equal(result.status, 'needs_attention');
      assert.match(result.reason ?? '', /rejected the login/);
      const [run] = await store.listSyncRuns(bobId, bobAccount);
      assert.equal(run.status, 'needs_attention');
      assert.match(run.error ?? '', /rejected the login/);
      assert.equal((await store.getAccount(bobId, bobAccount))?.status, 'needs_attention');

      const second = await start({ userId: bobId, accountId: bobAccount, options: { authWaitSeconds: 1 } });
      assert.equal((await second.result()).status, 'needs_attention');
      assert.equal(
        (await activityAttempts(second, 'prepareFolders')).scheduled,
        0,
        'no login attempted with the rejected password',
      );
    });
  });

  it('stores a message appended after the previous sync with its raw source intact', async () => {
    const imap = await imapSession(dovecot, ALICE.user, ALICE.password);
    const m = testMessage('INBOX', 999, ' (ünïcode)');
    await imap.append('INBOX', m.raw, ['\\Seen']);
    await imap.logout();
    const result = await (await start({ userId: aliceId, accountId: aliceAccount })).result();
    assert.equal(result.messagesAdded, 1);
    const row = (await store.listMessages(aliceId, aliceAccount, 'INBOX')).find((x) => x.messageId === m.messageId);
    assert.ok(row);
    assert.deepEqual(row.flags, ['\\Seen']);
    assert.equal((await store.getMessageRaw(aliceId, row.id))?.toString('utf8'), m.raw);
  });

  it('no message stops a folder: a NUL subject, invalid UTF-8, an impossible date and an oversize message', async () => {
    const id = (name: string) => `<${name}-${randomBytes(4).toString('hex')}@test.mailroom>`;
    const header = (messageId: string, subject: Buffer | string, extra: string[] = []) =>
      Buffer.concat([
        Buffer.from([`From: =?UTF-8?B?AA==?= <nul-name@example.org>`, 'To: someone@example.test', ''].join('\r\n')),
        Buffer.from('Subject: '),
        Buffer.isBuffer(subject) ? subject : Buffer.from(subject),
        Buffer.from(
          [
            '',
            `Message-ID: ${messageId}`,
            ...extra,
            'MIME-Version: 1.0',
            'Content-Type: text/plain; charset=utf-8',
            '',
            'Body.',
            '',
          ].join('\r\n'),
        ),
      ]);
    const ids = { nul: id('nul'), latin1: id('latin1'), date: id('date'), big: id('big'), after: id('after') };
    const big = Buffer.concat([
      header(ids.big, 'Large attachment'),
      Buffer.alloc(MAX_MESSAGE_BYTES + 50_000, 'A'),
      Buffer.from('\r\n'),
    ]);
    const imap = await imapSession(dovecot, ALICE.user, ALICE.password);
    // The subject that used to stop the folder for good: imapflow decodes it to a NUL character.
    await imap.append('INBOX', header(ids.nul, '=?UTF-8?B?AA==?=', ['Date: Mon, 1 Jan 2024 00:00:00 +0000']));
    // Raw 8-bit Latin-1 where UTF-8 is expected.
    await imap.append(
      'INBOX',
      header(ids.latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x01, 0x21]), [
        'Date: Mon, 1 Jan 2024 00:00:00 +0000',
      ]),
    );
    await imap.append('INBOX', header(ids.date, 'Far future', ['Date: Sat, 13 Sep 275760 00:00:00 +0000']));
    await imap.append('INBOX', big);
    await imap.append('INBOX', header(ids.after, 'The one after', ['Date: Mon, 1 Jan 2024 00:00:00 +0000']));
    await imap.logout();

    const result = await (await start({ userId: aliceId, accountId: aliceAccount })).result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesAdded, 5);
    assert.equal(result.messagesSkipped, 1, 'only the oversize body is skipped');
    await assertMirrors(aliceId, aliceAccount, ALICE);

    const rows = new Map((await store.listMessages(aliceId, aliceAccount, 'INBOX')).map((m) => [m.messageId, m]));
    assert.equal(rows.get(ids.nul)?.subject, '');
    assert.equal(rows.get(ids.nul)?.from, 'nul-name@example.org');
    assert.match(rows.get(ids.latin1)?.subject ?? '', /^caf\uFFFD !$/);
    assert.equal(rows.get(ids.date)?.sentAt, null);
    assert.ok(rows.get(ids.after)?.hasRaw);
    const stored = rows.get(ids.big);
    assert.equal(stored?.hasRaw, false);
    assert.match(stored?.rawRef ?? '', /^imap:\/\/.*;UID=\d+$/);
    const [skip] = (await store.listSyncErrors(aliceId, aliceAccount)).filter((e) => e.uid === stored?.uid);
    assert.equal(skip.kind, 'oversize');
    assert.ok(Math.abs((skip.size ?? 0) - big.length) < 100, `recorded size ${skip.size} vs ${big.length}`);
    assert.match(skip.reason, /larger than SYNC_MAX_MESSAGE_BYTES/);
    // The raw source of the NUL message is kept byte for byte.
    assert.ok((await store.getMessageRaw(aliceId, rows.get(ids.nul)!.id))?.includes(Buffer.from('=?UTF-8?B?AA==?=')));
  });
});
