// OAuth2 accounts end to end, for real: a local OAuth2 server (scripts/stack/oauth2.ts, on
// oauth2-mock-server), Dovecot validating every OAUTHBEARER/XOAUTH2 login against it, the
// sync worker and PostgreSQL. First sync; access tokens that expire during a long sync and are
// refreshed; revocation (invalid_grant) leading to the waiting state, visible at once (account
// status, SyncStatus search attribute, metric); a new refresh token given with the
// account:token starter resuming the waiting sync. No token in any history or log line.
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
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
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
      config: { batchSize: 2, batchesPerActivity: 3, batchPauseMs: 600, oauth2RefreshMarginMs: 500 },
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
