// Bounded by us, not by the server: the sync against a hostile IMAP server (test/support/
// hostile-imap.ts) that lies about sizes, drips, sends an endless FETCH response and closes
// mid-literal. Each sync ends in bounded time and memory; the other folders of the account and
// another account on a real Dovecot (synced at the same time by the same worker) go on.
// Then hostile names and texts: folder names decoding to NUL or an unpaired surrogate, a
// subject with escape sequences, a login refused with a NO text holding a NUL and ANSI escapes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { addAccountWithPassword } from '../../lib/sync-store/credentials';
import { createStore, type Store } from '../../lib/sync-store';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import type { syncAccount } from '../../workflows/syncAccount';
import { syncWorkflowId, type SyncAccountInput } from '../../contracts/sync';
import { startHostileImap, type HostileImapServer } from '../support/hostile-imap';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  fillMailbox,
  imapSession,
  quietTemporalLogs,
  recordSyncHistory,
  startSyncTestWorker,
  startTestDovecot,
  type TestDatabase,
  type TestDovecot,
} from './sync-fixtures';

const keyEntry = generateKeyEntry('k1');
const keyring = parseKeyring(keyEntry);
const taskQueue = `sync-hostile-${randomBytes(4).toString('hex')}`;
const CALM = { user: 'calm@example.test', password: 'calm-secret' };
const MAX_MESSAGE_BYTES = 1024 * 1024;

