// OAuth2 accounts end to end, for real: a local OAuth2 server (scripts/stack/oauth2.ts, on
// oauth2-mock-server), Dovecot validating every OAUTHBEARER/XOAUTH2 login against it, the
// sync worker and PostgreSQL. First sync; access tokens that expire during a long sync and are
// refreshed; revocation (invalid_grant) leading to the waiting state, visible at once (account
// status, SyncStatus search attribute, metric); a new refresh token given with the
// account:token starter resuming the waiting sync. Absurd token lifetimes, a database that
// refuses to store the new tokens, a plain-http token URL. No token in any history or log line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { addAccountWithOAuth2 } from '../../lib/sync-store/credentials';
import { createStore, type Account, type Store } from '../../lib/sync-store';
import { decryptSecret, generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { oauth2SecretContext } from '../../lib/sync-store/credentials';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../../lib/imap/oauth2';
import { NEEDS_ATTENTION_MAX_AGE_MS, syncRegistry } from '../../lib/observability/sync-metrics';
import { startLocalOAuth2Server, type LocalOAuth2Server } from '../../scripts/stack/oauth2';
import type { syncAccount } from '../../workflows/syncAccount';
import { progressQuery, syncWorkflowId, type SyncAccountInput } from '../../contracts/sync';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  fillMailbox,
  imapSession,
  recordSyncHistory,
  serverView,
  sortMessages,
  startSyncTestWorker,
  startTestDovecot,
  waitFor,
  type TestDatabase,
  type TestDovecot,
} from './sync-fixtures';

const ROOT = join(__dirname, '..', '..');
const keyEntry = generateKeyEntry('k1');
const keyring = parseKeyring(keyEntry);
const taskQueue = `sync-oauth2-${randomBytes(4).toString('hex')}`;
const MAILBOX = { user: 'olivia@example.test', password: `not-used-${randomBytes(6).toString('hex')}` };
const CLIENT = { clientId: 'mailroom-test-client', clientSecret: `client-secret-${randomBytes(8).toString('hex')}` };
const TOKEN_SECONDS = 2;

