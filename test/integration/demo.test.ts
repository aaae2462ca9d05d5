// README command 1 keeps working: the demo runs the six cases on the local stack and
// reports the expected outcome for each, then syncs two IMAP accounts (password and OAuth2)
// from Dovecot into PostgreSQL and prints the per-folder counts and the Web UI link, and
// leaves an env file for the operator's shell (test/integration/readme.test.ts runs the
// README's commands in a shell that sourced it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../scripts/stack/ports';
import { demoDatabase } from '../support/demo-database';

test('the demo processes every demo email, syncs the demo IMAP accounts, and prints a summary with the Web UI address', async (t) => {
  const ports = Object.fromEntries(
    await Promise.all(
      [
        'DEMO_TEMPORAL_PORT',
        'DEMO_TEMPORAL_UI_PORT',
        'DEMO_S3_PORT',
        'DEMO_DYNAMODB_PORT',
        'DEMO_SMTP_PORT',
        'DEMO_INTERNAL_SMTP_PORT',
        'DEMO_SES_PORT',
        'DEMO_SQS_PORT',
        'HEALTH_PORT',
        'METRICS_PORT',
      ].map(async (k) => [k, String(await freePort())]),
    ),
  );
  const database = demoDatabase('demo');
  t.after(database.drop);
  const state = mkdtempSync(join(tmpdir(), 'mailroom-demo-'));
  chmodSync(state, 0o755); // Dovecot's mail processes traverse it (the demo's test IMAP account)
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--exit'], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, ...ports, DEMO_STATE_DIR: state, DEMO_DATABASE_URL: database.url, LOG_LEVEL: 'warn' },
    timeout: 240_000,
  });
  const line = (label: string) => stdout.split('\n').find((l) => l.trimStart().startsWith(label)) ?? '';
  assert.match(line('plain'), /delivered\s+alice@example\.com=delivered/);
  assert.match(line('multi-recipient'), /partial .*ghost@example\.com=invalid\(550\)/);
  assert.match(line('blocked sender'), /blocked .*tagged and kept in S3 for a re-drive/);
  assert.match(line('out-of-office'), /auto-reply sent to client@sender\.example/);
  assert.match(
    line('forwarded'),
    /forwarded to frank@example\.com \(internal\).*forwarded to erin@home\.example \(outbound\)/,
  );
  assert.match(line('SES bounce'), /bounce matched and rewritten: nobody@far\.example/);
  assert.match(
    stdout,
    /Outbound mail sent through SES: 2 message\(s\)/,
    'the reply and the outside forward, through the local SES v2 server',
  );
  assert.match(stdout, new RegExp(`Temporal Web UI: http://127\\.0\\.0\\.1:${ports.DEMO_TEMPORAL_UI_PORT}/`));
  // Account sync: per-folder counts read back from PostgreSQL equal what the demo put in Dovecot.
  assert.match(
    line('maria@mail.example (password)'),
    /succeeded: INBOX 13, Archive 7, Sent 6, Newsletters 4 \(30 messages in PostgreSQL\)/,
  );
  assert.match(
    line('olaf@mail.example (OAuth2)'),
    /succeeded: INBOX 6, Archive 3, Sent 2, Newsletters 1 \(12 messages in PostgreSQL\)/,
  );
  const links = stdout.match(
    new RegExp(
      `sync run in the Web UI: http://127\\.0\\.0\\.1:${ports.DEMO_TEMPORAL_UI_PORT}/namespaces/default/workflows/sync-account-[0-9a-f-]+[^/]*/[0-9a-f-]+/history`,
      'g',
    ),
  );
  assert.equal(links?.length, 2, stdout);
  assert.match(stdout, /Schedules sync both accounts every 5 minutes/);
  // Mail within seconds (IDLE watchers), search over it, and one message sent from the password account.
  assert.match(stdout, /Mail within seconds: 2 IMAP IDLE watchers started/);
  assert.match(stdout, /A message appended to maria@mail\.example's INBOX was in PostgreSQL \d+\.\d s later/);
  assert.match(
    stdout,
    /Search "lighthouse[0-9a-f]+": 1 message\(s\), "Arrived while watched: lighthouse[0-9a-f]+" in INBOX/,
  );
  assert.match(
    stdout,
    /Sent from maria@mail\.example to friend@remote\.example: sent \(1 accepted\), Sent copy in Sent/,
  );
  assert.match(stdout, /After a sync, PostgreSQL has it in: Sent\./);

  // The real state directory, and the env file with the line to source it.
  assert.match(stdout, new RegExp(`State: ${state}$`, 'm'));
  assert.match(stdout, new RegExp(`key in ${state}/codec-keys`));
  assert.match(stdout, new RegExp(`^  source ${state}/env$`, 'm'));
  const envFile = readFileSync(join(state, 'env'), 'utf8');
  assert.equal(statSync(join(state, 'env')).mode & 0o777, 0o600, 'keys and token: owner only');
  const exported = Object.fromEntries(
    [...envFile.matchAll(/^export ([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1], m[2].replace(/^'|'$/g, '')]),
  );
  for (const name of [
    'TEMPORAL_ADDRESS',
    'TEMPORAL_NAMESPACE',
    'TASK_QUEUE',
    'AWS_ENDPOINT_URL_S3',
    'AWS_ENDPOINT_URL_DYNAMODB',
    'AWS_ENDPOINT_URL_SQS',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'SMTP_PORT',
    'INTERNAL_SMTP_PORT',
    'MAILROOM_CODEC_KEYS',
    'CODEC_SERVER_TOKEN',
    'MAILROOM_CODEC_ENDPOINT',
    'DATABASE_URL',
    'MAILROOM_SECRET_KEYS',
    'DEMO_IMAP_HOST',
    'DEMO_IMAP_PORT',
    'DEMO_IMAP_USER',
    'DEMO_IMAP_PASSWORD',
  ]) {
    assert.ok(exported[name], `${name} in the env file`);
  }
  assert.equal(exported.TEMPORAL_ADDRESS, `127.0.0.1:${ports.DEMO_TEMPORAL_PORT}`);
  assert.equal(exported.SMTP_PORT, ports.DEMO_SMTP_PORT);
  assert.equal(exported.MAILROOM_CODEC_KEYS, readFileSync(join(state, 'codec-keys'), 'utf8').trim());
  rmSync(state, { recursive: true, force: true });
});
