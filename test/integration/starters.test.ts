// The operator scripts, run as an operator runs them (child processes), against the
// real servers of the inbound stack.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { DEFAULT_TABLES } from '../../scripts/stack/dynamodb';
import { rawMail } from '../../scripts/stack/demo-emails';
import { emailsProcessed } from '../../lib/observability/metrics';
import { startInbound } from '../../starters/start-inbound';
import {
  BUCKET,
  DOMAIN,
  firstWorkflowTaskFailure,
  inboundWorkflowId,
  type InboundStack,
  startInboundStack,
} from '../support/inbound-stack';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const ALICE = 'alice@example.com';
const CAROL = 'carol@example.com';
let stack: InboundStack;

function starter(script: string, args: string[], input?: string, env: NodeJS.ProcessEnv = stack.childEnv) {
  const child = run(process.execPath, ['--import', 'tsx', `starters/${script}.ts`, ...args], {
    env,
    cwd: ROOT,
    timeout: 60_000,
  });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  return child;
}

/** Runs a starter (or worker) to its end: exit code and output, whatever the code. */
async function outcome(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = stack.childEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', script.includes('/') ? script : `starters/${script}.ts`, ...args],
      { env, cwd: ROOT, timeout: 60_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const withoutKeys = () =>
  Object.fromEntries(Object.entries(stack.childEnv).filter(([k]) => k !== 'MAILROOM_CODEC_KEYS'));
const counter = async (status: string) =>
  (await emailsProcessed.get()).values.find((v) => v.labels.status === status && v.labels.domain === 'example.com')
    ?.value ?? 0;

before(async () => {
  // SWEEP_MIN_AGE=0: the sweeps here look at mail just stored (test/integration/sweep.test.ts covers the grace).
  stack = await startInboundStack({
    mailboxes: [ALICE, CAROL],
    env: { BLOCKED_MAIL_ACTION: 'keep', SWEEP_MIN_AGE: '0' },
  });
});
after(async () => {
  await stack?.stop();
});

test('process-object takes an SNS-wrapped SES notification (Bcc recipient included) and is idempotent', async () => {
  const key = await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Via notification' }));
  const ses = {
    notificationType: 'Received',
    mail: { messageId: key, destination: [ALICE] },
    receipt: { recipients: [ALICE, CAROL], action: { type: 'S3', bucketName: BUCKET, objectKey: key } },
  };
  const file = join(mkdtempSync(join(tmpdir(), 'notif-')), 'n.json');
  writeFileSync(file, JSON.stringify({ Type: 'Notification', Message: JSON.stringify(ses) }));
  const first = await starter('process-object', ['--notification', file, '--wait']);
  assert.match(first.stderr, /started inbound\//);
  assert.equal(
    (JSON.parse(first.stdout) as { status: string }).status,
    'delivered',
    'with --wait stdout is the JSON result alone',
  );
  assert.equal((await stack.mail.messagesFor(CAROL)).filter((m) => m.includes('Via notification')).length, 1);
  const second = await starter('process-object', ['--bucket', BUCKET, '--key', key]);
  assert.match(second.stdout, /already started earlier.*no-op/);
});

test('process-object explains a bad notification', async () => {
  await assert.rejects(
    starter('process-object', ['--notification', '-'], '{"notificationType":"Bounce"}'),
    (err: { stderr: string }) => /expected "Received"/.test(err.stderr),
  );
});

test('sweep-domain starts workflows only for untagged objects', async () => {
  const done = await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Already done' }));
  await stack.run({ key: done });
  const fresh = [
    await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Swept 1' })),
    await stack.put(rawMail({ from: 'x@sender.example', to: [CAROL], subject: 'Swept 2' })),
  ];
  // At info level the sweep logs a JSON line ("sweep done"): on stderr, beside the progress,
  // never on stdout beside the summary.
  const out = await starter('sweep-domain', ['--domain', 'example.com'], undefined, {
    ...stack.childEnv,
    LOG_LEVEL: 'info',
  });
  assert.match(out.stdout, /2 workflows started/);
  assert.match(out.stderr, /"msg":"sweep done"/);
  assert.doesNotMatch(out.stdout, /"level":/, `logs on stdout: ${out.stdout}`);
  for (const key of fresh) {
    const result = await stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).result();
    assert.equal(result.status, 'delivered');
  }
  const again = await starter('sweep-domain', ['--domain', 'example.com']);
  assert.match(again.stdout, /0 without processed metadata, 0 workflows started/);
});

test('schedule-sweep creates, then updates, a schedule that runs the sweep workflow', async () => {
  const created = await starter('schedule-sweep', ['--domain', 'example.com', '--every', '60m']);
  assert.match(created.stdout, /created schedule sweep\/example\.com/);
  const handle = stack.env.client.schedule.getHandle('sweep/example.com');
  let desc = await handle.describe();
  assert.equal(desc.spec.intervals?.[0].every, 3_600_000);
  const updated = await starter('schedule-sweep', ['--domain', 'example.com', '--every', '30m', '--paused']);
  assert.match(updated.stdout, /updated schedule/);
  desc = await handle.describe();
  assert.equal(desc.spec.intervals?.[0].every, 1_800_000);
  assert.equal(desc.state.paused, true);

  const key = await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Found by schedule' }));
  await handle.trigger();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && (await stack.metadata(key))?.processed !== 'true')
    await new Promise((r) => setTimeout(r, 250));
  assert.equal((await stack.metadata(key))?.status, 'delivered');
  await handle.delete();
});

test('redrive: blocked mail re-processed after a blocklist fix, with new workflow ids; dry run touches nothing', async () => {
  await stack.putItem(DEFAULT_TABLES.blocked, {
    email_address: ALICE,
    blocked_patterns: ['*@wrongly-blocked.example'],
  });
  const key = await stack.put(
    rawMail({ from: 'partner@wrongly-blocked.example', to: [ALICE], subject: 'Important, was blocked' }),
  );
  assert.equal((await stack.run({ key })).status, 'blocked');
  assert.equal((await stack.metadata(key))?.status, 'blocked', 'kept in place with BLOCKED_MAIL_ACTION=keep');

  await stack.dynamo.send(
    new DeleteItemCommand({ TableName: DEFAULT_TABLES.blocked, Key: { email_address: { S: ALICE } } }),
  );
  const dry = await starter('redrive', [
    '--domain',
    'example.com',
    '--status',
    'blocked',
    '--since',
    '1h',
    '--dry-run',
  ]);
  assert.match(dry.stdout, new RegExp(`would re-drive s3://${BUCKET}/${key}`));
  assert.equal((await stack.metadata(key))?.status, 'blocked', 'a dry run changes nothing');

  const out = await starter('redrive', [
    '--domain',
    'example.com',
    '--status',
    'blocked',
    '--since',
    '1h',
    '--batch',
    'fix1',
    '--wait',
  ]);
  assert.match(out.stdout, /batch fix1: 1 workflows started/);
  assert.match(
    out.stdout,
    new RegExp(`^started ${inboundWorkflowId(BUCKET, key)}/redrive-fix1$`, 'm'),
    'the id of each started workflow',
  );
  assert.match(
    out.stdout,
    new RegExp(`^${inboundWorkflowId(BUCKET, key)}/redrive-fix1: delivered$`, 'm'),
    'with --wait, each outcome',
  );
  assert.match(out.stdout, /outcomes: 1 delivered/);
  const redriven = await stack.env.client.workflow.getHandle(`${inboundWorkflowId(BUCKET, key)}/redrive-fix1`).result();
  assert.equal(redriven.status, 'delivered');
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Important, was blocked')).length, 1);
  const original = await stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).result();
  assert.equal(original.status, 'blocked', 'the earlier run stays inspectable');
  // The same batch again: the object re-driven above is a no-op (its id exists).
  const again = await starter('redrive', [
    '--domain',
    'example.com',
    '--status',
    'delivered',
    '--since',
    '1h',
    '--batch',
    'fix1',
  ]);
  assert.match(again.stdout, /, 1 already started in this batch/);
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Important, was blocked')).length, 1);

  // Another batch re-processes it, but the delivery log (per object and recipient) knows
  // Alice has it: no second copy. Only --redeliver delivers again, on purpose.
  const other = await starter('redrive', [
    '--domain',
    'example.com',
    '--status',
    'delivered',
    '--since',
    '1h',
    '--batch',
    'fix2',
  ]);
  assert.match(other.stdout, /batch fix2: \d+ workflows started/);
  const second = await stack.env.client.workflow.getHandle(`${inboundWorkflowId(BUCKET, key)}/redrive-fix2`).result();
  assert.deepEqual(second.recipients, [{ recipient: ALICE, outcome: 'delivered', detail: 'delivered earlier' }]);
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Important, was blocked')).length, 1);
  await starter('redrive', [
    '--domain',
    'example.com',
    '--status',
    'delivered',
    '--since',
    '1h',
    '--batch',
    'fix3',
    '--redeliver',
  ]);
  const third = await stack.env.client.workflow.getHandle(`${inboundWorkflowId(BUCKET, key)}/redrive-fix3`).result();
  assert.deepEqual(third.recipients, [{ recipient: ALICE, outcome: 'delivered' }]);
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Important, was blocked')).length, 2);
});

