import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import {
  duration,
  EXIT,
  helpText,
  listOf,
  oneOf,
  progress,
  runCommand,
  UsageError,
  AttentionError,
} from '../../lib/cli';

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
