// The account commands run as an operator runs them (child processes, npm script names in
// their help and hints), against Dovecot, the local OAuth2 server, PostgreSQL and Temporal with
// a sync worker: add (password and OAuth2, the --no-tls hint), list, sync now with skipped
// messages and exit codes, enable/disable/interval, remove.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createStore, type Store } from '../../lib/sync-store';
import { generateKeyEntry } from '../../lib/sync-store/crypto';
import { startLocalOAuth2Server, type LocalOAuth2Server } from '../../scripts/stack/oauth2';
import { syncScheduleId } from '../../contracts/sync';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  fillMailbox,
  imapSession,
  quietTemporalLogs,
  startSyncTestWorker,
  startTestDovecot,
  type TestDatabase,
  type TestDovecot,
} from './sync-fixtures';

const ROOT = join(__dirname, '..', '..');
const keyEntry = generateKeyEntry('k1');
const taskQueue = `sync-starters-${randomBytes(4).toString('hex')}`;
const PAT = { user: 'pat@example.test', password: 'pat-imap-secret' };
const OLI = { user: 'oli@example.test', password: `unused-${randomBytes(4).toString('hex')}` };
const CLIENT = { clientId: 'starters-client', clientSecret: `secret-${randomBytes(6).toString('hex')}` };
const OWNER = 'owner@example.com';
const SCRIPTS = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('account starters', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dovecot: TestDovecot;
  let oauth: LocalOAuth2Server;
  let store: Store;
  let worker: { stop(): Promise<void> };
  let childEnv: NodeJS.ProcessEnv;
  let patAccount: string;
  let oliAccount: string;

  before(async () => {
    quietTemporalLogs();
    oauth = await startLocalOAuth2Server({ clients: [CLIENT] });
    [env, db, dovecot] = await Promise.all([
      startTestTemporal(),
      createTestDatabase(),
      startTestDovecot([PAT, OLI], { oauth2: { introspectionUrl: oauth.userinfoUrl } }),
    ]);
    store = createStore(db.pool);
    worker = await startSyncTestWorker(env, { db, keyEntry, taskQueue, config: { maxMessageBytes: 64 * 1024 } });
    childEnv = {
      ...process.env,
      DATABASE_URL: db.url,
      MAILROOM_SECRET_KEYS: keyEntry,
      SYNC_TASK_QUEUE: taskQueue,
      TEMPORAL_ADDRESS: env.address,
      MAILROOM_CODEC_KEYS: 'none',
      LOG_LEVEL: 'warn',
    };
  });

  after(async () => {
    await worker?.stop();
    await env?.teardown();
    await dovecot?.cleanup();
    await oauth?.stop();
    await db?.drop();
  });

  /** Runs the npm script's file the way `npm run <script> -- args` does (without npm's banner). */
  function npmRun(script: string, args: string[], input?: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
    const command = SCRIPTS[script];
    assert.ok(command, `package.json has an npm script ${script}`);
    const [, ...argv] = command.split(' ');
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [...argv, ...args],
        { cwd: ROOT, env: { ...childEnv, ...extraEnv }, timeout: 90_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end(input ?? '');
    });
  }

  it('every account command has --help naming its npm script, and refuses unknown options with exit 2', async () => {
    for (const script of [
      'account:add',
      'account:list',
      'sync:now',
      'account:password',
      'account:token',
      'account:set',
      'account:remove',
      'sync:reconcile',
    ]) {
      const help = await npmRun(script, ['--help']);
      assert.equal(help.code, 0, `${script} --help: ${help.stderr}`);
      assert.match(help.stdout, new RegExp(`npm run ${script} -- \\[options\\]`));
      // One exit-code line: the generic one, or the command's own (sync:now's "0 synced").
      assert.equal(help.stdout.match(/^Exit codes:/gm)?.length, 1, `${script}: one exit-code line`);
      assert.match(
        help.stdout,
        script === 'sync:now'
          ? /^Exit codes: 0 synced, 1 failed or some folders could not be synced \(partial\), 2 usage error, 3 the account waits/m
          : /^Exit codes: 0 done, 1 failed, 2 usage error, 3 needs attention/m,
      );
      const bad = await npmRun(script, ['--nonsense']);
      assert.equal(bad.code, 2, `${script} --nonsense`);
      assert.match(bad.stderr, new RegExp(`npm run ${script} -- --help`));
    }
    const noClient = await npmRun('account:add', ['--user', OWNER, '--username', 'x@gmail.com', '--oauth2', 'google']);
    assert.equal(noClient.code, 2);
    assert.match(noClient.stderr, /--client-id is required with --oauth2/);
    const typo = await npmRun('account:add', ['--user', OWNER, '--username', 'x@gmail.com', '--oauth2', 'gogle']);
    assert.match(typo.stderr, /did you mean google/);
    // A refresh token never goes to a plain-http token endpoint (loopback excepted, for the local stack).
    const plain = await npmRun('account:add', [
      ...['--user', OWNER, '--host', 'imap.example.com', '--username', 'x@example.com', '--oauth2', 'custom'],
      ...['--client-id', 'c', '--scopes', 'imap', '--token-url', 'http://oauth.example.com/token'],
    ]);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /--token-url: http:\/\/oauth\.example\.com\/token is plain http.*https:\/\//);
    const plainToken = await npmRun('account:token', [
      ...['--user', OWNER, '--account', '00000000-0000-4000-8000-000000000000'],
      ...['--token-url', 'http://oauth.example.com/token'],
    ]);
    assert.equal(plainToken.code, 2);
    assert.match(plainToken.stderr, /--token-url: .*plain http/);
  });

  it('account:add checks the login: TLS against a plaintext port says --no-tls; then adds the account and its Schedule', async () => {
    const tls = await npmRun(
      'account:add',
      ['--user', OWNER, '--host', '127.0.0.1', '--port', String(dovecot.imapPort), '--username', PAT.user],
      `${PAT.password}\n`,
    );
    assert.equal(tls.code, 1);
    assert.match(tls.stderr, /does not speak TLS.*add --no-tls/);
    const wrong = await npmRun(
      'account:add',
      ['--user', OWNER, '--host', '127.0.0.1', '--port', String(dovecot.imapPort), '--no-tls', '--username', PAT.user],
      'wrong\n',
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /AUTHENTICATIONFAILED.*Nothing was stored/);
    // While the login is checked the operator is told what it waits for.
    assert.match(
      wrong.stderr,
      new RegExp(
        `^Checking the login of ${PAT.user} on 127\\.0\\.0\\.1:${dovecot.imapPort} \\(no TLS\\) \\.\\.\\.$`,
        'm',
      ),
    );

    const ok = await npmRun(
      'account:add',
      [
        '--user',
        OWNER,
        '--host',
        '127.0.0.1',
        '--port',
        String(dovecot.imapPort),
        '--no-tls',
        '--username',
        PAT.user,
        '--interval-minutes',
        '60',
      ],
      `${PAT.password}\n`,
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stderr,
      /^Checking the login of [\s\S]*^Login accepted by 127\.0\.0\.1:\d+ \(no TLS\) \(\d+\.\d s\)$/m,
    );
    patAccount = /Added account ([0-9a-f-]{36})/.exec(ok.stdout)?.[1] ?? '';
    assert.match(ok.stdout, new RegExp(`First sync now: npm run sync:now -- --user ${OWNER} --account ${patAccount}`));
    const schedule = await env.client.schedule.getHandle(syncScheduleId(patAccount)).describe();
    assert.equal(schedule.spec.intervals?.[0].every, 3_600_000);
  });

  it('account:add --oauth2 stores the (rotated) refresh token and client secret encrypted, after a real token refresh and login', async () => {
    const refreshToken = oauth.grant(OLI.user, CLIENT.clientId);
    const args = [
      '--user',
      OWNER,
      '--host',
      '127.0.0.1',
      '--port',
      String(dovecot.imapPort),
      '--no-tls',
      '--username',
      OLI.user,
      '--oauth2',
      'custom',
      '--token-url',
      oauth.tokenUrl,
      '--client-id',
      CLIENT.clientId,
      '--scopes',
      'imap',
    ];
    const badSecret = await npmRun('account:add', args, `${refreshToken}\n`, {
      MAILROOM_OAUTH2_CLIENT_SECRET: 'wrong',
    });
    assert.equal(badSecret.code, 1);
    assert.match(badSecret.stderr, /invalid_client.*Nothing was stored/);
    const ok = await npmRun('account:add', args, `${refreshToken}\n`, {
      MAILROOM_OAUTH2_CLIENT_SECRET: CLIENT.clientSecret,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /OAuth2 custom/);
    oliAccount = /Added account ([0-9a-f-]{36})/.exec(ok.stdout)?.[1] ?? '';
    const { rows } = await db.pool.query('SELECT * FROM mail_accounts WHERE id = $1', [oliAccount]);
    const row = JSON.stringify(rows[0]);
    for (const secret of [
      refreshToken,
      CLIENT.clientSecret,
      ...oauth.issued.refreshTokens,
      ...oauth.issued.accessTokens,
    ])
      assert.ok(!row.includes(secret), 'secret stored in plaintext');
    assert.equal(rows[0].auth_method, 'oauth2');
    assert.ok(rows[0].oauth2_access_token_expires_at, 'the verified access token is kept for the first sync');
  });

  it('sync:now syncs, prints the skipped messages, and account:list shows the counts', async () => {
    const imap = await imapSession(dovecot, PAT.user, PAT.password);
    await fillMailbox(imap, { INBOX: 3 });
    const big = Buffer.concat([
      Buffer.from('From: a@example.org\r\nSubject: big\r\nMessage-ID: <big@test>\r\n\r\n'),
      Buffer.alloc(100 * 1024, 'B'),
    ]);
    await imap.append('INBOX', big);
    await imap.logout();
    const synced = await npmRun('sync:now', ['--user', OWNER, '--account', patAccount]);
    assert.equal(synced.code, 0, synced.stderr);
    assert.match(
      synced.stdout,
      /Synced pat@example\.test@127\.0\.0\.1: \d+ folders, 4 new, 0 flag changes, 0 deleted, 1 skipped/,
    );
    assert.match(synced.stdout, /skipped INBOX UID 4 \(stored without body\): .*larger than SYNC_MAX_MESSAGE_BYTES/);
    // Not on a terminal: progress comes as plain lines on stderr, never a bar's escape codes.
    assert.ok(!synced.stderr.includes('\u001b['), 'no escape codes when stderr is not a terminal');

    const oli = await npmRun('sync:now', ['--user', OWNER, '--account', oliAccount, '--json']);
    assert.equal(oli.code, 0, oli.stderr);
    assert.equal(JSON.parse(oli.stdout).status, 'succeeded');

    const listed = await npmRun('account:list', ['--user', OWNER, '--skipped']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${patAccount}.*password`));
    assert.match(listed.stdout, /enabled, every 60 min, 4 messages, 1 skipped; last sync: succeeded .* skipped 1/);
    assert.match(listed.stdout, /oversize INBOX UID 4 \(\d+ bytes\)/);
    const json = await npmRun('account:list', ['--json']);
    const accounts = JSON.parse(json.stdout) as { id: string; skippedCount: number; authMethod: string }[];
    assert.deepEqual(
      accounts.map((a) => [a.id, a.authMethod, a.skippedCount]).sort(),
      [
        [patAccount, 'password', 1],
        [oliAccount, 'oauth2', 0],
      ].sort(),
    );
  });

  it('account:set disables, enables and changes the interval, and the Schedule follows', async () => {
    const describeSchedule = () => env.client.schedule.getHandle(syncScheduleId(patAccount)).describe();
    const off = await npmRun('account:set', ['--user', OWNER, '--account', patAccount, '--disable']);
    assert.equal(off.code, 0, off.stderr);
    assert.equal((await describeSchedule()).state.paused, true);
    const refused = await npmRun('sync:now', ['--user', OWNER, '--account', patAccount]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /disabled; enable it first: npm run account:set -- .* --enable/);
    const on = await npmRun('account:set', [
      '--user',
      OWNER,
      '--account',
      patAccount,
      '--enable',
      '--interval-minutes',
      '5',
    ]);
    assert.equal(on.code, 0, on.stderr);
    const d = await describeSchedule();
    assert.deepEqual([d.state.paused, d.spec.intervals?.[0].every], [false, 300_000]);
    assert.equal(
      (await npmRun('account:set', ['--user', OWNER, '--account', patAccount])).code,
      2,
      'nothing to change is a usage error',
    );
    assert.equal((await npmRun('account:set', ['--user', OWNER, '--account', 'not-an-id', '--enable'])).code, 2);
  });

  it('account:set turns new-message events on with a webhook of its own, and back to the default', async () => {
    const user = (await store.findUserByEmail(OWNER))!;
    const set = (...args: string[]) => npmRun('account:set', ['--user', OWNER, '--account', patAccount, ...args]);
    const on = await set('--events', 'on', '--webhook-url', 'https://crm.example.com/hooks/mail?token=t0ps3cret');
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /new-message events on, webhook https:\/\/crm\.example\.com\/hooks\/mail\n/);
    assert.ok(!on.stdout.includes('t0ps3cret'), 'the URL is printed without its query');
    assert.deepEqual(await store.getEventSettings(user.id, patAccount), {
      eventsEnabled: true,
      webhookUrl: 'https://crm.example.com/hooks/mail?token=t0ps3cret',
    });
    assert.equal((await set('--events', 'maybe')).code, 2);
    assert.equal((await set('--webhook-url', 'ftp://crm.example.com/')).code, 2);
    const back = await set('--events', 'default', '--webhook-url', 'default');
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(await store.getEventSettings(user.id, patAccount), { eventsEnabled: null, webhookUrl: null });
  });

  it('sync:now exits 3 with the fix when the password is refused; account:password fixes it', async () => {
    const user = (await store.findUserByEmail(OWNER))!;
    // A password the server refuses (changed on the server side).
    await dovecot.addUser({ user: PAT.user, password: 'changed-on-the-server' });
    const waiting = await npmRun('sync:now', ['--user', OWNER, '--account', patAccount]);
    assert.equal(waiting.code, 3, waiting.stderr);
    assert.match(
      waiting.stderr,
      /needs attention: .*rejected the login.*\n.*npm run account:password -- --user owner@example\.com --account/,
    );
    assert.equal((await store.getAccount(user.id, patAccount))?.status, 'needs_attention');
    const fixed = await npmRun(
      'account:password',
      ['--user', OWNER, '--account', patAccount],
      'changed-on-the-server\n',
    );
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.match(fixed.stdout, /no longer needs attention/);
    assert.match(fixed.stdout, /Signalled running sync/);
    assert.equal((await store.getAccount(user.id, patAccount))?.status, 'ok');
    const wrongKind = await npmRun('account:password', ['--user', OWNER, '--account', oliAccount], 'x\n');
    assert.match(wrongKind.stderr, /logs in with OAuth2: give it a new refresh token with npm run account:token/);
  });

  it('account:list names the database it read when it finds nothing', async () => {
    const nobody = await npmRun('account:list', ['--user', 'nobody@example.com']);
    assert.equal(nobody.code, 1);
    const name = new URL(db.url).pathname.slice(1);
    assert.match(
      nobody.stderr,
      new RegExp(`No mailroom user nobody@example\\.com in database ${name} on [\\w.]+:\\d+ \\(DATABASE_URL\\)`),
    );
    assert.doesNotMatch(nobody.stderr, /postgres:\/\//, 'no URL, so no password');
  });

  it('account:remove asks first: no terminal and no --yes refuses, --dry-run removes nothing, --yes removes', async () => {
    const user = (await store.findUserByEmail(OWNER))!;
    const refused = await npmRun('account:remove', ['--user', OWNER, '--account', oliAccount]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /not confirmed, and stdin is not a terminal to ask on\. Nothing was done\. Pass --yes/,
    );
    assert.ok(await store.getAccount(user.id, oliAccount), 'still there');
    const dry = await npmRun('account:remove', ['--user', OWNER, '--account', oliAccount, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`^Would remove account ${oliAccount} .* from database `, 'm'));
    assert.match(dry.stdout, /^ {2}\d+ stored messages/m);
    assert.match(dry.stdout, /Nothing was removed \(--dry-run\)/);
    assert.ok(await store.getAccount(user.id, oliAccount), 'still there after --dry-run');
    await env.client.schedule.getHandle(syncScheduleId(oliAccount)).describe();

    const removed = await npmRun('account:remove', ['--user', OWNER, '--account', oliAccount, '--yes']);
    assert.equal(removed.code, 0, removed.stderr);
    await assert.rejects(env.client.schedule.getHandle(syncScheduleId(oliAccount)).describe(), /not found/i);
    assert.equal(await store.getAccount(user.id, oliAccount), null);
    const again = await npmRun('account:remove', ['--user', OWNER, '--account', oliAccount, '--yes']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /has no account .* in database \w+ on .*\(DATABASE_URL\); .*npm run account:list/);
  });
});