test('redrive --json: one JSON document with ids and outcomes; times and statuses are checked before anything runs', async () => {
  await stack.putItem(DEFAULT_TABLES.blocked, { email_address: CAROL, blocked_patterns: ['*@json.example'] });
  const key = await stack.put(
    rawMail({ from: 'x@json.example', to: [CAROL], subject: 'Blocked for the JSON re-drive' }),
  );
  assert.equal((await stack.run({ key })).status, 'blocked');
  const out = await starter('redrive', [
    '--domain',
    'example.com',
    '--status',
    'blocked',
    '--since',
    'today',
    '--until',
    'now',
    '--prefix',
    key,
    '--batch',
    'json1',
    '--wait',
    '--json',
  ]);
  const doc = JSON.parse(out.stdout) as {
    batch: string;
    runs: { key: string; workflowId: string; started: boolean; status: string }[];
  };
  assert.deepEqual(
    doc.runs,
    [{ key, workflowId: `${inboundWorkflowId(BUCKET, key)}/redrive-json1`, started: true, status: 'blocked' }],
    'still blocked: the blocklist entry is there',
  );

  const typo = await outcome('redrive', ['--domain', 'example.com', '--status', 'blokced']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /--status blokced is not one of delivered, partial, blocked.*\(did you mean blocked\?\)/);
  for (const [args, message] of [
    [['--since', 'Nov 22'], /--since Nov 22 is not a time: use a date \(2026-11-22 = 00:00 UTC that day\)/],
    [['--since', 'today', '--until', 'yesterday'], /--since today is not before --until yesterday/],
    [['--batch', 'a/b'], /--batch a\/b: use 1-64 letters/],
  ] as const) {
    const r = await outcome('redrive', ['--domain', 'example.com', ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
  }
  const domain = await outcome('redrive', ['--domain', 'nope.example']);
  assert.equal(domain.code, 2);
  assert.match(domain.stderr, /--domain nope\.example is not one of example\.com, example\.org/);
});

test('every converted starter answers --help with usage, options and an example (exit 0), and rejects unknown options with exit 2', async () => {
  const starters = [
    'process-object',
    'sweep-domain',
    'schedule-sweep',
    'redrive',
    'deployment-status',
    'deployment-ramp',
    'deployment-promote',
    'deployment-rollback',
  ];
  for (const script of starters) {
    const help = await outcome(script, ['--help']);
    assert.equal(help.code, 0, `${script} --help: ${help.stderr}`);
    assert.match(help.stdout, /^npm run [a-z:]+ -- \[options\]/, script);
    assert.match(help.stdout, /Options:[\s\S]*--help[\s\S]*Examples?:\n {2}npm run /, script);
    const bad = await outcome(script, ['--bogus']);
    assert.equal(bad.code, 2, script);
    assert.match(bad.stderr, /Unknown option '--bogus'[\s\S]*-- --help/, script);
  }
  assert.match(
    (await outcome('redrive', ['--help'])).stdout,
    /--include-unprocessed[\s\S]*--batch <name>[\s\S]*--until today ends at 00:00 UTC today/,
  );
  const every = await outcome('schedule-sweep', ['--domain', 'example.com', '--every', 'soon']);
  assert.equal(every.code, 2);
  assert.match(every.stderr, /--every soon is not a duration/);
  const percent = await outcome('deployment-ramp', ['--build-id', 'b9', '--percent', '120']);
  assert.equal(percent.code, 2);
  assert.match(percent.stderr, /--percent 120 must be a number from 0 to 100/);
  const both = await outcome('deployment-rollback', ['--build-id', 'b1', '--unversioned']);
  assert.equal(both.code, 2);
  const sweep = await outcome('sweep-domain', ['--domain', 'example.net']);
  assert.equal(sweep.code, 2);
  assert.match(sweep.stderr, /--domain example\.net is not one of example\.com, example\.org/);
});

test('an unreachable Temporal is named with its address and namespace (exit 1)', async () => {
  const r = await outcome('deployment-status', [], {
    ...stack.childEnv,
    TEMPORAL_ADDRESS: '127.0.0.1:1',
    TEMPORAL_NAMESPACE: 'ops',
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach Temporal at 127\.0\.0\.1:1 \(namespace ops\)/);
});

test('no codec keys: starters refuse to start workflows (exit 2, naming MAILROOM_CODEC_KEYS), --plaintext is the explicit opt-out, reading names the variable', async () => {
  const key = await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Keys first' }));
  for (const [script, args] of [
    ['process-object', ['--bucket', BUCKET, '--key', key]],
    ['sweep-domain', ['--domain', 'example.com']],
    ['redrive', ['--domain', 'example.com', '--since', '1h']],
    ['schedule-sweep', ['--domain', 'example.com']],
  ] as const) {
    const r = await outcome(script, [...args], withoutKeys());
    assert.equal(r.code, 2, `${script}: ${r.stderr}`);
    assert.match(
      r.stderr,
      /MAILROOM_CODEC_KEYS is not set: .* would write email addresses and subjects into Temporal's history in plaintext[\s\S]*MAILROOM_CODEC_KEYS=none or --plaintext/,
      script,
    );
  }
  await assert.rejects(
    stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).describe(),
    /not found/i,
    'nothing was started',
  );

  // The worker, the SQS bridge: the same refusal (MAILROOM_CODEC_KEYS=none is their opt-out).
  for (const script of ['workers/main.ts', 'workers/sqs-bridge/main.ts']) {
    const r = await outcome(script, [], { ...withoutKeys(), HEALTH_PORT: '0', METRICS_PORT: '0' });
    assert.equal(r.code, 1, script);
    // One JSON log line (lib/observability/logger.ts); no --plaintext for a long-running process.
    assert.match(
      r.stdout + r.stderr,
      /MAILROOM_CODEC_KEYS is not set: the (worker|SQS bridge) would write[^\n]*MAILROOM_CODEC_KEYS=none(?! or --plaintext)/,
      script,
    );
  }

  // Opted out: started (plaintext), but these workers have keys and refuse unencrypted input:
  // the workflow task fails naming the setting, and the run does not proceed.
  const plain = await outcome('process-object', ['--bucket', BUCKET, '--key', key, '--plaintext'], withoutKeys());
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /started inbound\//);
  const refused = stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key));
  assert.match(
    await firstWorkflowTaskFailure(stack, inboundWorkflowId(BUCKET, key)),
    /refused an unencrypted payload.*MAILROOM_CODEC_KEYS is set.*MAILROOM_CODEC_ALLOW_PLAINTEXT=true/,
  );
  assert.equal((await refused.describe()).status.name, 'RUNNING');
  assert.equal(await stack.metadata(key).then((m) => m?.processed), undefined, 'not processed');
  await refused.terminate('test: refused plaintext input');

  // A reader without keys of an encrypted result is told what to set.
  const other = await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Keys second' }));
  assert.equal((await outcome('process-object', ['--bucket', BUCKET, '--key', other, '--wait'])).code, 0);
  const reader = await outcome(
    'process-object',
    ['--bucket', BUCKET, '--key', other, '--plaintext', '--wait'],
    withoutKeys(),
  );
  assert.equal(reader.code, 1, 'the worker answers encrypted; this reader has no keys');
  assert.match(reader.stderr, /already started earlier: inbound\//);
  assert.match(
    reader.stderr,
    /this history is encrypted \(key id "test"\) and MAILROOM_CODEC_KEYS is not set here: set MAILROOM_CODEC_KEYS/,
  );
});

test('missing never strands an object: trigger before the upload, upload, then sweep; delivered and tagged once', async () => {
  const key = `early-trigger-${process.pid}`;
  const workflowId = inboundWorkflowId(BUCKET, key);
  const [missingBefore, deliveredBefore] = [await counter('missing'), await counter('delivered')];
  const early = await outcome('process-object', ['--bucket', BUCKET, '--key', key, '--wait']);
  assert.equal(early.code, 1, early.stderr);
  assert.equal((JSON.parse(early.stdout) as { status: string }).status, 'missing');
  assert.match(early.stderr, /does not exist \(status missing\).*a later trigger for this object starts a new run/);
  assert.equal(await counter('missing'), missingBefore + 1, 'emails_processed_total counts missing');

  await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Arrived after its trigger' }), key);
  // The sweep and a redelivered notification race for the same object: one run starts.
  const [swept, direct] = await Promise.all([
    outcome('sweep-domain', ['--domain', 'example.com', '--prefix', key], { ...stack.childEnv, SWEEP_MIN_AGE: '0' }),
    startInbound(stack.env.client, stack.config.taskQueue, { domain: DOMAIN, bucket: BUCKET, key }),
  ]);
  assert.equal(swept.code, 0, swept.stderr);
  const sweptStarted = Number(/(\d+) workflows started/.exec(swept.stdout)?.[1] ?? 'NaN');
  assert.equal(sweptStarted + (direct.started ? 1 : 0), 1, `exactly one new run: ${swept.stdout}`);
  const result = await stack.env.client.workflow.getHandle(workflowId).result();
  assert.equal(result.status, 'delivered');
  assert.equal(
    (await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Arrived after its trigger')).length,
    1,
    'delivered once',
  );
  assert.equal((await stack.metadata(key))?.status, 'delivered');
  assert.equal(await counter('delivered'), deliveredBefore + 1, 'tagged once');
  // Visibility lags the runs a little.
  let runs: string[] = [];
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    runs = [];
    for await (const w of stack.env.client.workflow.list({ query: `WorkflowId = "${workflowId}"` }))
      runs.push(w.status.name);
    if (runs.sort().join() === 'COMPLETED,FAILED') break;
  }
  assert.deepEqual(runs, ['COMPLETED', 'FAILED'], 'the missing run and the one run that processed it');

  // Once processed, every further trigger is a no-op again.
  const again = await outcome('process-object', ['--bucket', BUCKET, '--key', key]);
  assert.match(again.stdout, /already started earlier.*no-op/);
});

test("start:object refuses a bucket that is not the domain's before starting a run", async () => {
  const key = await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Wrong domain' }));
  const other = await outcome('process-object', ['--bucket', BUCKET, '--key', key, '--domain', 'example.org']);
  assert.equal(other.code, 2, other.stderr);
  assert.match(
    other.stderr,
    new RegExp(
      `bucket ${BUCKET} is not the bucket of domain example\\.org \\(example-org-emails, .*it is example\\.com's: pass --domain example\\.com.*Nothing was started`,
    ),
  );
  const unknown = await outcome('process-object', [
    '--bucket',
    'somebody-elses-bucket',
    '--key',
    key,
    '--domain',
    'example.com',
  ]);
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(
    unknown.stderr,
    /bucket somebody-elses-bucket is not the bucket of domain example\.com .*no domain in .* has it/,
  );
  await assert.rejects(
    stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).describe(),
    /not found/i,
    'nothing was started',
  );
  const notification = join(mkdtempSync(join(tmpdir(), 'notif-')), 'n.json');
  writeFileSync(
    notification,
    JSON.stringify({
      notificationType: 'Received',
      mail: { messageId: key, destination: ['bob@example.org'] },
      receipt: { recipients: ['bob@example.org'], action: { type: 'S3', bucketName: BUCKET, objectKey: key } },
    }),
  );
  const fromNotification = await outcome('process-object', ['--notification', notification, '--domain', 'example.org']);
  assert.equal(fromNotification.code, 2, fromNotification.stderr);
});

