// The IMAP IDLE watcher against the real local Dovecot, PostgreSQL and the Temporal dev server:
// mail appended to a watched account reaches PostgreSQL without any Schedule firing (the
// Schedules here run every 30 days); a burst of 20 appends gives few syncs and all 20 rows;
// Dovecot restarted mid-IDLE: the watcher reconnects, a message delivered during the outage
// arrives, none twice; disabling and removing the account stop the watcher; the connection
// budget holds (a counting TCP proxy between the worker and Dovecot), with 2 (watcher + sync)
// and with 1 (the watcher lets a sync have the connection). Delays are printed, not asserted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createStore, type Account, type Store } from '../../lib/sync-store';
import { addAccountWithPassword } from '../../lib/sync-store/credentials';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { reconcileAccount, reconcileSchedules, watcherStatus, type WatchSettings } from '../../lib/account-sync';
import { watchStatusQuery, watchWorkflowId } from '../../contracts/watch';
import { startDovecot, type DovecotServer, type DovecotUser } from '../../scripts/stack/dovecot';
import { startHostileImap } from '../support/hostile-imap';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  imapSession,
  quietTemporalLogs,
  recordSyncHistory,
  startSyncTestWorker,
  testMessage,
  waitFor,
  type TestDatabase,
} from './sync-fixtures';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const keyEntry = generateKeyEntry('k1');
const suffix = randomBytes(4).toString('hex');
const queueWide = `sync-watch-${suffix}`;
const queueNarrow = `sync-watch-1-${suffix}`;
const WATCHED: DovecotUser = { user: 'watched@example.test', password: 'watched-secret' };
const NARROW: DovecotUser = { user: 'narrow@example.test', password: 'narrow-secret' };
const GONE: DovecotUser = { user: 'gone@example.test', password: 'gone-secret' };
const queueFewSlots = `sync-watch-slots-${suffix}`;
const queuePolled = `sync-watch-polled-${suffix}`;
const POLLED: DovecotUser = { user: 'polled@example.test', password: 'polled-secret' };
/** More watched accounts than the third worker has activity slots for its syncs. */
const CROWD: DovecotUser[] = [1, 2, 3].map((i) => ({ user: `crowd${i}@example.test`, password: `crowd-secret-${i}` }));
/** Every user of the test's Dovecot, at its start and at its restart alike (a restart without one refuses its logins). */
const DOVECOT_USERS = [WATCHED, NARROW, GONE, POLLED, ...CROWD];
const MONTH = 30 * 24 * 3600;

