// The account-sync repository and migrations against the real PostgreSQL. Above all: one
// user can never read or change another user's accounts, messages or sync records, through
// any repository function (the test fails if a function is added without a check here).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStore, type NewMessage, type Store } from '../../activities/store';
import { addAccountWithPassword, accountSecretContext } from '../../activities/sync';
import { decryptSecret, generateKeyEntry, parseKeyring } from '../../lib/crypto';
import { createPool, dropDatabase, ensureDatabase, withDatabase } from '../../lib/db';
import { migrate, readMigrations } from '../../lib/migrate';
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
    assert.equal(decryptSecret(keyring, secret!.passwordEncrypted, accountSecretContext(account.id)), 'hunter2-very-secret');
    assert.throws(() => decryptSecret(keyring, secret!.passwordEncrypted, accountSecretContext(randomUUID())), /does not decrypt/);
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
    await store.storeMessages(alice, acc.id, 'INBOX', 7, [message(1), message(2)], 2, run);
    const [m1] = await store.listMessages(alice, acc.id);
    const snapshot = async () => ({
      account: await store.getAccountSecret(alice, acc.id),
      folders: await store.getFolderStates(alice, acc.id),
      messages: await store.listMessages(alice, acc.id),
      raw: await store.getMessageRaw(alice, m1.id),
      runs: await store.listSyncRuns(alice, acc.id),
    });
    const before = await snapshot();

    // Eve uses Alice's ids in every call; each must see nothing and change nothing.
    const checks: Record<string, () => Promise<void>> = {
      addAccount: async () => {
        // Eve cannot attach an account to Alice by reusing Alice's account id.
        await assert.rejects(store.addAccount(eve, { ...acc, id: acc.id, passwordEncrypted: 'x' }), /duplicate key|violates/);
      },
      getAccount: async () => assert.equal(await store.getAccount(eve, acc.id), null),
      getAccountSecret: async () => assert.equal(await store.getAccountSecret(eve, acc.id), null),
      listAccounts: async () => assert.deepEqual(await store.listAccounts(eve), []),
      updateAccountPassword: async () => assert.equal(await store.updateAccountPassword(eve, acc.id, 'v1:k1:evil'), false),
      updateAccountSettings: async () => assert.equal(await store.updateAccountSettings(eve, acc.id, { enabled: false }), null),
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
        await assert.rejects(store.applyFlagChanges(eve, acc.id, 'INBOX', 7, [{ uid: 1, flags: ['\\Deleted'], modseq: null }], '99'), /no sync state/);
      },
      deleteMissingMessages: async () => assert.equal(await store.deleteMissingMessages(eve, acc.id, 'INBOX', 7, [], 100), 0),
      removeFoldersExcept: async () => assert.deepEqual(await store.removeFoldersExcept(eve, acc.id, []), { folders: [], messages: 0 }),
      listMessages: async () => assert.deepEqual(await store.listMessages(eve, acc.id), []),
      getMessageRaw: async () => assert.equal(await store.getMessageRaw(eve, m1.id), null),
      deleteMessage: async () => assert.equal(await store.deleteMessage(eve, m1.id), false),
      beginSyncRun: async () => assert.equal(await store.beginSyncRun(eve, acc.id, 'wf', `run-${randomUUID()}`), null),
      finishSyncRun: async () => assert.equal(await store.finishSyncRun(eve, run, { status: 'failed', error: 'x' }), null),
      listSyncRuns: async () => assert.deepEqual(await store.listSyncRuns(eve, acc.id), []),
    };
    // Functions about users themselves rather than a user's data.
    const userLevel = ['ensureUser', 'findUserByEmail', 'listUsers'];
    assert.deepEqual(Object.keys(store).filter((k) => !userLevel.includes(k)).sort(), Object.keys(checks).sort(), 'every repository function has an isolation check');
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
      db.pool.query(`INSERT INTO messages (account_id, user_id, folder, uidvalidity, uid, raw) VALUES ($1, $2, 'INBOX', 7, 99, 'x')`, [acc.id, eve]),
      /foreign key/,
    );
  });

  it('stores idempotently and moves the checkpoint with the batch', async () => {
    const u = (await store.ensureUser('idem@example.com')).id;
    const acc = await addAccountWithPassword(store, keyring, u, { imapHost: 'h', imapPort: 143, imapTls: false, imapUser: 'idem', syncIntervalSeconds: 60 }, 'pw');
    await store.beginFolder(u, acc.id, 'INBOX', 1);
    assert.deepEqual(await store.storeMessages(u, acc.id, 'INBOX', 1, [message(1), message(2)], 2), { inserted: 2, lastUid: 2 });
    // The same batch again (a retried activity whose first attempt committed): no duplicates.
    assert.deepEqual(await store.storeMessages(u, acc.id, 'INBOX', 1, [message(1), message(2)], 2), { inserted: 0, lastUid: 2 });
    // A stale batch never moves the checkpoint backwards.
    assert.deepEqual(await store.storeMessages(u, acc.id, 'INBOX', 1, [message(1)], 1), { inserted: 0, lastUid: 2 });
    // A batch for an old UIDVALIDITY is refused.
    await assert.rejects(store.storeMessages(u, acc.id, 'INBOX', 2, [message(3)], 3), /UIDVALIDITY/);
    // A new UIDVALIDITY drops the folder's messages and restarts the checkpoint.
    const reset = await store.beginFolder(u, acc.id, 'INBOX', 2);
    assert.deepEqual({ reset: reset.reset, dropped: reset.dropped, lastUid: reset.state.lastUid }, { reset: true, dropped: 2, lastUid: 0 });
    assert.deepEqual(await store.listMessages(u, acc.id), []);
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
      assert.equal(results.reduce((n, r) => n + r.applied.length, 0), total);
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
      const { rows } = await pool.query("SELECT to_regclass('b') AS b, to_regclass('a') AS a, (SELECT count(*) FROM schema_migrations)::int AS n");
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
