import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  confirm,
  duration,
  EXIT,
  helpText,
  listOf,
  oneOf,
  progress,
  progressFields,
  runCommand,
  serviceArgs,
  UsageError,
  AttentionError,
} from '../../lib/cli';

const ROOT = join(__dirname, '..', '..');

const spec = {
  name: 'demo:cmd',
  summary: 'Does a demo thing.',
  options: {
    domain: { type: 'string', value: '<domain>', description: 'the domain', required: true },
    status: { type: 'string', description: 'statuses, comma-separated' },
    dry: { type: 'boolean', description: 'only show' },
    tag: { type: 'string', multiple: true, description: 'a tag' },
  },
  examples: ['npm run demo:cmd -- --domain example.com'],
} as const;

async function run(
  argv: string[],
  main: Parameters<typeof runCommand<typeof spec.options>>[1] = async () => undefined,
) {
  let out = '';
  let err = '';
  const code = await runCommand(spec, main, { argv, stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

test('--help prints usage, every option, an example and the exit codes, and exits 0 without running', async () => {
  let ran = false;
  const r = await run(['--help'], async () => {
    ran = true;
  });
  assert.equal(r.code, EXIT.done);
  assert.equal(ran, false);
  for (const s of [
    'npm run demo:cmd -- [options]',
    '--domain <domain>',
    'required',
    '--dry',
    '--tag',
    'repeatable',
    'npm run demo:cmd -- --domain example.com',
    'Exit codes: 0 done',
  ])
    assert.ok(r.out.includes(s), s);
  assert.equal(helpText(spec), r.out);
});

test('unknown and missing options are usage errors (exit 2) that point to --help', async () => {
  const unknown = await run(['--domain', 'x.org', '--bogus']);
  assert.equal(unknown.code, EXIT.usage);
  assert.match(unknown.err, /Unknown option '--bogus'/);
  assert.match(unknown.err, /npm run demo:cmd -- --help/);
  const missing = await run([]);
  assert.equal(missing.code, EXIT.usage);
  assert.match(missing.err, /--domain is required/);
});

test('values reach main with defaults filled in; errors map to exit codes', async () => {
  let seen: unknown;
  const ok = await run(['--domain', 'x.org', '--tag', 'a', '--tag', 'b'], async (v) => {
    seen = v;
  });
  assert.equal(ok.code, EXIT.done);
  assert.deepEqual(seen, { domain: 'x.org', tag: ['a', 'b'], dry: false });
  assert.equal((await run(['--domain', 'x'], async () => Promise.reject(new Error('boom')))).code, EXIT.failed);
  assert.equal((await run(['--domain', 'x'], async () => Promise.reject(new UsageError('bad')))).code, EXIT.usage);
  const attention = await run(['--domain', 'x'], async () => Promise.reject(new AttentionError('needs a password')));
  assert.equal(attention.code, EXIT.attention);
  assert.match(attention.err, /needs a password/);
  const failed = await run(['--domain', 'x'], async () =>
    Promise.reject(new Error('outer', { cause: new Error('inner reason') })),
  );
  assert.match(failed.err, /demo:cmd: outer: inner reason/);
});

test('oneOf and listOf name the option, the allowed values and a close match', () => {
  assert.equal(oneOf('status', 'Blocked', ['blocked', 'delivered']), 'blocked');
  assert.throws(
    () => oneOf('status', 'blokced', ['blocked', 'delivered']),
    (e: Error) =>
      e instanceof UsageError &&
      /--status blokced is not one of blocked, delivered \(did you mean blocked\?\)/.test(e.message),
  );
  assert.deepEqual(listOf('status', 'blocked, delivered', ['blocked', 'delivered']), ['blocked', 'delivered']);
  assert.deepEqual(listOf('x', ['a,b', 'c']), ['a', 'b', 'c']);
  assert.throws(() => listOf('status', 'blocked,nope', ['blocked']), UsageError);
});

test('durations', () => {
  assert.equal(duration('every', '15m'), 900_000);
  assert.equal(duration('every', '2h'), 7_200_000);
  assert.equal(duration('every', '500ms'), 500);
  assert.throws(() => duration('every', 'soon'), UsageError);
});

test('progress without a terminal writes plain lines, the last one at stop', () => {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  let text = '';
  (stream as unknown as PassThrough).on('data', (c) => (text += c));
  const p = progress('sweep', '{started} started', { total: 10, everyMs: 60_000, stream });
  p.update(4, { started: 3 });
  p.stop();
  assert.equal(text, 'sweep: 4/10 3 started\n');
});

test('progress lines never show empty fields', () => {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  let text = '';
  (stream as unknown as PassThrough).on('data', (c) => (text += c));
  // Before any update (e.g. nothing was selected): no "re-drive: 0 |  started".
  const empty = progress('re-drive', '| {started} started', { everyMs: 60_000, stream });
  empty.stop();
  assert.equal(text, 're-drive: 0\n');
  assert.equal(progressFields('| {started} started', { started: 0 }), '| 0 started');
  // The sync's line before the folders are listed, and while a folder's name is not known yet.
  const sync = 'new messages | folder {folders} {folder} | {phase}';
  assert.equal(progressFields(sync, {}), 'new messages');
  assert.equal(progressFields(sync, { folders: '', folder: '', phase: '' }), 'new messages');
  assert.equal(
    progressFields(sync, { folders: '1/3', folder: '', phase: 'fetching' }),
    'new messages | folder 1/3 | fetching',
  );
  assert.equal(
    progressFields(sync, { folders: '2/3', folder: 'INBOX', phase: 'storing' }),
    'new messages | folder 2/3 INBOX | storing',
  );
  assert.equal(progressFields('read | {listed} listed, {selected} selected', { listed: 5 }), 'read | 5 listed');
});

test('a command with exit codes of its own has one exit-code line in its help', () => {
  const own = helpText({
    ...spec,
    exitCodes: 'Exit codes: 0 synced, 1 failed, 2 usage error, 3 waits for a password.',
  });
  assert.equal(own.match(/^Exit codes?:/gm)?.length, 1);
  assert.match(own, /^Exit codes: 0 synced/m);
  assert.equal(helpText(spec).match(/^Exit codes?:/gm)?.length, 1);
});

test('sync:now --help gives one exit-code line, with its own meanings', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'starters/sync-now.ts', '--help'],
    { cwd: ROOT, timeout: 60_000 },
  );
  assert.deepEqual(stdout.match(/^.*Exit codes?\b.*$/gm), [
    'Exit codes: 0 synced, 1 failed or some folders could not be synced (partial), 2 usage error, 3 the account waits for a new password or token.',
  ]);
});

