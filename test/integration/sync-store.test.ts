// The account-sync repository and migrations against the real PostgreSQL. Above all: one
// user can never read or change another user's accounts, messages or sync records, through
// any repository function (the test fails if a function is added without a check here).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStore, type NewMessage, type Store } from '../../lib/sync-store';
import {
  addAccountWithOAuth2,
  addAccountWithPassword,
  accountSecretContext,
  oauth2SecretContext,
  setAccountRefreshToken,
} from '../../lib/sync-store/credentials';
import { decryptSecret, encryptSecret, generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { createPool, dropDatabase, ensureDatabase, withDatabase } from '../../lib/storage/db';
import { migrate, readMigrations } from '../../lib/storage/migrate';
import { ADMIN_DATABASE_URL, createTestDatabase, type TestDatabase } from './sync-fixtures';

const keyring = parseKeyring(generateKeyEntry('k1'));

function message(uid: number): NewMessage {
  return {
    uid,
    messageId: `<m${uid}@test>`,
    from: 'a@example.org',
    to: ['b@example.org'],
    subject: `s${uid}`,
    sentAt: new Date(),
    internalDate: new Date(),
    flags: [],
    modseq: '1',
    size: 10,
    raw: Buffer.from(`raw ${uid}`),
    rawRef: `imap://x/INBOX;UIDVALIDITY=1/;UID=${uid}`,
  };
}

describe('account-sync store', () => {
  let db: TestDatabase;
  let store: Store;

  before(async () => {
    db = await createTestDatabase();
    store = createStore(db.pool);
  });
  /** A user and a password account of theirs, for tests whose account settings do not matter. */
  async function userWithAccount(email: string, imapUser: string) {
    const u = (await store.ensureUser(email)).id;
    const acc = await addAccountWithPassword(
      store,
      keyring,
      u,
      { imapHost: 'imap.example.com', imapPort: 993, imapTls: true, imapUser, syncIntervalSeconds: 300 },
      'pw',
    );
    return { u, acc };
  }
  after(async () => {
    await db?.drop();
  });

  it('stores the password encrypted, bound to its account', async () => {
    const user = await store.ensureUser('Crypto@Example.com');
    assert.equal((await store.ensureUser('crypto@example.com')).id, user.id, 'emails are case-insensitive');
    const account = await addAccountWithPassword(
      store,
      keyring,
      user.id,
      { imapHost: 'imap.example.com', imapPort: 993, imapTls: true, imapUser: 'u', syncIntervalSeconds: 60 },
      'hunter2-very-secret',
    );
    const { rows } = await db.pool.query('SELECT password_encrypted FROM mail_accounts WHERE id = $1', [account.id]);
    assert.ok(!rows[0].password_encrypted.includes('hunter2'));
    assert.match(rows[0].password_encrypted, /^v1:k1:/);
    const secret = await store.getAccountSecret(user.id, account.id);
    assert.equal(
      decryptSecret(keyring, secret!.passwordEncrypted!, accountSecretContext(account.id)),
      'hunter2-very-secret',
    );
    assert.throws(
      () => decryptSecret(keyring, secret!.passwordEncrypted!, accountSecretContext(randomUUID())),
      /does not decrypt/,
    );
  });

  it('one sync of an account at a time: a claim names the running one; idempotent per run; a stale one superseded', async () => {
    const { u, acc } = await userWithAccount('claims@example.com', 'c');
    // Two syncs starting together (the watcher's and the Schedule's): exactly one goes ahead.
    const [a, b] = await Promise.all([
      store.claimSyncRun(u, acc.id, 'sync-account-x', 'run-a'),
      store.claimSyncRun(u, acc.id, 'sync-account-x-2026', 'run-b'),
    ]);
    const won = [a, b].filter((c) => c && 'id' in c) as { id: number }[];
    const lost = [a, b].filter((c) => c && 'running' in c) as { running: { workflowId: string; syncRunId: number } }[];
    assert.equal(won.length, 1, `one claim wins: ${JSON.stringify([a, b])}`);
    assert.equal(lost.length, 1);
    assert.equal(lost[0].running.syncRunId, won[0].id);
    const winnerRun = a && 'id' in a ? 'run-a' : 'run-b';
    // An activity retry of the winner gets its own record back, not "busy".
    assert.deepEqual(await store.claimSyncRun(u, acc.id, 'ignored', winnerRun), { id: won[0].id });
    // Superseding: the holder's workflow is gone; its record is closed as failed, the claim wins.
    const taken = await store.claimSyncRun(u, acc.id, 'sync-account-x', 'run-c', won[0].id);
    assert.ok(taken && 'id' in taken, JSON.stringify(taken));
    const runs = await store.listSyncRuns(u, acc.id);
    const stale = runs.find((r) => r.id === won[0].id)!;
    assert.equal(stale.status, 'failed');
    assert.match(stale.error ?? '', /abandoned/);
    // Finished runs do not hold the account.
    await store.finishSyncRun(u, taken.id, { status: 'succeeded' });
    const next = await store.claimSyncRun(u, acc.id, 'sync-account-x', 'run-d');
    assert.ok(next && 'id' in next);
    await store.finishSyncRun(u, next.id, { status: 'succeeded' });
  });

  it("prunes an account's finished runs past the retention window, keeping its newest and the running one", async () => {
    const { u, acc } = await userWithAccount('retention@example.com', 'r');
    const other = await addAccountWithPassword(
      store,
      keyring,
      u,
      { imapHost: 'imap.example.com', imapPort: 993, imapTls: true, imapUser: 'r2', syncIntervalSeconds: 300 },
      'pw',
    );
    /** A run of `account` started `daysAgo` days ago, finished unless `running`. */
    const run = async (account: string, daysAgo: number, running = false) => {
      const id = await store.beginSyncRun(u, account, 'sync-account-r', `run-${randomUUID()}`);
      await db.pool.query(`UPDATE sync_runs SET started_at = now() - make_interval(days => $2) WHERE id = $1`, [
        id,
        daysAgo,
      ]);
      if (!running) await store.finishSyncRun(u, id!, { status: 'succeeded', folders: 1 });
      return id!;
    };
    const old: number[] = [];
    for (let i = 0; i < 25; i++) old.push(await run(acc.id, 40 + i));
    for (let i = 0; i < 3; i++) await run(acc.id, 1);
    const stuck = await run(acc.id, 60, true);
    const otherOld = await run(other.id, 90);
    // A folder error of a run that goes: the error stays, without its run.
    const pruned = old[old.length - 1];
    assert.ok(await store.recordFolderError(u, acc.id, pruned, 'Lists', 'NO [SERVERBUG] test'));

    // 28 finished: the 20 newest stay (3 recent, 17 of the old ones), 8 old ones go.
    assert.equal(await store.pruneSyncRuns(u, acc.id, { keepDays: 30, keepLast: 20 }), 8);
    const left = (await db.pool.query('SELECT id, status FROM sync_runs WHERE account_id = $1', [acc.id])).rows;
    assert.equal(left.length, 21);
    assert.ok(
      left.some((r) => Number(r.id) === stuck && r.status === 'running'),
      'a running record is never pruned',
    );
    assert.ok(!left.some((r) => Number(r.id) === pruned), 'the oldest finished run is gone');
    const errors = await db.pool.query('SELECT sync_run_id FROM sync_errors WHERE account_id = $1', [acc.id]);
    assert.deepEqual(
      errors.rows.map((r) => r.sync_run_id),
      [null],
      'its folder error is kept',
    );
    assert.equal(
      (await db.pool.query('SELECT count(*) AS n FROM sync_runs WHERE id = $1', [otherOld])).rows[0].n,
      '1',
      "another account's runs are not touched",
    );
    // Again: nothing more to do.
    assert.equal(await store.pruneSyncRuns(u, acc.id, { keepDays: 30, keepLast: 20 }), 0);
  });

  it('keeps users apart in every repository function', async () => {
    const alice = (await store.ensureUser('alice@example.com')).id;
    const eve = (await store.ensureUser('eve@example.com')).id;
    const acc = await addAccountWithPassword(
      store,
      keyring,
      alice,
      { imapHost: 'imap.example.com', imapPort: 993, imapTls: true, imapUser: 'alice', syncIntervalSeconds: 300 },
      'pw',
    );
    const run = (await store.beginSyncRun(alice, acc.id, 'wf', `run-${randomUUID()}`))!;
    await store.beginFolder(alice, acc.id, 'INBOX', 7, run);
    await store.storeMessages(
      alice,
      acc.id,
      'INBOX',
      7,
      [message(1), message(2)],
      3,
      run,
      [{ uid: 3, kind: 'data', size: 5, reason: 'x' }],
      { eventsByDefault: true },
    );
    await store.recordFolderError(alice, acc.id, run, 'Spam', 'stalled');
    const oauth = await addAccountWithOAuth2(
      store,
      keyring,
      alice,
      { imapHost: 'imap.example.com', imapPort: 993, imapTls: true, imapUser: 'alice-oauth', syncIntervalSeconds: 300 },
      { provider: 'custom', tokenUrl: 'https://auth.example.com/token', clientId: 'c', scopes: 'imap' },
      { refreshToken: 'alice-refresh-token', clientSecret: 'alice-client-secret' },
    );
    const [m1] = await store.listMessages(alice, acc.id);
    await store.setWatcherState(alice, acc.id, { workflowId: 'watch-a', state: 'idle', connected: true });
    await store.claimWatcherConnection(alice, acc.id, 'watch-a', 'alice-claim');
    const snapshot = async () => ({
      // The whole row: heartbeat and release request included.
      watcher: (await db.pool.query('SELECT * FROM account_watchers WHERE account_id = $1', [acc.id])).rows,
      account: await store.getAccountSecret(alice, acc.id),
      folders: await store.getFolderStates(alice, acc.id),
      messages: await store.listMessages(alice, acc.id),
      raw: await store.getMessageRaw(alice, m1.id),
      runs: await store.listSyncRuns(alice, acc.id),
      errors: await store.listSyncErrors(alice, acc.id),
      oauth: await store.getAccountSecret(alice, oauth.id),
      events: await store.listMessageEvents(alice, acc.id),
      eventSettings: await store.getEventSettings(alice, acc.id),
    });
    const [e1] = await store.listMessageEvents(alice, acc.id);
    assert.ok(e1, 'an event was recorded for alice');
    const before = await snapshot();

    // Eve uses Alice's ids in every call; each must see nothing and change nothing.
    const checks: Record<string, () => Promise<void>> = {
      addAccount: async () => {
        // Eve cannot attach an account to Alice by reusing Alice's account id.
        await assert.rejects(
          store.addAccount(eve, { ...acc, oauth2: undefined, id: acc.id, passwordEncrypted: 'x' }),
          /duplicate key|violates/,
        );
      },
      getAccount: async () => assert.equal(await store.getAccount(eve, acc.id), null),
      getAccountSecret: async () => assert.equal(await store.getAccountSecret(eve, acc.id), null),
      listAccounts: async () => assert.deepEqual(await store.listAccounts(eve), []),
      updateAccountPassword: async () =>
        assert.equal(await store.updateAccountPassword(eve, acc.id, 'v1:k1:evil'), false),
      updateAccountSettings: async () =>
        assert.equal(await store.updateAccountSettings(eve, acc.id, { enabled: false }), null),
      removeAccount: async () => assert.equal(await store.removeAccount(eve, acc.id), false),
      markNeedsAttention: async () => assert.equal(await store.markNeedsAttention(eve, acc.id, 'x'), false),
      getFolderStates: async () => assert.deepEqual(await store.getFolderStates(eve, acc.id), []),
      getFolderState: async () => assert.equal(await store.getFolderState(eve, acc.id, 'INBOX'), null),
      beginFolder: async () => {
        await assert.rejects(store.beginFolder(eve, acc.id, 'INBOX', 8), /not found/);
      },
      storeMessages: async () => {
        await assert.rejects(store.storeMessages(eve, acc.id, 'INBOX', 7, [message(3)], 3), /no sync state/);
      },
      applyFlagChanges: async () => {
        await assert.rejects(
          store.applyFlagChanges(eve, acc.id, 'INBOX', 7, [{ uid: 1, flags: ['\\Deleted'], modseq: null }], '99'),
          /no sync state/,
        );
      },
      deleteMissingMessages: async () =>
        assert.equal(await store.deleteMissingMessages(eve, acc.id, 'INBOX', 7, [], 100), 0),
      removeFoldersExcept: async () =>
        assert.deepEqual(await store.removeFoldersExcept(eve, acc.id, []), { folders: [], messages: 0 }),
      listMessages: async () => assert.deepEqual(await store.listMessages(eve, acc.id), []),
      getMessageRaw: async () => assert.equal(await store.getMessageRaw(eve, m1.id), null),
      deleteMessage: async () => assert.equal(await store.deleteMessage(eve, m1.id), false),
      beginSyncRun: async () => assert.equal(await store.beginSyncRun(eve, acc.id, 'wf', `run-${randomUUID()}`), null),
      claimSyncRun: async () => {
        assert.equal(await store.claimSyncRun(eve, acc.id, 'wf', `run-${randomUUID()}`), null);
        assert.equal(await store.claimSyncRun(eve, acc.id, 'wf', `run-${randomUUID()}`, run), null);
      },
      finishSyncRun: async () =>
        assert.equal(await store.finishSyncRun(eve, run, { status: 'failed', error: 'x' }), null),
      listSyncRuns: async () => assert.deepEqual(await store.listSyncRuns(eve, acc.id), []),
      listSyncErrors: async () => assert.deepEqual(await store.listSyncErrors(eve, acc.id), []),
      recordFolderError: async () => assert.equal(await store.recordFolderError(eve, acc.id, run, 'INBOX', 'x'), false),
      withOAuth2Secrets: async () => {
        let called = false;
        assert.equal(
          await store.withOAuth2Secrets(eve, oauth.id, async () => {
            called = true;
            return { result: 1 };
          }),
          null,
        );
        assert.equal(called, false, "Eve's callback never sees Alice's secrets");
      },
      getEventSettings: async () => assert.equal(await store.getEventSettings(eve, acc.id), null),
      updateEventSettings: async () =>
        assert.equal(await store.updateEventSettings(eve, acc.id, { webhookUrl: 'https://evil.example/' }), null),
      listPendingEvents: async () => assert.deepEqual(await store.listPendingEvents(eve, acc.id, 10), []),
      markEventsDispatched: async () =>
        assert.equal(await store.markEventsDispatched(eve, [e1.id], { workflowStarted: true, webhook: true }), 0),
      recordWebhookAttempt: async () => assert.equal(await store.recordWebhookAttempt(eve, e1.id, 9, 'x'), false),
      finishWebhook: async () =>
        assert.equal(await store.finishWebhook(eve, e1.id, { status: 'failed', attempts: 9, error: 'x' }), false),
      listMessageEvents: async () => assert.deepEqual(await store.listMessageEvents(eve, acc.id), []),
      updateOAuth2Credentials: async () =>
        assert.equal(
          await store.updateOAuth2Credentials(eve, oauth.id, { refreshTokenEncrypted: 'v1:k1:evil' }),
          false,
        ),
      setWatcherState: async () =>
        assert.equal(
          await store.setWatcherState(eve, acc.id, { workflowId: 'evil', state: 'stopped', connected: false }),
          false,
        ),
      claimWatcherConnection: async () =>
        assert.equal(await store.claimWatcherConnection(eve, acc.id, 'evil', 'evil-token'), null),
      releaseWatcherConnection: async () => store.releaseWatcherConnection(eve, acc.id, 'alice-claim'),
      recordWatcherEvent: async () => store.recordWatcherEvent(eve, acc.id),
      watcherHeartbeat: async () =>
        assert.deepEqual(await store.watcherHeartbeat(eve, acc.id), { releaseRequested: false }),
      requestWatcherRelease: async () => assert.equal(await store.requestWatcherRelease(eve, acc.id), false),
      clearWatcherRelease: async () => store.clearWatcherRelease(eve, acc.id),
      getWatcher: async () => assert.equal(await store.getWatcher(eve, acc.id), null),
      countFolderMessages: async () => assert.equal(await store.countFolderMessages(eve, acc.id, 'INBOX', 7), 0),
      pruneSyncRuns: async () => {
        assert.equal(await store.pruneSyncRuns(eve, acc.id, { keepDays: 0, keepLast: 0 }), 0);
      },
      setWatchedFolders: async () => {
        assert.equal(await store.setWatchedFolders(eve, acc.id, ['Evil']), null);
        assert.deepEqual((await store.getAccount(acc.userId, acc.id))?.watchedFolders, []);
      },
    };
    // Functions about users themselves, or counts without any user's data, rather than a user's data.
    const userLevel = ['ensureUser', 'findUserByEmail', 'listUsers', 'countAccountsNeedingAttention'];
    assert.deepEqual(
      Object.keys(store)
        .filter((k) => !userLevel.includes(k))
        .sort(),
      Object.keys(checks).sort(),
      'every repository function has an isolation check',
    );
    for (const [name, check] of Object.entries(checks)) {
      await check().catch((err: Error) => {
        throw new Error(`${name}: ${err.message}`);
      });
    }
    assert.deepEqual(await snapshot(), before, "Alice's data is unchanged");

    // Malformed ids match nothing rather than erroring.
    assert.equal(await store.getAccount(eve, "' OR 1=1 --"), null);
    // And the schema refuses a row that pairs Eve with Alice's account.
    await assert.rejects(
      db.pool.query(
        `INSERT INTO messages (account_id, user_id, folder, uidvalidity, uid, raw) VALUES ($1, $2, 'INBOX', 7, 99, 'x')`,
        [acc.id, eve],
      ),
      /foreign key/,
    );
  });

  it('stores idempotently and moves the checkpoint with the batch', async () => {
    const { u, acc } = await userWithAccount('idem@example.com', 'idem');
    await store.beginFolder(u, acc.id, 'INBOX', 1);
    assert.deepEqual(await store.storeMessages(u, acc.id, 'INBOX', 1, [message(1), message(2)], 2), {
      inserted: 2,
      skipped: 0,
      lastUid: 2,
      events: 0,
    });
    // The same batch again (a retried activity whose first attempt committed): no duplicates.
    assert.deepEqual(await store.storeMessages(u, acc.id, 'INBOX', 1, [message(1), message(2)], 2), {
      inserted: 0,
      skipped: 0,
      lastUid: 2,
      events: 0,
    });
    // A stale batch never moves the checkpoint backwards.
    assert.deepEqual(await store.storeMessages(u, acc.id, 'INBOX', 1, [message(1)], 1), {
      inserted: 0,
      skipped: 0,
      lastUid: 2,
      events: 0,
    });
    // A batch for an old UIDVALIDITY is refused.
    await assert.rejects(store.storeMessages(u, acc.id, 'INBOX', 2, [message(3)], 3), /UIDVALIDITY/);
    // A new UIDVALIDITY drops the folder's messages and restarts the checkpoint.
    const reset = await store.beginFolder(u, acc.id, 'INBOX', 2);
    assert.deepEqual(
      { reset: reset.reset, dropped: reset.dropped, lastUid: reset.state.lastUid },
      { reset: true, dropped: 2, lastUid: 0 },
    );
    assert.deepEqual(await store.listMessages(u, acc.id), []);
  });

  it('records new-message events with their batch: by default or by account, once per message, gone with it', async () => {
    const u = (await store.ensureUser('events@example.com')).id;
    const add = (imapUser: string) =>
      addAccountWithPassword(
        store,
        keyring,
        u,
        { imapHost: 'h', imapPort: 143, imapTls: false, imapUser, syncIntervalSeconds: 60 },
        'pw',
      );
    const [byDefault, off, own] = [await add('ev-default'), await add('ev-off'), await add('ev-own')];
    await store.updateEventSettings(u, off.id, { eventsEnabled: false });
    await store.updateEventSettings(u, own.id, { webhookUrl: 'https://crm.example.com/hook' });
    for (const a of [byDefault, off, own]) await store.beginFolder(u, a.id, 'INBOX', 1);
    const batch = (accountId: string, eventsByDefault: boolean) =>
      store.storeMessages(u, accountId, 'INBOX', 1, [message(1), message(2)], 2, undefined, [], { eventsByDefault });

    // Events on by the worker's configuration; an account that turned them off gets none.
    assert.equal((await batch(byDefault.id, true)).events, 2);
    assert.equal((await batch(off.id, true)).events, 0);
    // Off by configuration, but the account has a webhook of its own.
    assert.equal((await batch(own.id, false)).events, 2);
    // The same batch again (a retried activity): no message and no event twice.
    assert.deepEqual(await batch(byDefault.id, true), { inserted: 0, skipped: 0, lastUid: 2, events: 0 });

    const pending = await store.listPendingEvents(u, byDefault.id, 10);
    const messages = await store.listMessages(u, byDefault.id);
    assert.deepEqual(
      pending.map((e) => [e.messageId, e.folder, e.webhookStatus, e.dispatchedAt]),
      messages.map((m) => [m.id, 'INBOX', 'none', null]),
    );
    // Marked once; a second mark (another dispatcher) changes nothing; a recorded outcome stays.
    const ids = pending.map((e) => e.id);
    assert.equal(await store.markEventsDispatched(u, ids, { workflowStarted: true, webhook: true }), 2);
    assert.equal(await store.markEventsDispatched(u, ids, { workflowStarted: true, webhook: true }), 0);
    assert.equal(await store.recordWebhookAttempt(u, ids[0], 1, 'POST x answered HTTP 503'), true);
    assert.equal(await store.finishWebhook(u, ids[0], { status: 'delivered', attempts: 2, error: null }), true);
    await db.pool.query('UPDATE message_events SET dispatched_at = NULL WHERE id = $1', [ids[0]]);
    await store.markEventsDispatched(u, [ids[0]], { workflowStarted: true, webhook: true });
    const [first, second] = await store.listMessageEvents(u, byDefault.id);
    assert.deepEqual([first.webhookStatus, first.webhookAttempts, second.webhookStatus], ['delivered', 2, 'pending']);
    assert.deepEqual(await store.listPendingEvents(u, byDefault.id, 10), []);
    // A message deleted (server-side delete, UIDVALIDITY change) takes its event with it.
    await store.deleteMissingMessages(u, byDefault.id, 'INBOX', 1, [2], 2);
    assert.deepEqual(
      (await store.listMessageEvents(u, byDefault.id)).map((e) => e.id),
      [second.id],
    );
  });

  it('stores folders named with NUL or a lone surrogate under a valid key, and records any error text', async () => {
    const { u, acc } = await userWithAccount('names@example.com', 'names');
    const run = await store.beginSyncRun(u, acc.id, 'wf-names', randomUUID());
    assert.ok(run);
    // The server's names, as imapflow decodes them (&AAA- and x&2AA-): every function takes them as they are.
    for (const [folder, key] of [
      ['\u0000', '\uFFFD'],
      ['x\uD800', 'x\uFFFD'],
    ]) {
      await store.beginFolder(u, acc.id, folder, 7, run);
      await store.storeMessages(u, acc.id, folder, 7, [message(1)], 1, run, [
        { uid: 2, kind: 'data', size: null, reason: 'skipped\u0000 \u001B[31mred' },
      ]);
      assert.equal((await store.getFolderState(u, acc.id, folder))?.lastUid, 1);
      assert.equal(
        await store.applyFlagChanges(u, acc.id, folder, 7, [{ uid: 1, flags: ['\\Seen'], modseq: '2' }], '2', run),
        1,
      );
      assert.deepEqual(
        (await store.listMessages(u, acc.id, folder)).map((m) => [m.folder, m.uid, m.flags]),
        [[key, 1, ['\\Seen']]],
      );
      assert.equal(await store.deleteMissingMessages(u, acc.id, folder, 7, [1], 1, run), 0);
    }
    assert.deepEqual(
      (await store.getFolderStates(u, acc.id)).map((f) => f.folder).sort(),
      ['x\uFFFD', '\uFFFD'].sort(),
    );
    assert.equal(
      await store.recordFolderError(u, acc.id, run, 'y\u0000', 'NO \u0000 \u001B]0;title\u0007bad\uD800'),
      true,
    );
    const errors = await store.listSyncErrors(u, acc.id);
    const folderError = errors.find((e) => e.kind === 'folder');
    assert.deepEqual([folderError?.folder, folderError?.reason], ['y\uFFFD', 'NO \uFFFD \uFFFDbad\uFFFD']);
    assert.ok(errors.filter((e) => e.kind === 'data').every((e) => e.reason === 'skipped\uFFFD \uFFFDred'));
    // Recording an error never fails on what the server said, and what is kept is one printable line.
    assert.equal(
      await store.markNeedsAttention(u, acc.id, 'NO [AUTHENTICATIONFAILED] \u0000\u001B[2Jbad\r\nfix: rm'),
      true,
    );
    assert.equal(
      (await store.getAccount(u, acc.id))?.statusReason,
      'NO [AUTHENTICATIONFAILED] \uFFFD\uFFFDbad fix: rm',
    );
    const finished = await store.finishSyncRun(u, run, {
      status: 'failed',
      error: 'in folder "\u0000\uD800": \u001B[31m',
    });
    assert.deepEqual([finished?.status, finished?.error], ['failed', 'in folder "\uFFFD\uFFFD": \uFFFD']);
    // Forgetting folders the server no longer lists works on the keys too.
    const removed = await store.removeFoldersExcept(u, acc.id, ['\u0000']);
    assert.deepEqual(removed, { folders: ['x\uFFFD'], messages: 1 });
  });

  it('skips a message PostgreSQL refuses, records why, and commits the rest of the batch', async () => {
    const { u, acc } = await userWithAccount('skip@example.com', 'skip');
    const run = (await store.beginSyncRun(u, acc.id, 'wf', `run-${randomUUID()}`))!;
    await store.beginFolder(u, acc.id, 'INBOX', 1, run);
    // The store is the last line: what the IMAP side did not clean still cannot stop the folder.
    const nul = { ...message(2), subject: 'a\u0000b' };
    const badDate = { ...message(3), sentAt: new Date(-8.64e15) };
    const saved = await store.storeMessages(u, acc.id, 'INBOX', 1, [message(1), nul, badDate, message(4)], 5, run, [
      { uid: 5, kind: 'oversize', size: 64 << 20, reason: 'too large' },
    ]);
    assert.deepEqual(saved, { inserted: 2, skipped: 3, lastUid: 5, events: 0 });
    assert.deepEqual(
      (await store.listMessages(u, acc.id)).map((m) => m.uid),
      [1, 4],
    );
    const errors = await store.listSyncErrors(u, acc.id);
    const byUid = new Map(errors.map((e) => [e.uid, e]));
    assert.match(byUid.get(2)?.reason ?? '', /invalid byte sequence.*0x00.*SQLSTATE 22021/);
    assert.equal(byUid.get(2)?.kind, 'data');
    assert.match(byUid.get(3)?.reason ?? '', /SQLSTATE 22/);
    assert.deepEqual(
      { kind: byUid.get(5)?.kind, size: byUid.get(5)?.size, run: byUid.get(5)?.syncRunId },
      { kind: 'oversize', size: 64 << 20, run },
    );
    // A retried batch records nothing twice and counts nothing twice.
    assert.deepEqual(await store.storeMessages(u, acc.id, 'INBOX', 1, [message(1), nul, badDate, message(4)], 5, run), {
      inserted: 0,
      skipped: 0,
      lastUid: 5,
      events: 0,
    });
    const [r] = await store.listSyncRuns(u, acc.id);
    assert.deepEqual({ added: r.messagesAdded, skipped: r.messagesSkipped }, { added: 2, skipped: 3 });
    const [summary] = await store.listAccounts(u);
    assert.equal(summary.skippedCount, 3);
    assert.equal(summary.lastRun?.messagesSkipped, 3);
    // Folder errors: one row per run and folder, however often recorded.
    await store.recordFolderError(u, acc.id, run, 'Spam', 'first');
    await store.recordFolderError(u, acc.id, run, 'Spam', 'second');
    const folderErrors = (await store.listSyncErrors(u, acc.id, { syncRunId: run })).filter((e) => e.kind === 'folder');
    assert.deepEqual(
      folderErrors.map((e) => [e.folder, e.reason, e.uid]),
      [['Spam', 'second', null]],
    );
    // Skip records name UIDs of one UIDVALIDITY: a recreated folder drops them with the messages.
    await store.beginFolder(u, acc.id, 'INBOX', 2, run);
    assert.equal((await store.listAccounts(u))[0].skippedCount, 0);
  });

  it('keeps OAuth2 secrets encrypted, each bound to its account and column, and refreshes one at a time', async () => {
    const u = (await store.ensureUser('oauth@example.com')).id;
    const acc = await addAccountWithOAuth2(
      store,
      keyring,
      u,
      {
        imapHost: 'imap.gmail.com',
        imapPort: 993,
        imapTls: true,
        imapUser: 'oauth@example.com',
        syncIntervalSeconds: 60,
      },
      {
        provider: 'google',
        tokenUrl: 'https://oauth2.googleapis.com/token',
        clientId: 'client-1',
        scopes: 'https://mail.google.com/',
      },
      {
        refreshToken: 'refresh-secret-1',
        clientSecret: 'client-secret-1',
        accessToken: { token: 'access-secret-1', expiresAt: new Date(Date.now() + 3600_000) },
      },
    );
    assert.equal(acc.authMethod, 'oauth2');
    assert.equal(acc.oauth2?.clientId, 'client-1');
    assert.ok(acc.oauth2?.accessTokenExpiresAt);
    const { rows } = await db.pool.query('SELECT * FROM mail_accounts WHERE id = $1', [acc.id]);
    const raw = JSON.stringify(rows[0]);
    for (const secret of ['refresh-secret-1', 'client-secret-1', 'access-secret-1'])
      assert.ok(!raw.includes(secret), `${secret} stored in plaintext`);
    assert.equal(rows[0].password_encrypted, null);
    const secrets = (await store.getAccountSecret(u, acc.id))!.oauth2!;
    assert.equal(
      decryptSecret(keyring, secrets.refreshTokenEncrypted, oauth2SecretContext(acc.id, 'refresh_token')),
      'refresh-secret-1',
    );
    assert.throws(
      () => decryptSecret(keyring, secrets.refreshTokenEncrypted, oauth2SecretContext(acc.id, 'access_token')),
      /does not decrypt/,
    );
    // The schema refuses an OAuth2 account without a refresh token.
    await assert.rejects(
      db.pool.query('UPDATE mail_accounts SET oauth2_refresh_token_encrypted = NULL WHERE id = $1', [acc.id]),
      /credentials_check/,
    );

    // Two refreshes at once run one after the other: the second sees what the first stored.
    const order: string[] = [];
    const refresh = (name: string) =>
      store.withOAuth2Secrets(u, acc.id, async (s) => {
        order.push(
          `${name} saw ${s.accessTokenEncrypted === null ? 'none' : decryptSecret(keyring, s.accessTokenEncrypted, oauth2SecretContext(acc.id, 'access_token'))}`,
        );
        await new Promise((r) => setTimeout(r, 100));
        const token = `access-from-${name}`;
        return {
          result: token,
          store: {
            accessTokenEncrypted: encryptSecret(keyring, token, oauth2SecretContext(acc.id, 'access_token')),
            accessTokenExpiresAt: new Date(Date.now() + 60_000),
          },
        };
      });
    await Promise.all([refresh('a'), refresh('b')]);
    assert.equal(order.length, 2);
    assert.ok(order[1].endsWith(order[0].startsWith('a') ? 'access-from-a' : 'access-from-b'), order.join('; '));

    // A new refresh token clears needs_attention and the cached access token.
    await store.markNeedsAttention(u, acc.id, 'invalid_grant');
    assert.ok(await setAccountRefreshToken(store, keyring, u, acc.id, { refreshToken: 'refresh-secret-2' }));
    const after = await store.getAccountSecret(u, acc.id);
    assert.equal(after?.account.status, 'ok');
    assert.equal(after?.oauth2?.accessTokenEncrypted, null);
    assert.equal(
      decryptSecret(keyring, after!.oauth2!.refreshTokenEncrypted, oauth2SecretContext(acc.id, 'refresh_token')),
      'refresh-secret-2',
    );
    assert.equal(
      decryptSecret(keyring, after!.oauth2!.clientSecretEncrypted!, oauth2SecretContext(acc.id, 'client_secret')),
      'client-secret-1',
      'client secret kept',
    );
    // A password cannot be set on an OAuth2 account (and vice versa).
    assert.equal(await store.updateAccountPassword(u, acc.id, 'v1:k1:x'), false);
    assert.ok((await store.countAccountsNeedingAttention()) >= 0);
  });

  it("a watcher that closes clears only its own claim, not a replacement's", async () => {
    const { u, acc } = await userWithAccount('replaced-watcher@example.com', 'rw');
    const held = () => store.requestWatcherRelease(u, acc.id);
    assert.deepEqual(await store.claimWatcherConnection(u, acc.id, 'watch-rw', 'old-claim'), {
      releaseRequested: false,
    });
    // Disabled and enabled again while the old watch was still stopping: the new watcher claims.
    assert.ok(await store.claimWatcherConnection(u, acc.id, 'watch-rw', 'new-claim'));
    // The old watch closes its connection late: the new watcher's claim stands.
    await store.releaseWatcherConnection(u, acc.id, 'old-claim');
    assert.equal((await store.getWatcher(u, acc.id))?.connected, true);
    assert.equal(await held(), true, "a sync with a budget of one still sees the new watcher's connection");
    await store.releaseWatcherConnection(u, acc.id, 'new-claim');
    assert.equal((await store.getWatcher(u, acc.id))?.connected, false);
    assert.equal(await held(), false, 'released by the watcher that holds it');
  });
});

describe('migrations', () => {
  const url = withDatabase(ADMIN_DATABASE_URL, `mailroom_test_mig_${randomUUID().slice(0, 8)}`);
  const dirs: string[] = [];
  before(async () => {
    await ensureDatabase(url);
  });
  after(async () => {
    await dropDatabase(url);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('apply once even when several processes run them at the same time, and re-run as a no-op', async () => {
    const pools = [createPool(url, { max: 1 }), createPool(url, { max: 1 }), createPool(url, { max: 1 })];
    try {
      const results = await Promise.all(pools.map((p) => migrate(p)));
      const total = readMigrations().length;
      assert.equal(
        results.reduce((n, r) => n + r.applied.length, 0),
        total,
      );
      const again = await migrate(pools[0]);
      assert.deepEqual(again, { applied: [], alreadyApplied: total });
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('roll back a failing migration completely and refuse an edited one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailroom-migrations-'));
    dirs.push(dir);
    const scratch = withDatabase(ADMIN_DATABASE_URL, `mailroom_test_mig2_${randomUUID().slice(0, 8)}`);
    await ensureDatabase(scratch);
    const pool = createPool(scratch, { max: 1 });
    try {
      writeFileSync(join(dir, '001_a.sql'), 'CREATE TABLE a (id int);');
      writeFileSync(join(dir, '002_b.sql'), 'CREATE TABLE b (id int); SELECT no_such_function();');
      await assert.rejects(migrate(pool, { dir }), /002_b\.sql failed and was rolled back/);
      const { rows } = await pool.query(
        "SELECT to_regclass('b') AS b, to_regclass('a') AS a, (SELECT count(*) FROM schema_migrations)::int AS n",
      );
      assert.deepEqual(rows[0], { a: 'a', b: null, n: 1 });
      writeFileSync(join(dir, '002_b.sql'), 'CREATE TABLE b (id int);');
      assert.deepEqual((await migrate(pool, { dir })).applied, ['002_b.sql']);
      writeFileSync(join(dir, '001_a.sql'), 'CREATE TABLE a (id bigint);');
      await assert.rejects(migrate(pool, { dir }), /001_a\.sql changed after it was applied/);
    } finally {
      await pool.end();
      await dropDatabase(scratch);
    }
  });
});
