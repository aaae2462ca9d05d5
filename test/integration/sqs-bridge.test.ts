// The SQS bridge end to end: SNS-wrapped SES notifications on a real SQS-compatible
// server (goaws, a separate process), the real inbound stack (Temporal dev server,
// versitygw (S3), dynalite, SMTP target, running worker). The bridge runs in-process (runBridge
// with the real clients) and, for the crash case, as the real process (workers/sqs-bridge/main.ts).
// Each test uses its own queues, so one test's messages never reach another's bridge.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import pino from 'pino';
import { type Outcome, resolveQueues, runBridge, temporalBridgeDeps } from '../../workers/sqs-bridge/bridge';
import { loadSqsConfig } from '../../lib/config/sqs-bridge';
import { bucketForDomain } from '../../lib/config';
import type { InboundResult } from '../../contracts/inbound';
import { rawMail } from '../../scripts/stack/demo-emails';
import { type LocalSqs, sqsClientFor, startSqsServer } from '../../scripts/stack/sqs';
import { BUCKET, inboundWorkflowId, type InboundStack, startInboundStack } from '../support/inbound-stack';

const ROOT = join(__dirname, '..', '..');
const ALICE = 'alice@example.com';
const CAROL = 'carol@example.com';
const SENDER = 'someone@sender.example';

let stack: InboundStack;
let sqsServer: LocalSqs;
let sqs: SQSClient;

before(async () => {
  [stack, sqsServer] = await Promise.all([startInboundStack({ mailboxes: [ALICE, CAROL] }), startSqsServer()]);
  sqs = sqsClientFor(sqsServer.endpoint);
});

after(async () => {
  sqs?.destroy();
  await sqsServer?.stop();
  await stack?.stop();
});

/** What SES publishes to SNS, and SNS delivers to SQS, for one received message. */
function notification(key: string, recipients: string[], opts: { bucket?: string; type?: string } = {}): string {
  const ses = {
    notificationType: opts.type ?? 'Received',
    mail: {
      timestamp: new Date().toISOString(),
      source: SENDER,
      messageId: key,
      destination: recipients.filter((r) => r !== CAROL),
    },
    receipt: {
      timestamp: new Date().toISOString(),
      recipients,
      spamVerdict: { status: 'PASS' },
      virusVerdict: { status: 'PASS' },
      action: {
        type: 'S3',
        topicArn: 'arn:aws:sns:us-east-1:123456789012:ses-inbound',
        bucketName: opts.bucket ?? BUCKET,
        objectKeyPrefix: '',
        objectKey: key,
      },
    },
  };
  return JSON.stringify({
    Type: 'Notification',
    MessageId: `sns-${key}`,
    TopicArn: 'arn:aws:sns:us-east-1:123456789012:ses-inbound',
    Subject: 'Amazon SES Email Receipt Notification',
    Message: JSON.stringify(ses),
    Timestamp: new Date().toISOString(),
  });
}

let queueCounter = 0;
/** Fresh per-domain queues (and a dead-letter queue) for one test; returns the bridge's env. */
async function freshQueues(
  extra: { redrivePolicy?: (dlqArn: string) => string } = {},
): Promise<{ env: Record<string, string>; queueUrl: string; dlqUrl: string; dlqName: string }> {
  const prefix = `t${process.pid}-${++queueCounter}`;
  const dlqName = `${prefix}-dead-letter`;
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: dlqName }))).QueueUrl!;
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] })))
    .Attributes!.QueueArn!;
  let queueUrl = '';
  for (const domain of ['example-com', 'example-org']) {
    const url = (
      await sqs.send(
        new CreateQueueCommand({
          QueueName: `${prefix}-${domain}-queue`,
          Attributes: extra.redrivePolicy ? { RedrivePolicy: extra.redrivePolicy(dlqArn) } : undefined,
        }),
      )
    ).QueueUrl!;
    if (domain === 'example-com') queueUrl = url;
  }
  const env = {
    AWS_ENDPOINT_URL_SQS: sqsServer.endpoint,
    SQS_QUEUE_TEMPLATE: `${prefix}-{domain}-queue`,
    POLL_INTERVAL: '1',
    VISIBILITY_TIMEOUT: '2',
    MAX_MESSAGES: '10',
  };
  return { env, queueUrl, dlqUrl, dlqName };
}

async function send(queueUrl: string, body: string): Promise<void> {
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
}

/** goaws counts every message on the queue in ApproximateNumberOfMessages, in flight included. */
async function queueCounts(queueUrl: string): Promise<{ total: number; inFlight: number }> {
  const a =
    (
      await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      )
    ).Attributes ?? {};
  return { total: Number(a.ApproximateNumberOfMessages), inFlight: Number(a.ApproximateNumberOfMessagesNotVisible) };
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves to undefined after ms without keeping the test process alive. */
const timeout = (ms: number) => new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref());