test('a service answers --help (exit 0) and refuses other arguments (exit 2) without starting', () => {
  const service = {
    name: 'worker',
    summary: 'Runs the worker.',
    environment: ['HEALTH_PORT  the health port'],
    examples: ['npm run worker'],
  };
  let out = '';
  let err = '';
  const io = (argv: string[]) => ({ argv, stdout: (t: string) => (out += t), stderr: (t: string) => (err += t) });
  assert.equal(serviceArgs(service, io([])), undefined, 'no arguments: start');
  assert.equal(serviceArgs(service, io(['--help'])), EXIT.done);
  assert.match(out, /^npm run worker\n\nRuns the worker\.[\s\S]*HEALTH_PORT[\s\S]*Exit codes: 0 stopped cleanly/);
  assert.equal(serviceArgs(service, io(['-h'])), EXIT.done);
  assert.equal(serviceArgs(service, io(['--port', '1'])), EXIT.usage);
  assert.match(err, /worker: takes no arguments \(got --port 1\)[\s\S]*npm run worker -- --help/);
});

test('npm run worker|bridge|sync:worker|codec-server -- --help print their help and exit 0, with no environment', async () => {
  const scripts = JSON.parse((await import('node:fs')).readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  for (const name of ['worker', 'bridge', 'sync:worker', 'codec-server']) {
    const file = /\S+\.ts/.exec(scripts.scripts[name])![0];
    const started = Date.now();
    // Nothing configured: a service that started would fail on the missing keys, not print help.
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file, '--help'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      timeout: 30_000,
    });
    assert.match(stdout, new RegExp(`^npm run ${name}\n`), name);
    assert.match(stdout, /Exit codes: 0 stopped cleanly/, name);
    assert.equal(stderr, '', `${name}: nothing logged`);
    assert.ok(Date.now() - started < 30_000);
  }
});

test('confirm: --yes goes ahead; no terminal refuses (usage error, nothing done); a terminal asks', async () => {
  await confirm('redrive', 'Re-drive every email of example-com-emails', true, { interactive: false });
  await assert.rejects(
    confirm('redrive', 'Re-drive every email of example-com-emails', false, { interactive: false }),
    (e: Error) =>
      e instanceof UsageError &&
      /Re-drive every email of example-com-emails: not confirmed, and stdin is not a terminal[\s\S]*Nothing was done\. Pass --yes/.test(
        e.message,
      ),
  );
  let asked = '';
  await confirm('account:remove', 'Remove account 1', false, {
    interactive: true,
    ask: async (q) => {
      asked = q;
      return 'yes\n';
    },
  });
  assert.match(asked, /^account:remove: Remove account 1\. Type yes to go ahead: $/);
  await assert.rejects(
    confirm('account:remove', 'Remove account 1', false, { interactive: true, ask: async () => 'no' }),
    /not confirmed \(answer "no"\)\. Nothing was done/,
  );
});