/** A TCP proxy in front of Dovecot that counts the connections open at once. */
async function countingProxy(
  target: () => number,
): Promise<{ port: number; max(): number; opened(): number; reset(): void; close(): void }> {
  let open = 0;
  let max = 0;
  let opened = 0;
  const server: Server = createServer((client) => {
    open++;
    opened++;
    max = Math.max(max, open);
    let counted = true;
    const done = () => {
      if (counted) open--;
      counted = false;
    };
    const upstream = createConnection({ host: '127.0.0.1', port: target() });
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => {
        done();
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    max: () => max,
    opened: () => opened,
    reset: () => {
      max = open;
    },
    close: () => server.close(),
  };
}

describe('IMAP IDLE watcher', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let store: Store;
  let dovecot: DovecotServer;
  let dovecotDir: string;
  let wide: Awaited<ReturnType<typeof countingProxy>>;
  let narrow: Awaited<ReturnType<typeof countingProxy>>;
  let workers: { stop(): Promise<void> }[] = [];
  let owner: string;
  let watched: Account;
  const watch: WatchSettings = {
    enabled: true,
    options: { maxIdleSeconds: 120, reconnectInitialSeconds: 0.5, reconnectMaxSeconds: 2 },
  };

  const rowCount = async (accountId: string, messageId?: string) =>
    Number(
      (
        await db.pool.query(
          `SELECT count(*) AS n FROM messages WHERE account_id = $1 ${messageId ? 'AND message_id = $2' : ''}`,
          messageId ? [accountId, messageId] : [accountId],
        )
      ).rows[0].n,
    );
  const syncRuns = async (accountId: string) =>
    (await db.pool.query('SELECT status FROM sync_runs WHERE account_id = $1 ORDER BY id', [accountId])).rows.map((r) =>
      String(r.status),
    );
  /** How many folders each sync run of the account after the first `skip` covered. */
  const foldersOfRunsAfter = async (accountId: string, skip: number) =>
    (
      await db.pool.query('SELECT folders FROM sync_runs WHERE account_id = $1 ORDER BY id OFFSET $2', [
        accountId,
        skip,
      ])
    ).rows.map((r) => Number(r.folders));
  const watcherState = async (account: Account) => (await store.getWatcher(account.userId, account.id))?.state;
  /** Activities the account's watcher has scheduled so far (every run of it). */
  const watchActivities = async (account: Account) => {
    let n = 0;
    const history = await env.client.workflow.getHandle(watchWorkflowId(account.id)).fetchHistory();
    for (const e of history.events ?? []) if (e.activityTaskScheduledEventAttributes) n++;
    return n;
  };
  const append = async (user: DovecotUser, n: number, first: number, folder = 'INBOX') => {
    const imap = await imapSession(dovecot, user.user, user.password);
    const ids: string[] = [];
    try {
      for (let i = first; i < first + n; i++) {
        const m = testMessage(folder, i);
        await imap.append(folder, m.raw);
        ids.push(m.messageId);
      }
    } finally {
      await imap.logout();
    }
    return ids;
  };
  /** No sync running and the watcher IDLE: the account is quiet. */
  const settled = (account: Account) =>
    waitFor(
      `account ${account.id} settled`,
      async () => !(await syncRuns(account.id)).includes('running') && (await watcherState(account)) === 'idle',
      90_000,
      200,
    ).catch(async (err: Error) => {
      // Say what it was waiting on: the sync runs and the watcher's own account of itself.
      const watcher = await store.getWatcher(account.userId, account.id);
      throw new Error(
        `${err.message}; sync runs ${JSON.stringify(await syncRuns(account.id))}, watcher ${JSON.stringify(watcher)}`,
      );
    });

  /** An account of `user` on the test Dovecot (no proxy), synced monthly by its Schedule. */
  const addDovecotAccount = (user: DovecotUser) =>
    addAccountWithPassword(
      store,
      parseKeyring(keyEntry),
      owner,
      {
        imapHost: '127.0.0.1',
        imapPort: dovecot.imapPort,
        imapTls: false,
        imapUser: user.user,
        syncIntervalSeconds: MONTH,
      },
      user.password,
    );
  /**
   * A message appended to a watched folder other than INBOX is in PostgreSQL within `withinMs`,
   * brought by syncs of that folder alone.
   */
  const arrivesBySyncOfItsFolder = async (account: Account, user: DovecotUser, folder: string, withinMs: number) => {
    const runsBefore = (await syncRuns(account.id)).length;
    const t0 = Date.now();
    const [id] = await append(user, 1, 500, folder);
    await waitFor(
      `the ${folder} message in PostgreSQL`,
      async () => (await rowCount(account.id, id)) === 1,
      withinMs,
      100,
    );
    const ms = Date.now() - t0;
    await settled(account);
    const runs = await foldersOfRunsAfter(account.id, runsBefore);
    assert.ok(
      runs.length >= 1 && runs.every((n) => n === 1),
      `syncs of the changed folder alone: ${JSON.stringify(runs)}`,
    );
    return { id, ms };
  };

  before(async () => {
    quietTemporalLogs();
    dovecotDir = mkdtempSync(join(tmpdir(), 'mailroom-watch-'));
    [env, db, dovecot] = await Promise.all([
      startTestTemporal(),
      createTestDatabase(),
      startDovecot({ directory: dovecotDir, users: DOVECOT_USERS }),
    ]);
    store = createStore(db.pool);
    wide = await countingProxy(() => dovecot.imapPort);
    narrow = await countingProxy(() => dovecot.imapPort);
    workers = await Promise.all([
      // Dovecot's restart below takes a few seconds on a busy machine: the watch waits it out itself.
      startSyncTestWorker(env, {
        db,
        keyEntry,
        taskQueue: queueWide,
        // An hour: a watched folder's change that arrives within seconds was pushed (NOTIFY).
        config: { watchCoalesceMs: 300, watchReconnectWithinSeconds: 60, watchFolderPollSeconds: 3600 },
      }),
      startSyncTestWorker(env, {
        db,
        keyEntry,
        taskQueue: queueNarrow,
        config: { watchCoalesceMs: 300, connectionsPerAccount: 1 },
      }),
      startSyncTestWorker(env, {
        db,
        keyEntry,
        taskQueue: queueFewSlots,
        config: { watchCoalesceMs: 300, maxConcurrentActivities: 2 },
      }),
      // NOTIFY off: the watched folders are polled (what a server without NOTIFY gets).
      startSyncTestWorker(env, {
        db,
        keyEntry,
        taskQueue: queuePolled,
        config: { watchCoalesceMs: 300, watchNotify: false, watchFolderPollSeconds: 1 },
      }),
    ]);
    owner = (await store.ensureUser('owner@example.com')).id;
    watched = await addAccountWithPassword(
      store,
      parseKeyring(keyEntry),
      owner,
      {
        imapHost: '127.0.0.1',
        imapPort: wide.port,
        imapTls: false,
        imapUser: WATCHED.user,
        syncIntervalSeconds: MONTH,
      },
      WATCHED.password,
    );
  });

  after(async () => {
    for (const w of workers) await w.stop();
    await env?.teardown();
    wide?.close();
    narrow?.close();
    await dovecot?.stop();
    if (dovecotDir) rmSync(dovecotDir, { recursive: true, force: true });
    await db?.drop();
  });

  it('starts with the Schedule, syncs what is there, then brings new mail to PostgreSQL without a Schedule run', async () => {
    await append(WATCHED, 3, 1);
    // A second folder, empty: a sync of every folder records 2, the watcher's INBOX sync 1.
    const box = await imapSession(dovecot, WATCHED.user, WATCHED.password);
    try {
      await box.mailboxCreate('Archive');
    } finally {
      await box.logout();
    }
    const summary = await reconcileSchedules({ client: env.client, store, taskQueue: queueWide, watch });
    assert.deepEqual(summary.watchersStarted, [watchWorkflowId(watched.id)]);
    const again = await reconcileSchedules({ client: env.client, store, taskQueue: queueWide, watch });
    assert.deepEqual(again.watchersStarted, [], 'a second reconcile starts no second watcher');
    // The first watch finds PostgreSQL behind the server and asks for the first sync.
    await waitFor('first sync', async () => (await rowCount(watched.id)) === 3, 90_000, 200);
    await settled(watched);
    const first = await db.pool.query('SELECT folders FROM sync_runs WHERE account_id = $1 ORDER BY id LIMIT 1', [
      watched.id,
    ]);
    assert.equal(first.rows[0].folders, 2, "the watcher's first look asks for every folder");
    const before = (await syncRuns(watched.id)).length;
    const watchesBefore = await watchActivities(watched);
    const connectionsBefore = wide.opened();

    const t0 = Date.now();
    const [id] = await append(WATCHED, 1, 100);
    await waitFor('the new message in PostgreSQL', async () => (await rowCount(watched.id, id)) === 1, 90_000, 50);
    console.log(`# APPEND -> row in PostgreSQL: ${Date.now() - t0} ms (watcher, sync request, INBOX sync)`);
    // The watcher's syncs run under the account's fixed id; after a change, INBOX alone.
    await settled(watched);
    const last = await db.pool.query(
      'SELECT workflow_id, workflow_run_id, folders FROM sync_runs WHERE account_id = $1 ORDER BY id DESC LIMIT 1',
      [watched.id],
    );
    assert.equal(last.rows[0].workflow_id, `sync-account-${watched.id}`);
    assert.equal(last.rows[0].folders, 1, 'a change in INBOX syncs INBOX only');
    await recordSyncHistory(env.client, last.rows[0].workflow_id, last.rows[0].workflow_run_id, 'watcher-inbox');
    const schedule = await env.client.schedule.getHandle(`sync-account-${watched.id}`).describe();
    assert.ok(
      schedule.info.nextActionTimes.every((t) => t.getTime() > Date.now() + 24 * 3600_000),
      'no scheduled run due',
    );
    assert.ok((await syncRuns(watched.id)).length > before);

    // The change was handled on the watch's own connection: no new watch (login), no requestSync activity.
    assert.equal(await watchActivities(watched), watchesBefore, 'a change costs no new watch activity');
    // One login for the whole sync: fetchNewMessages took over prepareFolders' connection.
    assert.equal(wide.opened() - connectionsBefore, 1, 'IMAP connections opened for one new message');
    assert.ok((await store.getWatcher(watched.userId, watched.id))?.lastEventAt, 'the change is recorded');
    const status = await env.client.workflow.getHandle(watchWorkflowId(watched.id)).query(watchStatusQuery);
    assert.ok(status.syncsRequested >= 1, JSON.stringify(status));
    const { typedSearchAttributes } = await env.client.workflow.getHandle(watchWorkflowId(watched.id)).describe();
    assert.equal(typedSearchAttributes.get({ name: 'AccountId', type: 'KEYWORD' }), watched.id);

    await settled(watched);
    const listed = await run('node', ['--import', 'tsx', 'starters/list-accounts.ts'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.url },
    });
    assert.match(listed.stdout, /IDLE watcher \(INBOX\): idle since \d+s ago, last change \d+s ago/);
  });

  it('a burst of 20 appends: all 20 rows, from at most 3 syncs', async () => {
    await settled(watched);
    const before = (await syncRuns(watched.id)).length;
    const t0 = Date.now();
    const ids = await append(WATCHED, 20, 200);
    await waitFor(
      'all 20 rows',
      async () => (await Promise.all(ids.map((id) => rowCount(watched.id, id)))).every((n) => n === 1),
      120_000,
      100,
    );
    console.log(`# burst of 20 APPENDs -> last row in PostgreSQL: ${Date.now() - t0} ms`);
    await settled(watched);
    const syncs = (await syncRuns(watched.id)).length - before;
    console.log(`# burst of 20 APPENDs: ${syncs} sync(s)`);
    assert.ok(syncs >= 1 && syncs <= 3, `${syncs} syncs for one burst`);
    assert.ok(wide.max() <= 2, `connection budget 2 exceeded: ${wide.max()} connections at once`);
  });

  it('Dovecot restarted mid-IDLE: the watch reconnects by itself, mail delivered meanwhile arrives once', async () => {
    await settled(watched);
    const activitiesBefore = await watchActivities(watched);
    const runsBefore = (await syncRuns(watched.id)).length;
    const ports = { imapPort: dovecot.imapPort, lmtpPort: dovecot.lmtpPort };
    await dovecot.stop();
    await waitFor('watcher reconnecting', async () => (await watcherState(watched)) === 'reconnecting', 60_000, 100);
    // Delivered while the server is down: straight into the Maildir, as a local delivery agent would.
    const m = testMessage('INBOX', 999);
    const maildir = dovecot.mailboxPath(WATCHED.user);
    const name = `${Date.now()}.watch${randomBytes(4).toString('hex')}.test`;
    writeFileSync(join(maildir, 'tmp', name), m.raw);
    const { uid, gid } = statSync(join(maildir, 'new'));
    chownSync(join(maildir, 'tmp', name), uid, gid);
    renameSync(join(maildir, 'tmp', name), join(maildir, 'new', name));
    dovecot = await startDovecot({ directory: dovecotDir, users: DOVECOT_USERS, ...ports });
    await waitFor(
      'the outage message in PostgreSQL',
      async () => (await rowCount(watched.id, m.messageId)) === 1,
      120_000,
      100,
    );
    await settled(watched);
    // The same watch activity logged in again and asked for the sync (WATCH_RECONNECT_PATCH):
    // no workflow round, and one sync of INBOX, not of every folder.
    assert.equal(await watchActivities(watched), activitiesBefore, 'the watch activity reconnected itself');
    const runs = await foldersOfRunsAfter(watched.id, runsBefore);
    assert.ok(runs.length >= 1, 'a sync after the reconnect');
    assert.deepEqual(
      runs,
      runs.map(() => 1),
      'after the reconnect, syncs of INBOX alone',
    );
    const imap = await imapSession(dovecot, WATCHED.user, WATCHED.password);
    const box = await imap.mailboxOpen('INBOX', { readOnly: true });
    await imap.logout();
    assert.equal(await rowCount(watched.id), box.exists, 'every server message stored once');
    const dupes = await db.pool.query(
      'SELECT message_id FROM messages WHERE account_id = $1 GROUP BY message_id HAVING count(*) > 1',
      [watched.id],
    );
    assert.equal(dupes.rowCount, 0);
  });

  it('a folder watched besides INBOX (account:set --watch-folders): new mail there, pushed by NOTIFY, arrives without a Schedule run', async () => {
    await settled(watched);
    const set = await run(
      'node',
      [
        '--import',
        'tsx',
        'starters/account-settings.ts',
        '--user',
        'owner@example.com',
        '--account',
        watched.id,
        '--watch-folders',
        'Archive, NoSuchFolder',
      ],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: db.url, MAILROOM_SECRET_KEYS: keyEntry } },
    );
    assert.match(set.stdout, /watches INBOX and "Archive", "NoSuchFolder"/);
    // The running watch notices at its next heartbeat (15 s) and the next one takes the folders;
    // a folder the server lacks is named, and does not stop the watch.
    await waitFor(
      'the watcher names the missing folder',
      async () => /NoSuchFolder/.test((await store.getWatcher(watched.userId, watched.id))?.detail ?? ''),
      60_000,
      200,
    );
    await settled(watched);
    // The poll is an hour on this worker: only the server's push (NOTIFY, which Dovecot offers) is this quick.
    const { id: archived, ms } = await arrivesBySyncOfItsFolder(watched, WATCHED, 'Archive', 20_000);
    console.log(`# APPEND to a watched folder -> row in PostgreSQL: ${ms} ms (pushed by NOTIFY)`);
    const folder = await db.pool.query('SELECT folder FROM messages WHERE account_id = $1 AND message_id = $2', [
      watched.id,
      archived,
    ]);
    assert.equal(folder.rows[0].folder, 'Archive');
    const listed = await run('node', ['--import', 'tsx', 'starters/list-accounts.ts'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.url },
    });
    assert.match(listed.stdout, /IDLE watcher \(INBOX, Archive, NoSuchFolder\): idle since .*NoSuchFolder/);

    // Back to INBOX alone for the tests below.
    await store.setWatchedFolders(watched.userId, watched.id, []);
    await waitFor(
      'the watcher back to INBOX alone',
      async () => !(await store.getWatcher(watched.userId, watched.id))?.detail,
      60_000,
      200,
    );
  });

  it('without NOTIFY (SYNC_WATCH_NOTIFY=false) a watched folder is polled with STATUS on the IDLE connection', async () => {
    const setup = await imapSession(dovecot, POLLED.user, POLLED.password);
    try {
      await setup.mailboxCreate('Lists');
      await setup.append('INBOX', testMessage('INBOX', 1).raw);
    } finally {
      await setup.logout();
    }
    const polled = await addDovecotAccount(POLLED);
    await store.setWatchedFolders(owner, polled.id, ['Lists']);
    await reconcileAccount(env.client, store, (await store.getAccount(owner, polled.id))!, queuePolled, watch);
    await waitFor('first sync', async () => (await rowCount(polled.id)) === 1, 90_000, 200);
    await settled(polled);
    await arrivesBySyncOfItsFolder(polled, POLLED, 'Lists', 30_000);
    await store.updateAccountSettings(owner, polled.id, { enabled: false });
    await reconcileAccount(env.client, store, (await store.getAccount(owner, polled.id))!, queuePolled, watch);
  });

  it('budget of one connection: the watcher lets the sync have it, and watches again afterwards', async () => {
    const account = await addAccountWithPassword(
      store,
      parseKeyring(keyEntry),
      owner,
      {
        imapHost: '127.0.0.1',
        imapPort: narrow.port,
        imapTls: false,
        imapUser: NARROW.user,
        syncIntervalSeconds: MONTH,
      },
      NARROW.password,
    );
    const outcome = await reconcileAccount(env.client, store, account, queueNarrow, watch);
    assert.equal(outcome.watcher, 'started');
    await settled(account);
    const ids = await append(NARROW, 30, 1);
    await waitFor(
      'all 30 rows',
      async () => (await Promise.all(ids.map((id) => rowCount(account.id, id)))).every((n) => n === 1),
      120_000,
      100,
    );
    await settled(account);
    assert.equal(narrow.max(), 1, `${narrow.max()} connections at once with a budget of 1`);
    const status = await env.client.workflow.getHandle(watchWorkflowId(account.id)).query(watchStatusQuery);
    assert.ok(status.releases >= 1, `the watcher gave its connection to the sync: ${JSON.stringify(status)}`);
    const states = await db.pool.query('SELECT release_requested_at FROM account_watchers WHERE account_id = $1', [
      account.id,
    ]);
    assert.equal(states.rows[0].release_requested_at, null);
  });

  it('a server without IDLE: the watcher records unsupported and ends; the reconciler leaves it be', async () => {
    const hostile = await startHostileImap({ folders: { INBOX: [{ behaviour: 'ok' }] } });
    try {
      const account = await addAccountWithPassword(
        store,
        parseKeyring(keyEntry),
        owner,
        {
          imapHost: hostile.host,
          imapPort: hostile.port,
          imapTls: false,
          imapUser: hostile.user,
          syncIntervalSeconds: MONTH,
        },
        hostile.password,
      );
      assert.equal((await reconcileAccount(env.client, store, account, queueWide, watch)).watcher, 'started');
      const handle = env.client.workflow.getHandle(watchWorkflowId(account.id));
      const result = await handle.result();
      assert.equal(result.state, 'unsupported');
      assert.match(result.reason, /does not offer IDLE/);
      const watcher = await store.getWatcher(owner, account.id);
      assert.equal(watcher?.state, 'unsupported');
      assert.equal(
        (await reconcileAccount(env.client, store, account, queueWide, watch)).watcher,
        'unsupported',
        'not restarted on every reconcile',
      );
      const listed = await run('node', ['--import', 'tsx', 'starters/list-accounts.ts'], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: db.url },
      });
      assert.match(
        listed.stdout,
        /IDLE watcher \(INBOX\): unsupported since \d+s ago, no change seen yet: IMAP server .* does not offer IDLE/,
      );
      await store.removeAccount(owner, account.id);
    } finally {
      await hostile.stop();
    }
  });

  it('disabling the account stops its watcher; removing an account stops its watcher too', async () => {
    await store.updateAccountSettings(owner, watched.id, { enabled: false });
    const disabled = (await store.getAccount(owner, watched.id)) as Account;
    assert.equal((await reconcileAccount(env.client, store, disabled, queueWide, watch)).watcher, 'stopped');
    const handle = env.client.workflow.getHandle(watchWorkflowId(watched.id));
    await waitFor('watcher cancelled', async () => (await handle.describe()).status.name === 'CANCELLED', 60_000);
    await waitFor('stopped recorded', async () => (await watcherState(watched)) === 'stopped', 30_000);
    // RECORD_HISTORIES=1: the watcher's whole life (first look, changes, the restart, cancelled).
    await recordSyncHistory(env.client, watchWorkflowId(watched.id), undefined, 'watcher-stopped');
    const schedule = await env.client.schedule.getHandle(`sync-account-${watched.id}`).describe();
    assert.equal(schedule.state.paused, true, 'the Schedule is paused, not gone');

    // Enabled again while the cancelled watcher still closes its connection (up to its next
    // heartbeat): the reconcile replaces it, so the account is not left without a watcher.
    await store.updateAccountSettings(owner, watched.id, { enabled: true });
    assert.equal((await reconcileAccount(env.client, store, watched, queueWide, watch)).watcher, 'started');
    await waitFor('watching again', async () => (await watcherState(watched)) === 'idle', 60_000);
    const firstRun = (await handle.describe()).runId;
    await store.updateAccountSettings(owner, watched.id, { enabled: false });
    assert.equal((await reconcileAccount(env.client, store, disabled, queueWide, watch)).watcher, 'stopped');
    assert.equal(await watcherStatus(env.client, watched.id), 'stopping');
    await store.updateAccountSettings(owner, watched.id, { enabled: true });
    assert.equal((await reconcileAccount(env.client, store, watched, queueWide, watch)).watcher, 'started');
    const replaced = await handle.describe();
    assert.notEqual(replaced.runId, firstRun, 'a new watcher, not the stopping one');
    assert.equal(replaced.status.name, 'RUNNING');
    await waitFor('the new watcher idle', async () => (await watcherState(watched)) === 'idle', 60_000);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await watcherStatus(env.client, watched.id), 'running');
    assert.equal(await watcherState(watched), 'idle', 'the replaced watcher recorded nothing after the new one');
    await store.updateAccountSettings(owner, watched.id, { enabled: false });
    await reconcileAccount(env.client, store, disabled, queueWide, watch);

    const gone = await addDovecotAccount(GONE);
    await reconcileAccount(env.client, store, gone, queueWide, watch);
    await settled(gone);
    await waitFor('watcher listed', async () => {
      for await (const w of env.client.workflow.list({ query: `WorkflowId = '${watchWorkflowId(gone.id)}'` }))
        if (w.status.name === 'RUNNING') return true;
      return false;
    });
    assert.ok(await store.removeAccount(owner, gone.id));
    const summary = await reconcileSchedules({ client: env.client, store, taskQueue: queueWide, watch });
    assert.ok(summary.watchersStopped?.includes(watchWorkflowId(gone.id)), JSON.stringify(summary));
    const goneHandle = env.client.workflow.getHandle(watchWorkflowId(gone.id));
    await waitFor(
      'removed account watcher ended',
      async () => (await goneHandle.describe()).status.name !== 'RUNNING',
      60_000,
    );
  });

  it('more watched accounts than the worker has activity slots: every account still gets its new mail', async () => {
    // Three idle watches and two sync slots: the watches run on their own queue, so they never
    // hold the slots the syncs need (on the sync queue, the syncs would never start).
    const crowd: Account[] = [];
    for (const user of CROWD) crowd.push(await addDovecotAccount(user));
    for (const account of crowd) await reconcileAccount(env.client, store, account, queueFewSlots, watch);
    for (const account of crowd) await settled(account);
    const ids = await Promise.all(CROWD.map((user, i) => append(user, 1, 300 + i)));
    await waitFor(
      "each account's new message in PostgreSQL",
      async () => (await Promise.all(crowd.map((a, i) => rowCount(a.id, ids[i][0])))).every((n) => n === 1),
      120_000,
      100,
    );
    for (const account of crowd) assert.equal(await watcherState(account), 'idle');
  });
});