interface LogLine {
  level: number;
  msg: string;
  sqsMessageId?: string;
  reason?: string;
  workflowId?: string;
}

/** The bridge in-process, with the real clients; its log lines and outcomes are kept for asserts. */
async function startBridge(env: Record<string, string>) {
  const config = loadSqsConfig({ ...stack.childEnv, ...env });
  const queues = await resolveQueues(sqs, config.queues);
  const logs: LogLine[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const outcomes: Array<{ outcome: Outcome; message: Message }> = [];
  const stop = new AbortController();
  const running = runBridge(
    { sqs, s3: stack.s3, ...temporalBridgeDeps(stack.env.client, config.base.taskQueue), log },
    queues,
    {
      buckets: config.base.domains.map((domain) => ({
        domain,
        bucket: bucketForDomain(domain, config.base.bucketTemplate),
      })),
      waitTimeSeconds: config.pollIntervalSeconds,
      maxMessages: config.maxMessages,
      visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
      poisonVisibilityTimeoutSeconds: config.poisonVisibilityTimeoutSeconds,
      hooks: { onOutcome: ({ outcome, message }) => void outcomes.push({ outcome, message }) },
    },
    stop.signal,
  );
  return {
    logs,
    outcomes,
    async stop() {
      stop.abort();
      await running;
    },
  };
}

async function mailboxCount(address: string, subject: string): Promise<number> {
  return (await stack.mail.messagesFor(address)).filter((m) => m.includes(`Subject: ${subject}`)).length;
}

function workflowResult(key: string): Promise<InboundResult> {
  return stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).result() as Promise<InboundResult>;
}

test('normal flow: notification → workflow started → mail delivered → SQS message deleted', async () => {
  const q = await freshQueues();
  const subject = 'SQS normal flow';
  const key = await stack.put(rawMail({ from: SENDER, to: [ALICE], subject }));
  await send(q.queueUrl, notification(key, [ALICE]));
  const bridge = await startBridge(q.env);
  try {
    await until('the message handled', () => bridge.outcomes.length === 1);
    assert.equal(bridge.outcomes[0].outcome, 'started');
    const result = await workflowResult(key);
    assert.equal(result.status, 'delivered');
    assert.equal(await mailboxCount(ALICE, subject), 1);
    assert.deepEqual(await queueCounts(q.queueUrl), { total: 0, inFlight: 0 }, 'deleted from the queue');
    const line = bridge.logs.find((l) => l.msg === 'workflow started, message deleted');
    assert.equal(line?.workflowId, inboundWorkflowId(BUCKET, key));
  } finally {
    await bridge.stop();
  }
});

test('the same notification delivered twice (and once more later): one workflow, one delivery, every copy deleted', async () => {
  const q = await freshQueues();
  const subject = 'SQS duplicate delivery';
  const key = await stack.put(rawMail({ from: SENDER, to: [ALICE], subject }));
  const body = notification(key, [ALICE]);
  await send(q.queueUrl, body);
  await send(q.queueUrl, body);
  const bridge = await startBridge(q.env);
  try {
    await until('both copies handled', () => bridge.outcomes.length === 2);
    assert.deepEqual(bridge.outcomes.map((o) => o.outcome).sort(), ['duplicate', 'started']);
    assert.equal((await workflowResult(key)).status, 'delivered');
    // A copy arriving after the run completed is a no-op as well (ALLOW_DUPLICATE_FAILED_ONLY).
    await send(q.queueUrl, body);
    await until('the late copy handled', () => bridge.outcomes.length === 3);
    assert.equal(bridge.outcomes[2].outcome, 'duplicate');
    assert.deepEqual(await queueCounts(q.queueUrl), { total: 0, inFlight: 0 });
    assert.equal(await mailboxCount(ALICE, subject), 1);
  } finally {
    await bridge.stop();
  }
});

function runBridgeProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/sqs-bridge/main.ts'], {
    cwd: ROOT,
    env: { ...stack.childEnv, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal })),
  );
  return { child, exited, output: () => output };
}