describe('sync against a hostile IMAP server', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dovecot: TestDovecot;
  let hostile: HostileImapServer;
  let store: Store;
  let worker: { stop(): Promise<void> };

  before(async () => {
    quietTemporalLogs();
    [env, db, dovecot] = await Promise.all([startTestTemporal(), createTestDatabase(), startTestDovecot([CALM])]);
    hostile = await startHostileImap({
      folders: {
        INBOX: [{ behaviour: 'ok' }, { behaviour: 'ok' }, { behaviour: 'ok' }],
        Lies: [{ behaviour: 'ok' }, { behaviour: 'size-lie' }, { behaviour: 'ok' }],
        Drip: [{ behaviour: 'ok' }, { behaviour: 'drip' }, { behaviour: 'ok' }],
        Endless: [{ behaviour: 'ok' }, { behaviour: 'endless' }],
        Cut: [{ behaviour: 'ok' }, { behaviour: 'cut' }, { behaviour: 'ok' }],
        Zzz: [{ behaviour: 'ok' }, { behaviour: 'ok' }],
      },
    });
    store = createStore(db.pool);
    // One message per batch from the second on: a hostile message is never alone in the first.
    worker = await startSyncTestWorker(env, {
      db,
      keyEntry,
      taskQueue,
      config: { batchSize: 2, batchesPerActivity: 4, maxMessageBytes: MAX_MESSAGE_BYTES },
    });
  });

  after(async () => {
    await worker?.stop();
    await env?.teardown();
    await hostile?.stop();
    await dovecot?.cleanup();
    await db?.drop();
  });

  function start(input: SyncAccountInput) {
    return env.client.workflow.start<typeof syncAccount>('syncAccount', {
      taskQueue,
      workflowId: `${syncWorkflowId(input.accountId)}-${randomBytes(3).toString('hex')}`,
      args: [input],
    });
  }

  it('ends in bounded time and memory, skips the liar, gives up on the stalling folders and syncs everything else', async () => {
    const owner = (await store.ensureUser('owner@example.com')).id;
    const victim = await addAccountWithPassword(
      store,
      keyring,
      owner,
      {
        imapHost: hostile.host,
        imapPort: hostile.port,
        imapTls: false,
        imapUser: hostile.user,
        syncIntervalSeconds: 300,
      },
      hostile.password,
    );
    const imap = await imapSession(dovecot, CALM.user, CALM.password);
    await fillMailbox(imap, { INBOX: 6, Archive: 4 });
    await imap.logout();
    const calm = await addAccountWithPassword(
      store,
      keyring,
      owner,
      {
        imapHost: '127.0.0.1',
        imapPort: dovecot.imapPort,
        imapTls: false,
        imapUser: CALM.user,
        syncIntervalSeconds: 300,
      },
      CALM.password,
    );

    // Buffers (message bodies, socket data) live outside the JS heap: arrayBuffers counts them.
    const before = process.memoryUsage();
    const peak = { rss: before.rss, arrayBuffers: before.arrayBuffers };
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peak.rss = Math.max(peak.rss, now.rss);
      peak.arrayBuffers = Math.max(peak.arrayBuffers, now.arrayBuffers);
    }, 20);
    const t0 = Date.now();
    // Short heartbeat timeout and two attempts, so the stalling folders are given up on within seconds here.
    const hostileRun = start({
      userId: owner,
      accountId: victim.id,
      options: { heartbeatTimeoutSeconds: 5, imapMaxAttempts: 2 },
    });
    const calmRun = start({ userId: owner, accountId: calm.id });
    const [hostileHandle, calmHandle] = await Promise.all([hostileRun, calmRun]);
    let calmDoneAt = 0;
    const calmResult = await calmHandle.result().then((r) => {
      calmDoneAt = Date.now();
      return r;
    });
    const result = await hostileHandle.result().catch(async (err) => {
      // Say why, from the history, before failing.
      const events = (await hostileHandle.fetchHistory()).events ?? [];
      const failures = events.flatMap((e) =>
        [
          e.activityTaskFailedEventAttributes?.failure?.message,
          e.workflowExecutionFailedEventAttributes?.failure?.cause?.message,
        ].filter(Boolean),
      );
      throw new Error(`hostile sync failed: ${(err as Error).message}; failures: ${failures.join(' | ')}`);
    });
    const seconds = (Date.now() - t0) / 1000;
    clearInterval(sampler);

    // The other account is not held up by the hostile one.
    assert.equal(calmResult.status, 'succeeded');
    assert.equal(calmResult.messagesAdded, 10);
    assert.ok(calmDoneAt - t0 < (Date.now() - t0) / 2, 'the calm account finished long before the hostile one');

    // Bounded: the whole hostile sync ends (it would run for hours otherwise: the drip, the endless response).
    assert.ok(seconds < 120, `hostile sync took ${seconds} s`);
    assert.equal(result.status, 'partial');
    assert.equal(result.foldersFailed, 3);
    assert.equal(result.messagesSkipped, 1);
    assert.match(result.reason ?? '', /3 folder\(s\) could not be synced.*Drip/);

    // Memory: the 64 MiB the liar announced was refused at its announcement, not read.
    assert.ok(
      hostile.bodyBytesSent['size-lie'] < 16 * 1024 * 1024,
      `server got to send ${hostile.bodyBytesSent['size-lie']} bytes of the lie`,
    );
    const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
    assert.ok(
      peak.arrayBuffers - before.arrayBuffers < 16 * 2 ** 20,
      `buffers grew by ${mib(peak.arrayBuffers - before.arrayBuffers)}`,
    );
    // RSS also holds the worker, the workflows and the calm sync; reading the lie would add 64 MiB at least.
    assert.ok(peak.rss - before.rss < 96 * 2 ** 20, `RSS grew by ${mib(peak.rss - before.rss)}`);

    // Everything that could be synced was, folder by folder.
    const rows = await store.listMessages(owner, victim.id);
    const byFolder = (f: string) => rows.filter((m) => m.folder === f).map((m) => [m.uid, m.hasRaw]);
    assert.deepEqual(byFolder('INBOX'), [
      [1, true],
      [2, true],
      [3, true],
    ]);
    assert.deepEqual(
      byFolder('Zzz'),
      [
        [1, true],
        [2, true],
      ],
      'the folder after the hostile ones was synced',
    );
    // The liar: its metadata is stored (without body, raw_ref points at it), the next message too.
    assert.deepEqual(byFolder('Lies'), [
      [1, true],
      [2, false],
      [3, true],
    ]);
    // Stalled, endless, cut: what arrived before the trouble is committed, the rest waits for the next run.
    assert.deepEqual(byFolder('Drip'), [[1, true]]);
    assert.deepEqual(byFolder('Endless'), [[1, true]]);
    assert.deepEqual(byFolder('Cut'), [[1, true]]);
    const states = new Map((await store.getFolderStates(owner, victim.id)).map((s) => [s.folder, s.lastUid]));
    assert.deepEqual(Object.fromEntries(states), { INBOX: 3, Lies: 3, Drip: 1, Endless: 1, Cut: 1, Zzz: 2 });

    const errors = await store.listSyncErrors(owner, victim.id);
    const lie = errors.find((e) => e.folder === 'Lies');
    assert.deepEqual(
      { uid: lie?.uid, kind: lie?.kind, size: lie?.size },
      { uid: 2, kind: 'oversize', size: 64 * 1024 * 1024 },
    );
    assert.match(lie?.reason ?? '', /sent 64 MiB for a message it listed as 100 bytes/);
    const folderErrors = Object.fromEntries(errors.filter((e) => e.kind === 'folder').map((e) => [e.folder, e.reason]));
    assert.deepEqual(Object.keys(folderErrors).sort(), ['Cut', 'Drip', 'Endless']);
    assert.match(folderErrors.Drip, /no progress|Heartbeat/i);
    assert.match(folderErrors.Endless, /FETCH responses for messages not asked for/);
    assert.match(folderErrors.Cut, /closed|Connection/i);

    // The path that records failed folders and ends 'partial' (patch sync-folder-errors-continue).
    await recordSyncHistory(env.client, hostileHandle.workflowId, undefined, 'partial-folder-errors');

    const [run] = await store.listSyncRuns(owner, victim.id);
    assert.deepEqual({ status: run.status, skipped: run.messagesSkipped }, { status: 'partial', skipped: 1 });
    const [summary] = (await store.listAccounts(owner)).filter((a) => a.id === victim.id);
    assert.equal(summary.skippedCount, 1);

    // Nothing is left hanging on the server side.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(hostile.openConnections(), 0, 'every connection to the hostile server was closed');
  });
});

