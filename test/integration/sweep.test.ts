// The sweep's window against the real servers (S3 emulator, DynamoDB emulator, Temporal):
// what it reads, what it leaves to the SQS bridge, where it records its mark, and that no
// object is ever skipped. Each test sweeps a prefix of its own (marks are per bucket and prefix).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WorkflowNotFoundError } from '@temporalio/client';
import { storedEmails, sweepBucket } from '../../lib/sweep/sweep';
import { type SweepInput, type SweepResult } from '../../contracts/sweep';
import { startInbound } from '../../starters/start-inbound';
import { readSweepMark, recordSweepMark } from '../../lib/storage/sweep-state';
import { rawMail } from '../../scripts/stack/demo-emails';
import { BUCKET, DOMAIN, inboundWorkflowId, type InboundStack, startInboundStack } from '../support/inbound-stack';

const run = promisify(execFile);
const ALICE = 'alice@example.com';
const OVERLAP_S = 2;
let stack: InboundStack;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mail = (subject: string) => rawMail({ from: 'x@sender.example', to: [ALICE], subject });

function sweep(input: Omit<SweepInput, 'domain'>, config = stack.config): Promise<SweepResult> {
  return sweepBucket(
    {
      s3: stack.s3,
      dynamo: stack.dynamo,
      config,
      start: (ref, facts) => startInbound(stack.env.client, config.taskQueue, ref, undefined, facts),
    },
    { domain: DOMAIN, ...input },
  );
}

function sweepCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(process.execPath, ['--import', 'tsx', 'starters/sweep-domain.ts', '--domain', DOMAIN, ...args], {
    env: { ...stack.childEnv, ...env },
    cwd: join(__dirname, '..', '..'),
    timeout: 60_000,
  });
}