test('crash between start and delete: the message comes back after VISIBILITY_TIMEOUT, its start is a no-op, it is deleted, one delivery', async () => {
  const q = await freshQueues();
  const env = { ...q.env, VISIBILITY_TIMEOUT: '3' };
  const subject = 'SQS crash between start and delete';
  const key = await stack.put(rawMail({ from: SENDER, to: [ALICE], subject }));
  await send(q.queueUrl, notification(key, [ALICE]));

  // First bridge process: SIGKILLs itself right after Temporal accepted the start.
  const first = runBridgeProcess({ ...env, MAILROOM_TEST_CRASH_AFTER_START: '1' });
  const died = await Promise.race([first.exited, timeout(60_000)]);
  assert.deepEqual(died, { code: null, signal: 'SIGKILL' }, first.output());
  assert.match(first.output(), /killing myself before DeleteMessage/);
  assert.equal((await workflowResult(key)).status, 'delivered', 'the workflow started before the crash ran');
  assert.equal((await queueCounts(q.queueUrl)).total, 1, 'the message was not deleted');

  // Second bridge process: receives the message again once its visibility timeout ran out.
  const second = runBridgeProcess(env);
  try {
    await until('the redelivered message handled', () => /already started earlier/.test(second.output()), 60_000);
    await until('the queue empty', async () => (await queueCounts(q.queueUrl)).total === 0);
    second.child.kill('SIGTERM');
    const stopped = await Promise.race([second.exited, timeout(15_000)]);
    assert.deepEqual(stopped, { code: 0, signal: null }, `graceful stop on SIGTERM\n${second.output()}`);
    assert.match(second.output(), /sqs bridge stopped/);
  } finally {
    if (second.child.exitCode === null && second.child.signalCode === null) second.child.kill('SIGKILL');
  }
  assert.equal(await mailboxCount(ALICE, subject), 1, 'delivered exactly once');
});

test('poison messages go to the dead-letter queue with the reason, are not retried, and replay with start:object', async () => {
  const q = await freshQueues();
  const missingKey = `missing-${process.pid}-${Date.now()}`;
  // Malformed notifications of a stored object: the recipients a string, or an object (they
  // once threw a TypeError at every receive, retried forever).
  const stored = await stack.put(rawMail({ from: SENDER, to: [ALICE], subject: 'SQS malformed notification' }));
  const reshaped = (edit: (ses: { mail: Record<string, unknown>; receipt: Record<string, unknown> }) => void) => {
    const sns = JSON.parse(notification(stored, [ALICE]));
    const ses = JSON.parse(sns.Message);
    edit(ses);
    return JSON.stringify({ ...sns, MessageId: `sns-${Math.random()}`, Message: JSON.stringify(ses) });
  };
  const bodies = {
    notJson: 'this is not JSON',
    bounce: notification('some-key', [ALICE], { type: 'Bounce' }),
    missing: notification(missingKey, [ALICE, CAROL]),
    recipientsString: reshaped((n) => (n.receipt.recipients = ALICE)),
    destinationObject: reshaped((n) => {
      delete n.receipt.recipients;
      n.mail.destination = { 0: ALICE };
    }),
  };
  for (const body of Object.values(bodies)) await send(q.queueUrl, body);
  const bridge = await startBridge({ ...q.env, SQS_DEAD_LETTER_QUEUE: q.dlqName, VISIBILITY_TIMEOUT: '1' });
  try {
    await until('five messages handled', () => bridge.outcomes.length === 5);
    await sleep(3000); // three visibility timeouts: nothing comes back
    assert.deepEqual(
      bridge.outcomes.map((o) => o.outcome),
      ['dead-lettered', 'dead-lettered', 'dead-lettered', 'dead-lettered', 'dead-lettered'],
    );
  } finally {
    await bridge.stop();
  }
  assert.deepEqual(await queueCounts(q.queueUrl), { total: 0, inFlight: 0 }, 'moved off the source queue');

  const dead =
    (
      await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: q.dlqUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageAttributeNames: ['All'],
        }),
      )
    ).Messages ?? [];
  assert.equal(dead.length, 5);
  const reasonOf = (body: string) =>
    dead.find((m) => m.Body === body)?.MessageAttributes?.['mailroom-reason']?.StringValue;
  assert.match(reasonOf(bodies.notJson) ?? '', /not an SES Received notification: not JSON/);
  assert.match(reasonOf(bodies.bounce) ?? '', /notificationType is "Bounce", expected "Received"/);
  assert.equal(reasonOf(bodies.missing), `object s3://${BUCKET}/${missingKey} does not exist`);
  assert.match(reasonOf(bodies.recipientsString) ?? '', /receipt\.recipients: must be a list of address strings/);
  assert.match(reasonOf(bodies.destinationObject) ?? '', /mail\.destination: must be a list of address strings/);
  assert.equal(
    await temporalBridgeDeps(stack.env.client, stack.config.taskQueue).workflowExists(
      inboundWorkflowId(BUCKET, stored),
    ),
    false,
    'no workflow for a malformed notification',
  );
  for (const m of dead)
    assert.equal(
      m.MessageAttributes?.['mailroom-source-queue']?.StringValue,
      `${q.env.SQS_QUEUE_TEMPLATE.replace('{domain}', 'example-com')}`,
    );

  // One clear error line per message, naming it and the reason.
  const lines = bridge.logs.filter((l) => l.msg.startsWith('poison message moved to the dead-letter queue'));
  assert.equal(lines.length, 5);
  assert.deepEqual(new Set(lines.map((l) => l.sqsMessageId)), new Set(bridge.outcomes.map((o) => o.message.MessageId)));
  assert.ok(lines.every((l) => l.level === 50 && l.reason));
  assert.equal(
    await temporalBridgeDeps(stack.env.client, stack.config.taskQueue).workflowExists(
      inboundWorkflowId(BUCKET, missingKey),
    ),
    false,
    'no workflow for a missing object',
  );

  // The object turns up later: the dead-lettered body replays as it is through the one-object starter.
  const subject = 'SQS replayed from the dead-letter queue';
  await stack.put(rawMail({ from: SENDER, to: [ALICE], subject }), missingKey);
  const replay = promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'starters/process-object.ts', '--notification', '-', '--wait'],
    { cwd: ROOT, env: stack.childEnv, timeout: 60_000 },
  );
  replay.child.stdin?.end(dead.find((m) => m.Body === bodies.missing)?.Body);
  const { stdout } = await replay;
  assert.match(stdout, /"status": "delivered"/);
  assert.equal(await mailboxCount(CAROL, subject), 1, 'envelope recipients (Bcc) come from the notification');
});