describe('OAuth2 accounts against Dovecot, a local OAuth2 server and PostgreSQL', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dovecot: TestDovecot;
  let oauth: LocalOAuth2Server;
  let store: Store;
  let worker: { stop(): Promise<void> };
  let ownerId: string;
  let account: Account;
  const logLines: string[] = [];
  const workflowIds: string[] = [];

  before(async () => {
    // Keep every log line of the SDK and of the activities, to search them for tokens.
    try {
      Runtime.install({
        logger: new DefaultLogger('INFO', (entry) =>
          logLines.push(`${entry.message} ${JSON.stringify(entry.meta ?? {})}`),
        ),
      });
    } catch {
      /* installed by an earlier file in this process: the activity log below still counts */
    }
    oauth = await startLocalOAuth2Server({ clients: [CLIENT], accessTokenSeconds: TOKEN_SECONDS });
    [env, db, dovecot] = await Promise.all([
      startTestTemporal(),
      createTestDatabase(),
      startTestDovecot([MAILBOX], { oauth2: { introspectionUrl: oauth.userinfoUrl } }),
    ]);
    store = createStore(db.pool);
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    });
    worker = await startSyncTestWorker(env, {
      db,
      keyEntry,
      taskQueue,
      logger: pino({ level: 'debug' }, sink),
      // Three batches per activity with pauses between them: each activity takes over a second,
      // so the two-second access tokens expire during the sync. Refresh when less than 0.5 s is left.
      // sessionReuseMs 0: every activity logs in, so the token cache (refreshed only when it
      // expires, not per login) is what the counts below measure.
      config: {
        batchSize: 2,
        batchesPerActivity: 3,
        batchPauseMs: 600,
        oauth2RefreshMarginMs: 500,
        sessionReuseMs: 0,
      },
    });
    ownerId = (await store.ensureUser('olivia.owner@example.com')).id;
  });

  after(async () => {
    await worker?.stop();
    await env?.teardown();
    await dovecot?.cleanup();
    await oauth?.stop();
    await db?.drop();
  });

  async function start(input: SyncAccountInput) {
    const handle = await env.client.workflow.start<typeof syncAccount>('syncAccount', {
      taskQueue,
      workflowId: `${syncWorkflowId(input.accountId)}-${randomBytes(3).toString('hex')}`,
      args: [input],
    });
    workflowIds.push(handle.workflowId);
    return handle;
  }

  async function assertMirrors() {
    const imap = await imapSession(dovecot, MAILBOX.user, MAILBOX.password);
    try {
      const rows = await store.listMessages(ownerId, account.id);
      assert.deepEqual(
        sortMessages(
          rows.map((m) => ({
            folder: m.folder,
            uidValidity: m.uidValidity,
            uid: m.uid,
            messageId: m.messageId,
            flags: m.flags,
          })),
        ),
        await serverView(imap),
      );
    } finally {
      await imap.logout();
    }
  }

  const gauge = async () => /mailroom_sync_accounts_needing_attention (\d+)/.exec(await syncRegistry.metrics())?.[1];
  // The gauge serves a count at most 10 s old (lib/observability/sync-metrics.ts): wait that long for a change.
  const gaugeBecomes = async (value: string) => {
    const deadline = Date.now() + NEEDS_ATTENTION_MAX_AGE_MS + 5000;
    while ((await gauge()) !== value && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    return gauge();
  };

  it('first sync logs in with OAuth2 and refreshes the access token as it expires during a long sync', async () => {
    const imap = await imapSession(dovecot, MAILBOX.user, MAILBOX.password);
    await fillMailbox(imap, { INBOX: 12, Sent: 6 });
    await imap.logout();
    account = await addAccountWithOAuth2(
      store,
      keyring,
      ownerId,
      {
        imapHost: '127.0.0.1',
        imapPort: dovecot.imapPort,
        imapTls: false,
        imapUser: MAILBOX.user,
        syncIntervalSeconds: 300,
      },
      { provider: 'custom', tokenUrl: oauth.tokenUrl, clientId: CLIENT.clientId, scopes: 'imap' },
      { refreshToken: oauth.grant(MAILBOX.user), clientSecret: CLIENT.clientSecret },
    );
    const before = { ...oauth.stats };
    const t0 = Date.now();
    const result = await (await start({ userId: ownerId, accountId: account.id })).result();
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesAdded, 18);
    await assertMirrors();
    assert.ok(
      seconds > TOKEN_SECONDS,
      `the sync (${seconds} s) outlasts an access token (${TOKEN_SECONDS} s), or this test proves nothing`,
    );
    const refreshes = oauth.stats.refreshes - before.refreshes;
    const logins = oauth.stats.introspections - before.introspections;
    assert.ok(refreshes >= 2, `expected the token to be refreshed during the sync, got ${refreshes} token grant(s)`);
    assert.ok(
      refreshes < logins,
      `a valid token is reused, not refreshed for every login (${refreshes} refreshes, ${logins} logins)`,
    );
    assert.equal(
      oauth.stats.introspectionsRefused - before.introspectionsRefused,
      0,
      'Dovecot never saw an expired token',
    );
    assert.equal(oauth.stats.refused - before.refused, 0);
    // The provider rotates refresh tokens: the newest one is stored (encrypted).
    assert.ok((await store.getAccountSecret(ownerId, account.id))?.oauth2?.accessTokenEncrypted?.startsWith('v1:k1:'));
  });

  it('a revoked grant (invalid_grant) puts the account in the waiting state at once; a new refresh token from account:token resumes the sync', async () => {
    const imap = await imapSession(dovecot, MAILBOX.user, MAILBOX.password);
    await fillMailbox(imap, { INBOX: 3 }, 500);
    await imap.logout();
    assert.equal(await gauge(), '0');

    // The user revokes mailroom's access (or changes the password): refresh and access tokens die.
    oauth.revoke(MAILBOX.user);
    const handle = await start({ userId: ownerId, accountId: account.id });
    const progress = await waitFor('the waiting state', async () => {
      const p = await handle.query(progressQuery);
      return p.status === 'needs_attention' ? p : undefined;
    });
    assert.equal(progress.phase, 'waiting_for_token');
    assert.match(progress.reason ?? '', /invalid_grant/);
    const waiting = await store.getAccount(ownerId, account.id);
    assert.equal(waiting?.status, 'needs_attention');
    assert.match(waiting?.statusReason ?? '', /refused the refresh token.*invalid_grant/);
    // Visible at once: the search attribute, the metric, the account list.
    await waitFor('SyncStatus needs_attention in visibility', async () => {
      for await (const w of env.client.workflow.list({
        query: `SyncStatus = "needs_attention" AND AccountId = "${account.id}"`,
      }))
        if (w.workflowId === handle.workflowId) return true;
      return false;
    });
    assert.equal(await gaugeBecomes('1'), '1');
    assert.match(
      await syncRegistry.getSingleMetricAsString('mailroom_sync_credential_rejections_total'),
      /method="oauth2"} 1/,
    );
    const childEnv = {
      ...process.env,
      DATABASE_URL: db.url,
      MAILROOM_SECRET_KEYS: keyEntry,
      SYNC_TASK_QUEUE: taskQueue,
      TEMPORAL_ADDRESS: env.address,
      MAILROOM_CODEC_KEYS: 'none',
      LOG_LEVEL: 'warn',
    };
    const run = promisify(execFile);
    const listed = await run(
      process.execPath,
      ['--import', 'tsx', 'starters/list-accounts.ts', '--user', 'olivia.owner@example.com'],
      { cwd: ROOT, env: childEnv },
    ).then(
      () => assert.fail('account:list exits 3 while an account needs attention'),
      (err: { code: number; stdout: string }) => err,
    );
    assert.equal(listed.code, 3);
    assert.match(listed.stdout, /OAuth2 custom/);
    assert.match(listed.stdout, /NEEDS ATTENTION since \d+s ago/);
    assert.match(
      listed.stdout,
      /fix: printf '%s\\n' "\$REFRESH_TOKEN" \| npm run account:token -- --user olivia\.owner@example\.com --account /,
    );

    // The operator gives a new refresh token (from the user's new consent) with the starter.
    const fresh = oauth.grant(MAILBOX.user);
    const child = run(
      process.execPath,
      ['--import', 'tsx', 'starters/set-token.ts', '--user', 'olivia.owner@example.com', '--account', account.id],
      { cwd: ROOT, env: childEnv },
    );
    child.child.stdin?.end(`${fresh}\n`);
    const out = await child;
    assert.match(out.stdout, /Refresh token of account .* updated; it no longer needs attention/);
    assert.match(out.stdout, new RegExp(`Signalled running sync ${handle.workflowId}`));
    const result = await handle.result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesAdded, 3);
    assert.equal((await store.getAccount(ownerId, account.id))?.status, 'ok');
    assert.equal(await gaugeBecomes('0'), '0');
    await assertMirrors();
    // The path that waits for a new OAuth2 token and resumes on credentialsUpdated.
    await recordSyncHistory(env.client, handle.workflowId, undefined, 'oauth2-token-revoked-then-resumed');
  });

  /** The refresh token stored for the account, decrypted. */
  async function storedRefreshToken(): Promise<string> {
    const secrets = (await store.getAccountSecret(ownerId, account.id))?.oauth2;
    assert.ok(secrets);
    return decryptSecret(keyring, secrets.refreshTokenEncrypted, oauth2SecretContext(account.id, 'refresh_token'));
  }

  /** Makes the next login refresh the access token. */
  const forgetAccessToken = () =>
    db.pool.query(
      'UPDATE mail_accounts SET oauth2_access_token_encrypted = NULL, oauth2_access_token_expires_at = NULL WHERE id = $1',
      [account.id],
    );

  it('an absurd expires_in (1e13 s) is clamped to a year: the tokens are stored and the rotated refresh token kept', async () => {
    await forgetAccessToken();
    const before = oauth.stats.refreshes;
    oauth.accessTokenSeconds = 1e13;
    try {
      const t0 = Date.now();
      const result = await (await start({ userId: ownerId, accountId: account.id })).result();
      assert.equal(result.status, 'succeeded');
      assert.equal(oauth.stats.refreshes - before, 1, 'one refresh, then the (long-lived) token is reused');
      const expires = (await store.getAccount(ownerId, account.id))?.oauth2?.accessTokenExpiresAt;
      assert.ok(expires, 'the access token and its expiry were stored');
      const year = MAX_TOKEN_LIFETIME_SECONDS * 1000;
      assert.ok(
        expires.getTime() >= t0 + year && expires.getTime() <= Date.now() + year,
        `expiry clamped to a year from the refresh, got ${expires.toISOString()}`,
      );
      assert.equal(
        await storedRefreshToken(),
        oauth.issued.refreshTokens.at(-1),
        'the rotated refresh token is stored',
      );
    } finally {
      oauth.accessTokenSeconds = TOKEN_SECONDS;
    }
  });

  it('a refresh token is never lost when storing the new tokens fails', async () => {
    // PostgreSQL refuses, first, the access token (only a cache), then the refresh token itself
    // (a trigger reading what to refuse from a table, so every pooled connection sees it at once).
    await db.pool.query(`
      CREATE TABLE test_refuse (what text NOT NULL);
      CREATE FUNCTION refuse_oauth2_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.oauth2_access_token_encrypted IS DISTINCT FROM OLD.oauth2_access_token_encrypted
           AND NEW.oauth2_access_token_encrypted IS NOT NULL AND EXISTS (SELECT 1 FROM test_refuse) THEN
          RAISE EXCEPTION 'test: refusing to store the access token';
        END IF;
        IF NEW.oauth2_refresh_token_encrypted IS DISTINCT FROM OLD.oauth2_refresh_token_encrypted
           AND EXISTS (SELECT 1 FROM test_refuse WHERE what = 'refresh') THEN
          RAISE EXCEPTION 'test: refusing to store the refresh token';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse_oauth2 BEFORE UPDATE ON mail_accounts FOR EACH ROW EXECUTE FUNCTION refuse_oauth2_update();`);
    const refuse = async (what: 'access' | 'refresh') => {
      await db.pool.query('DELETE FROM test_refuse');
      await db.pool.query('INSERT INTO test_refuse VALUES ($1)', [what]);
    };
    try {
      // 1. The access token cannot be cached: the rotated refresh token is stored all the same, the sync goes on.
      await db.pool.query(
        "UPDATE mail_accounts SET oauth2_access_token_encrypted = 'v1:k1:stale', oauth2_access_token_expires_at = now() WHERE id = $1",
        [account.id],
      );
      await refuse('access');
      const cached = await (await start({ userId: ownerId, accountId: account.id })).result();
      assert.equal(cached.status, 'succeeded');
      assert.equal(
        await storedRefreshToken(),
        oauth.issued.refreshTokens.at(-1),
        'the rotated refresh token is stored',
      );
      assert.equal(
        (await store.getAccountSecret(ownerId, account.id))?.oauth2?.accessTokenEncrypted,
        null,
        'no stale access token left in place of the one not stored',
      );
      assert.ok(logLines.some((l) => l.includes('OAuth2 access token not cached')));

      // 2. The refresh token cannot be stored: the old one is kept, the run ends failed and says why.
      const kept = await storedRefreshToken();
      await refuse('refresh');
      const handle = await start({ userId: ownerId, accountId: account.id, options: { imapMaxAttempts: 1 } });
      await assert.rejects(handle.result());
      assert.equal(await storedRefreshToken(), kept, 'the old refresh token is not discarded');
      const [run] = await store.listSyncRuns(ownerId, account.id);
      assert.equal(run.status, 'failed');
      assert.match(
        run.error ?? '',
        new RegExp(
          `new refresh token for account ${account.id} but storing it failed .*refusing to store the refresh token.*was kept`,
        ),
      );
    } finally {
      await db.pool.query(
        'DROP TRIGGER refuse_oauth2 ON mail_accounts; DROP FUNCTION refuse_oauth2_update(); DROP TABLE test_refuse',
      );
    }
    // With the database fixed, the kept refresh token still works.
    const healed = await (await start({ userId: ownerId, accountId: account.id })).result();
    assert.equal(healed.status, 'succeeded');
  });

  it('a plain-http token URL is never used: the account waits, naming the setting, until account:token gives another', async () => {
    await forgetAccessToken();
    await db.pool.query('UPDATE mail_accounts SET oauth2_token_url = $2 WHERE id = $1', [
      account.id,
      'http://oauth.example.com/token',
    ]);
    const before = oauth.stats.refreshes;
    const result = await (
      await start({ userId: ownerId, accountId: account.id, options: { authWaitSeconds: 1 } })
    ).result();
    assert.equal(result.status, 'needs_attention');
    const waiting = await store.getAccount(ownerId, account.id);
    assert.equal(waiting?.status, 'needs_attention');
    assert.match(
      waiting?.statusReason ?? '',
      new RegExp(
        `Account ${account.id}: its OAuth2 token URL \\(setting oauth2_token_url, --token-url\\) is not used: .*plain http`,
      ),
    );
    assert.equal(oauth.stats.refreshes, before, 'nothing was sent to the http:// endpoint');

    const run = promisify(execFile);
    const childEnv = {
      ...process.env,
      DATABASE_URL: db.url,
      MAILROOM_SECRET_KEYS: keyEntry,
      SYNC_TASK_QUEUE: taskQueue,
      TEMPORAL_ADDRESS: env.address,
      MAILROOM_CODEC_KEYS: 'none',
      LOG_LEVEL: 'warn',
    };
    const setToken = (args: string[]) => {
      const child = run(
        process.execPath,
        [
          '--import',
          'tsx',
          'starters/set-token.ts',
          '--user',
          'olivia.owner@example.com',
          '--account',
          account.id,
          ...args,
        ],
        { cwd: ROOT, env: childEnv },
      );
      child.child.stdin?.end(`${oauth.grant(MAILBOX.user)}\n`);
      return child.then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
    };
    const stale = await setToken([]);
    assert.equal(stale.code, 1);
    assert.match(
      stale.stderr,
      /its OAuth2 token URL \(oauth2_token_url\) is refused: .*plain http.*Give one with --token-url/,
    );
    const fixed = await setToken(['--token-url', oauth.tokenUrl]);
    assert.equal(fixed.code, 0, fixed.stderr);
    const after = await store.getAccount(ownerId, account.id);
    assert.deepEqual([after?.status, after?.oauth2?.tokenUrl], ['ok', oauth.tokenUrl]);
    const resumed = await (await start({ userId: ownerId, accountId: account.id })).result();
    assert.equal(resumed.status, 'succeeded');
  });

  it('puts no access token, refresh token or client secret in any history or log line', async () => {
    const secrets = [...oauth.issued.accessTokens, ...oauth.issued.refreshTokens, CLIENT.clientSecret];
    assert.ok(oauth.issued.accessTokens.length >= 3);
    for (const id of workflowIds) {
      let runId: string | undefined = undefined;
      const seen = new Set<string>();
      // Every run of the chain (continue-as-new).
      for (;;) {
        const history: string = JSON.stringify(await env.client.workflow.getHandle(id, runId).fetchHistory());
        for (const s of secrets) assert.ok(!history.includes(s), `a token is in the history of ${id}`);
        const next: string | undefined = /"newExecutionRunId":"([^"]+)"/.exec(history)?.[1];
        if (!next || seen.has(next)) break;
        seen.add(next);
        runId = next;
      }
    }
    assert.ok(logLines.length > 0, 'the test captured log lines');
    const logs = logLines.join('\n');
    for (const s of secrets) assert.ok(!logs.includes(s), 'a token is in a log line');
  });
});