async function workflowExists(key: string): Promise<boolean> {
  try {
    await stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

const result = (key: string) => stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).result();

before(async () => {
  // SWEEP_MIN_AGE keeps its default (15 minutes); a short overlap keeps the waits short.
  stack = await startInboundStack({ mailboxes: [ALICE], env: { SWEEP_OVERLAP: `${OVERLAP_S}s` } });
});
after(async () => {
  await stack?.stop();
});

test('the scheduled sweep leaves mail younger than SWEEP_MIN_AGE to the SQS bridge; an operator sweep with --min-age 0 takes it', async () => {
  const key = await stack.put(mail('Young'), 'young/1');
  const scheduled: SweepResult = await stack.env.client.workflow.execute('sweepDomain', {
    taskQueue: stack.config.taskQueue,
    workflowId: `test-sweep-young-${Date.now()}`,
    args: [{ domain: DOMAIN, prefix: 'young/' }],
  });
  assert.equal(scheduled.listed, 1);
  assert.equal(scheduled.tooYoung, 1);
  assert.equal(scheduled.read, 0, 'not even read');
  assert.equal(await workflowExists(key), false, 'the bridge, with the envelope, starts it');
  // The mark is the window's end, 15 minutes back: the young object is inside the next window.
  assert.equal(scheduled.window.source, 'fallback');
  assert.equal(scheduled.stateAdvanced, true);
  const { mark } = await readSweepMark(stack.dynamo, stack.config.tables.sweep, BUCKET, 'young/');
  assert.equal(mark?.sweptUntil, Date.parse(scheduled.window.until));
  assert.ok(Math.abs(Date.now() - 15 * 60_000 - mark!.sweptUntil) < 60_000, 'SWEEP_MIN_AGE before now');

  const out = await sweepCli(['--prefix', 'young/', '--min-age', '0']);
  assert.match(out.stdout, /1 workflows started/);
  assert.match(out.stdout, /\(state\)/, 'the operator sweep starts from the scheduled sweep’s mark');
  assert.equal((await result(key)).status, 'delivered');
});

test('a sweep reads only objects modified since the last successful sweep minus the overlap', async () => {
  const old = await stack.put(mail('Old, processed'), 'window/old');
  assert.equal((await stack.run({ key: old })).status, 'delivered');
  await sleep((OVERLAP_S + 1) * 1000); // the old object's last change is now older than any later mark minus the overlap
  const first = await sweep({ prefix: 'window/', minAge: 0 });
  assert.equal(first.window.source, 'fallback');
  assert.deepEqual([first.listed, first.read, first.unprocessed, first.started], [1, 1, 0, 0]);
  assert.equal(first.stateAdvanced, true);

  const fresh = await stack.put(mail('New'), 'window/new');
  const second = await sweep({ prefix: 'window/', minAge: 0 });
  assert.equal(second.window.source, 'state');
  assert.equal(Date.parse(second.window.from!), Date.parse(first.window.until) - OVERLAP_S * 1000);
  assert.deepEqual([second.listed, second.read, second.started], [2, 1, 1], 'the old object is listed, not read');
  assert.equal((await result(fresh)).status, 'delivered');
});

test('a failed sweep does not move the mark, and the next sweep starts what it missed', async () => {
  await sweep({ prefix: 'fail/', minAge: 0 });
  const before = (await readSweepMark(stack.dynamo, stack.config.tables.sweep, BUCKET, 'fail/')).mark!;
  const key = await stack.put(mail('Missed by a failed sweep'), 'fail/1');
  // Long enough that a mark moved by the failed sweep would leave the object before the next window.
  await sleep((OVERLAP_S + 1) * 1000);
  // Starting fails (Temporal refuses an unknown namespace): the sweep fails as a whole.
  await assert.rejects(
    sweepCli(['--prefix', 'fail/', '--min-age', '0'], { TEMPORAL_NAMESPACE: 'no-such-namespace' }),
    (err: { stderr: string }) => /^sweep: .*namespace/im.test(err.stderr),
  );
  const afterFailure = (await readSweepMark(stack.dynamo, stack.config.tables.sweep, BUCKET, 'fail/')).mark!;
  assert.equal(afterFailure.sweptUntil, before.sweptUntil, 'the mark stays');
  assert.equal(await workflowExists(key), false);

  const next = await sweep({ prefix: 'fail/', minAge: 0 });
  assert.equal(next.started, 1);
  assert.equal((await result(key)).status, 'delivered');
});

test('--all reads the whole bucket, also objects from before the mark', async () => {
  const key = await stack.put(mail('Before the mark'), 'all/1');
  await sleep((OVERLAP_S + 1) * 1000);
  // A mark past the object (as after a restore, or a trigger lost before the last sweep).
  await recordSweepMark(stack.dynamo, stack.config.tables.sweep, BUCKET, 'all/', {
    sweptUntil: Date.now(),
    sweptAt: Date.now(),
    read: 0,
    started: 0,
  });
  const windowed = await sweep({ prefix: 'all/', minAge: 0 });
  assert.deepEqual([windowed.listed, windowed.read, windowed.started], [1, 0, 0]);

  const out = await sweepCli(['--prefix', 'all/', '--min-age', '0', '--all']);
  assert.match(out.stdout, /1 objects, 1 without processed metadata, 1 workflows started/);
  assert.match(out.stdout, /read 1 modified until .* \(all\)/);
  assert.equal((await result(key)).status, 'delivered');
});

test('a missing state table: the fallback window, said so, and nothing recorded', async () => {
  const key = await stack.put(mail('No state table'), 'notable/1');
  const config = { ...stack.config, tables: { ...stack.config.tables, sweep: 'no-such-table' } };
  const r = await sweep({ prefix: 'notable/', minAge: 0 }, config);
  assert.equal(r.window.source, 'fallback');
  assert.equal(r.started, 1);
  assert.equal(r.stateAdvanced, false);
  assert.match(r.stateNote ?? '', /no-such-table does not exist/);
  assert.equal((await result(key)).status, 'delivered');
});

test('re-drive listing: concurrent HEADs in listing order, prefiltered by LastModified when asked', async () => {
  const keys = [];
  for (let i = 0; i < 40; i++) keys.push(await stack.put(mail(`Listed ${i}`), `redrive/${String(i).padStart(2, '0')}`));
  await sleep(2000);
  const since = Date.now();
  const late = await stack.put(mail('Late'), 'redrive/zz-late');
  let listed = 0;
  const all = [];
  for await (const o of storedEmails(stack.s3, BUCKET, {
    prefix: 'redrive/',
    concurrency: 8,
    onListed: (n) => (listed += n),
  }))
    all.push(o.key);
  assert.deepEqual(all, [...keys, late]);
  assert.equal(listed, 41);
  const recent = [];
  for await (const o of storedEmails(stack.s3, BUCKET, { prefix: 'redrive/', modifiedSince: since - 1000 }))
    recent.push(o.key);
  assert.deepEqual(recent, [late]);
});