test("without a dead-letter queue, poison stays on its queue hidden for SQS_POISON_VISIBILITY_TIMEOUT, and the queue's redrive policy moves it", async () => {
  const q = await freshQueues({
    redrivePolicy: (arn) => JSON.stringify({ maxReceiveCount: 2, deadLetterTargetArn: arn }),
  });
  await send(q.queueUrl, '{"not": "a notification"}');
  const bridge = await startBridge({ ...q.env, VISIBILITY_TIMEOUT: '1', SQS_POISON_VISIBILITY_TIMEOUT: '4' });
  try {
    await until('the message set aside', () => bridge.outcomes.length === 1);
    assert.equal(bridge.outcomes[0].outcome, 'set-aside');
    assert.deepEqual(await queueCounts(q.queueUrl), { total: 1, inFlight: 1 }, 'kept (not deleted), hidden');
    await sleep(2500); // longer than VISIBILITY_TIMEOUT: a plain failure would have come back by now
    assert.equal(bridge.outcomes.length, 1, 'not received again while hidden');
    // Visible again after 4 s: set aside a second time, then SQS redrives it (maxReceiveCount 2).
    await until('received a second time', () => bridge.outcomes.length === 2, 15_000);
    assert.equal(bridge.outcomes[1].outcome, 'set-aside');
    await until(
      'moved by the redrive policy',
      async () => (await queueCounts(q.queueUrl)).total === 0 && (await queueCounts(q.dlqUrl)).total === 1,
      15_000,
    );
    const lines = bridge.logs.filter((l) => l.msg.startsWith('poison message left on its queue'));
    assert.equal(lines.length, 2, 'one error line per receive');
    assert.match(lines[0].reason ?? '', /expected "Received"/);
    assert.equal(lines[0].sqsMessageId, bridge.outcomes[0].message.MessageId);
  } finally {
    await bridge.stop();
  }
});

test('a Bcc recipient (in receipt.recipients, in neither To nor Cc) reaches its mailbox', async () => {
  const q = await freshQueues();
  const subject = 'SQS Bcc recipient';
  const key = await stack.put(rawMail({ from: SENDER, to: [ALICE], subject }));
  await send(q.queueUrl, notification(key, [ALICE, CAROL]));
  const bridge = await startBridge(q.env);
  try {
    await until('the message handled', () => bridge.outcomes.length === 1);
    const result = await workflowResult(key);
    assert.equal(result.status, 'delivered');
    assert.deepEqual(result.recipients.map((r) => [r.recipient, r.outcome]).sort(), [
      [ALICE, 'delivered'],
      [CAROL, 'delivered'],
    ]);
    const [carols] = (await stack.mail.messagesFor(CAROL)).filter((m) => m.includes(`Subject: ${subject}`));
    assert.ok(carols, "in carol's mailbox");
    const headers = carols.split(/\r?\n\r?\n/)[0];
    assert.match(headers, /^To: alice@example\.com\r?$/m);
    assert.doesNotMatch(headers, /^(To|Cc):.*carol/im, 'carol is in neither To nor Cc');
    assert.equal(await mailboxCount(ALICE, subject), 1);
    await until('the message deleted', async () => (await queueCounts(q.queueUrl)).total === 0);
  } finally {
    await bridge.stop();
  }
});