/** What PostgreSQL and UTF-8 accept: no NUL, no unpaired surrogate. */
const validUtf8 = (s: string) => !s.includes('\u0000') && Buffer.from(s, 'utf8').toString('utf8') === s;
// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROLS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

describe('sync against hostile folder names and server texts', () => {
  const ROOT = join(__dirname, '..', '..');
  const queue = `sync-hostile-names-${randomBytes(4).toString('hex')}`;
  const OWNER = 'names.owner@example.com';
  const REFUSAL = 'Authentication failed\u0000 \u001B[2J\u001B[1;31mcall +1 555 0100 now\u001B[0m\u001B]0;pwned\u0007';
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let names: HostileImapServer;
  let refusing: HostileImapServer;
  let store: Store;
  let worker: { stop(): Promise<void> };
  let owner: string;

  before(async () => {
    quietTemporalLogs();
    [env, db] = await Promise.all([startTestTemporal(), createTestDatabase()]);
    names = await startHostileImap({
      folders: {
        INBOX: [{ behaviour: 'ok' }, { behaviour: 'ok', subject: 'Hi \u001B[2J\u001B[31mred\u001B[0m there' }],
        '&AAA-': [{ behaviour: 'ok' }], // NUL
        'x&2AA-': [{ behaviour: 'ok' }, { behaviour: 'ok' }], // "x" and an unpaired surrogate
        // "y" + NUL and "y" + a real U+FFFD: one key once made valid, so one of them cannot be stored.
        'y&AAA-': [{ behaviour: 'ok' }],
        'y&//0-': [{ behaviour: 'ok' }],
        Zzz: [{ behaviour: 'ok' }],
      },
    });
    refusing = await startHostileImap({ folders: { INBOX: [{ behaviour: 'ok' }] }, loginRefusal: REFUSAL });
    store = createStore(db.pool);
    worker = await startSyncTestWorker(env, { db, keyEntry, taskQueue: queue });
    owner = (await store.ensureUser(OWNER)).id;
  });

  after(async () => {
    await worker?.stop();
    await env?.teardown();
    await names?.stop();
    await refusing?.stop();
    await db?.drop();
  });

  async function sync(accountId: string) {
    const handle = await env.client.workflow.start<typeof syncAccount>('syncAccount', {
      taskQueue: queue,
      workflowId: `${syncWorkflowId(accountId)}-${randomBytes(3).toString('hex')}`,
      args: [{ userId: owner, accountId, options: { authWaitSeconds: 1, imapMaxAttempts: 2 } }],
    });
    return handle.result();
  }

  function addAccount(server: HostileImapServer) {
    return addAccountWithPassword(
      store,
      keyring,
      owner,
      { imapHost: server.host, imapPort: server.port, imapTls: false, imapUser: server.user, syncIntervalSeconds: 300 },
      server.password,
    );
  }

  async function accountList(...args: string[]) {
    const run = promisify(execFile);
    return run(process.execPath, ['--import', 'tsx', 'starters/list-accounts.ts', '--user', OWNER, ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.url, MAILROOM_SECRET_KEYS: keyEntry, LOG_LEVEL: 'warn' },
    }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
    );
  }

  it('syncs folders named with NUL or an unpaired surrogate under their cleaned names, records a clash, and the run ends', async () => {
    const account = await addAccount(names);
    const result = await sync(account.id);
    // One folder (the second of the y pair) cannot be stored apart: recorded, the others synced.
    assert.equal(result.status, 'partial');
    assert.equal(result.foldersFailed, 1);

    const rows = await store.listMessages(owner, account.id);
    const count = (folder: string) => rows.filter((m) => m.folder === folder).length;
    assert.equal(count('INBOX'), 2);
    assert.equal(count('\uFFFD'), 1, '&AAA- (NUL) synced as U+FFFD');
    assert.equal(count('x\uFFFD'), 2, 'x&2AA- (unpaired surrogate) synced as x U+FFFD');
    assert.equal(count('y\uFFFD'), 1, 'one of the y pair synced');
    assert.equal(count('Zzz'), 1, 'the folder after them too');
    for (const m of rows) {
      for (const text of [m.folder, m.subject ?? '', m.from ?? '', m.rawRef ?? '', ...m.to, ...m.flags])
        assert.ok(validUtf8(text) && !TERMINAL_CONTROLS.test(text.replace(/[\t\n]/g, '')), JSON.stringify(text));
    }
    assert.ok(
      rows.some((m) => m.subject === 'Hi red there'),
      'escape sequences left the subject, whole',
    );
    assert.match(rows.find((m) => m.folder === 'x\uFFFD')?.rawRef ?? '', /\/x%EF%BF%BD;UIDVALIDITY=4242\/;UID=1$/);

    const [folderError] = (await store.listSyncErrors(owner, account.id)).filter((e) => e.kind === 'folder');
    assert.equal(folderError?.folder, 'y\uFFFD');
    assert.match(folderError?.reason ?? '', /is stored as that of folder "y\uFFFD".*rename one of them/);

    const [run] = await store.listSyncRuns(owner, account.id);
    assert.equal(run.status, 'partial');
    assert.ok(run.finishedAt, 'the run ended');
    assert.ok(validUtf8(run.error ?? '') && !TERMINAL_CONTROLS.test(run.error ?? ''), JSON.stringify(run.error));

    // The next run finds the same folders under the same keys: nothing reset, nothing fetched again.
    const again = await sync(account.id);
    assert.equal(again.status, 'partial');
    assert.equal(again.messagesAdded, 0);
    assert.equal(again.messagesDeleted, 0);
    assert.equal((await store.listMessages(owner, account.id)).length, rows.length);

    const listed = await accountList('--skipped');
    assert.equal(listed.code, 0);
    assert.ok(!TERMINAL_CONTROLS.test(listed.stdout.replace(/\n/g, '')), JSON.stringify(listed.stdout));
    assert.ok(validUtf8(listed.stdout));
    assert.match(
      listed.stdout,
      / {2,}folder y\uFFFD: preparing the folder failed: its name is stored as that of folder/,
    );
  });

  it('a login refused with a NO text holding a NUL and escape sequences marks the account needs-attention once', async () => {
    const account = await addAccount(refusing);
    const first = await sync(account.id);
    assert.equal(first.status, 'needs_attention');
    assert.equal(refusing.logins, 1);
    const marked = await store.getAccount(owner, account.id);
    assert.equal(marked?.status, 'needs_attention');
    const reason = marked?.statusReason ?? '';
    assert.match(reason, /rejected the login of .*Authentication failed\uFFFD .*call \+1 555 0100 now/);
    assert.ok(validUtf8(reason) && !TERMINAL_CONTROLS.test(reason), JSON.stringify(reason));
    const [run] = await store.listSyncRuns(owner, account.id);
    assert.deepEqual([run.status, run.finishedAt !== null], ['needs_attention', true]);

    // The next run does not try the refused password again: it waits for a new one.
    const second = await sync(account.id);
    assert.equal(second.status, 'needs_attention');
    assert.equal(refusing.logins, 1, 'the refused login is not retried every run');

    const listed = await accountList();
    assert.equal(listed.code, 3, 'account:list exits 3 while an account needs attention');
    assert.match(listed.stdout, /NEEDS ATTENTION/);
    assert.match(listed.stdout, /Authentication failed/);
    assert.ok(!listed.stdout.includes('\u001B') && !listed.stdout.includes('\u0000'), JSON.stringify(listed.stdout));
    assert.ok(!TERMINAL_CONTROLS.test(listed.stdout.replace(/\n/g, '')), JSON.stringify(listed.stdout));
  });
});