test('redrive without a filter selects the whole bucket: refused without a terminal, --dry-run and --yes go ahead', async () => {
  // At least one tagged email, whatever ran before.
  await stack.run({
    key: await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Whole bucket' })),
  });
  const refused = await outcome('redrive', ['--domain', 'example.com']);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(
    refused.stderr,
    /Re-drive every tagged email of domain example\.com: no --status, --since, --until or --prefix selects the whole bucket: not confirmed, and stdin is not a terminal to ask on\. Nothing was done\. Pass --yes/,
  );
  const dry = await outcome('redrive', ['--domain', 'example.com', '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  const selected = Number(/, (\d+) selected/.exec(dry.stdout)?.[1]);
  assert.ok(selected > 0, dry.stdout);
  const yes = await outcome('redrive', ['--domain', 'example.com', '--yes', '--batch', 'whole1', '--wait']);
  assert.equal(yes.code, 0, yes.stderr);
  assert.match(yes.stdout, new RegExp(`batch whole1: ${selected} workflows started`));
  // Progress lines have no empty fields.
  assert.doesNotMatch(yes.stderr, /\| {2}|: \d+(\/\d+)? \|\s*$/m, yes.stderr);
  // A filter needs no confirmation; one that matches nothing names the bucket and the endpoint it read.
  const none = await outcome('redrive', ['--domain', 'example.org', '--status', 'quarantined']);
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stdout, /^0 objects in example-org-emails \(S3 at http:\/\/[\d.:]+\), 0 read/m);
});
