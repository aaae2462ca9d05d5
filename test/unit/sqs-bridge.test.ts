// The SQS bridge's pure parts: what a message becomes (start or poison, and why), and
// its configuration (the old worker's names and defaults, queue naming, validation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../lib/config';
import { classifyMessage, isMissingObjectError } from '../../workers/sqs-bridge/bridge';
import { isQueueUrl, loadSqsConfig, queueForDomain } from '../../lib/config/sqs-bridge';

const buckets = [
  { domain: 'example.com', bucket: 'example-com-emails' },
  { domain: 'example.org', bucket: 'example-org-emails' },
];
const ctx = { buckets, queueDomains: ['example.com'] };

function ses(overrides: { bucket?: string; key?: string; recipients?: string[]; type?: string } = {}) {
  return {
    notificationType: overrides.type ?? 'Received',
    mail: { messageId: 'abc123', source: 'someone@sender.example', destination: ['alice@example.com'] },
    receipt: {
      recipients: overrides.recipients ?? ['alice@example.com', 'bcc@example.com'],
      action: {
        type: 'S3',
        bucketName: overrides.bucket ?? 'example-com-emails',
        objectKey: overrides.key ?? 'inbox/abc123',
      },
    },
  };
}
const sns = (inner: unknown) =>
  JSON.stringify({
    Type: 'Notification',
    MessageId: 'm-1',
    TopicArn: 'arn:aws:sns:us-east-1:1:ses',
    Message: JSON.stringify(inner),
  });

test('an SNS-wrapped SES notification starts a workflow with bucket, key and envelope recipients (Bcc included)', () => {
  const d = classifyMessage(sns(ses()), ctx);
  assert.equal(d.action, 'start');
  assert.ok(d.action === 'start');
  assert.deepEqual(d.input, {
    domain: 'example.com',
    bucket: 'example-com-emails',
    key: 'inbox/abc123',
    envelopeRecipients: ['alice@example.com', 'bcc@example.com'],
  });
  assert.equal(d.sesMessageId, 'abc123');
  assert.equal(d.sender, 'someone@sender.example', 'for the Web UI summary');
  assert.equal(d.note, undefined);
});

test('a bare SES notification (raw message delivery) is taken as well', () => {
  const d = classifyMessage(JSON.stringify(ses()), ctx);
  assert.ok(d.action === 'start');
  assert.equal(d.input.key, 'inbox/abc123');
});

test("the domain is the one whose bucket is named, even in another domain's queue", () => {
  const d = classifyMessage(sns(ses({ bucket: 'example-org-emails' })), ctx);
  assert.ok(d.action === 'start');
  assert.equal(d.input.domain, 'example.org');
});

test("an unknown bucket in a per-domain queue starts for the queue's domain, with a note", () => {
  const d = classifyMessage(sns(ses({ bucket: 'legacy-bucket' })), ctx);
  assert.ok(d.action === 'start');
  assert.equal(d.input.domain, 'example.com');
  assert.match(d.note ?? '', /legacy-bucket is not the configured bucket/);
});

test('an unknown bucket in a queue shared by several domains is poison', () => {
  const d = classifyMessage(sns(ses({ bucket: 'legacy-bucket' })), {
    buckets,
    queueDomains: ['example.com', 'example.org'],
  });
  assert.deepEqual(d, {
    action: 'poison',
    reason: 'bucket legacy-bucket belongs to none of the domains of this queue (example.com, example.org)',
  });
});

test('no envelope recipients: none passed, the workflow falls back to headers', () => {
  const n = ses();
  (n.receipt as { recipients?: string[] }).recipients = undefined;
  n.mail.destination = [];
  const d = classifyMessage(sns(n), ctx);
  assert.ok(d.action === 'start');
  assert.equal('envelopeRecipients' in d.input, false);
});

test('poison: not JSON, SNS message not JSON, other notification types, no S3 action, malformed fields, empty', () => {
  const cases: Array<[string | undefined, RegExp]> = [
    ['hello, not json', /not an SES Received notification: not JSON/],
    [
      JSON.stringify({ Type: 'SubscriptionConfirmation', Message: 'You have chosen to subscribe to the topic' }),
      /SNS Message is not JSON/,
    ],
    [sns(ses({ type: 'Bounce' })), /notificationType is "Bounce", expected "Received"/],
    [JSON.stringify({ notificationType: 'AMAZON_SES_SETUP_NOTIFICATION' }), /AMAZON_SES_SETUP_NOTIFICATION/],
    [sns({ notificationType: 'Received', receipt: { action: { type: 'Lambda' } } }), /not an S3 action/],
    [JSON.stringify([1, 2, 3]), /expected "Received"/],
    [JSON.stringify(null), /expected "Received"/],
    // Malformed Received notifications: poison at once, with the field and what is wrong.
    [
      sns({ ...ses(), receipt: { ...ses().receipt, recipients: 'alice@example.com' } }),
      /receipt\.recipients: must be a list of address strings/,
    ],
    [
      sns({ ...ses(), receipt: { ...ses().receipt, recipients: { a: 'alice@example.com' } } }),
      /receipt\.recipients: must be a list/,
    ],
    [
      sns({ ...ses(), receipt: { ...ses().receipt, recipients: ['alice@example.com', 7] } }),
      /receipt\.recipients\.1: must be a list/,
    ],
    [
      sns({
        ...ses(),
        mail: { ...ses().mail, destination: 'alice@example.com' },
        receipt: { action: ses().receipt.action },
      }),
      /mail\.destination: must be a list of address strings/,
    ],
    [sns({ ...ses(), mail: 'text' }), /mail: /],
    [
      sns({ ...ses(), receipt: { ...ses().receipt, action: { ...ses().receipt.action, objectKey: 42 } } }),
      /receipt\.action\.objectKey/,
    ],
    [
      sns({ ...ses(), receipt: { ...ses().receipt, action: { type: 'S3', bucketName: '' } } }),
      /receipt\.action\.bucketName: is empty/,
    ],
    [sns({ notificationType: 'Received' }), /receipt: is missing/],
    ['', /empty message body/],
    [undefined, /empty message body/],
  ];
  for (const [body, reason] of cases) {
    const d = classifyMessage(body, ctx);
    assert.equal(d.action, 'poison', String(body));
    assert.ok(d.action === 'poison');
    assert.match(d.reason, reason);
  }
});

test('missing-object errors are told apart from other S3 errors', () => {
  assert.equal(isMissingObjectError({ name: 'NotFound', $metadata: { httpStatusCode: 404 } }), true);
  assert.equal(isMissingObjectError({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }), true);
  assert.equal(isMissingObjectError({ name: 'Forbidden', $metadata: { httpStatusCode: 403 } }), false);
  assert.equal(isMissingObjectError(new Error('socket hang up')), false);
});

test("queue naming: the old worker's <domain-with-hyphens>-queue, a template, or a URL", () => {
  assert.equal(queueForDomain('Example.COM'), 'example-com-queue');
  assert.equal(queueForDomain('mail.example.org', 'ses-{domain_raw}'), 'ses-mail.example.org');
  assert.equal(
    queueForDomain('example.com', 'https://sqs.eu-west-1.amazonaws.com/123/{domain}-queue'),
    'https://sqs.eu-west-1.amazonaws.com/123/example-com-queue',
  );
  assert.equal(isQueueUrl('https://sqs.eu-west-1.amazonaws.com/123/q'), true);
  assert.equal(isQueueUrl('example-com-queue'), false);
});

test("defaults are the old worker's: POLL_INTERVAL 20, MAX_MESSAGES 10, VISIBILITY_TIMEOUT 300; one queue per domain", () => {
  const c = loadSqsConfig({ DOMAINS: 'example.com,example.org' });
  assert.equal(c.pollIntervalSeconds, 20);
  assert.equal(c.maxMessages, 10);
  assert.equal(c.visibilityTimeoutSeconds, 300);
  assert.equal(c.poisonVisibilityTimeoutSeconds, 43200);
  assert.equal(c.sqsEndpoint, undefined);
  assert.deepEqual(c.queues, [
    { queue: 'example-com-queue', domains: ['example.com'], deadLetter: undefined },
    { queue: 'example-org-queue', domains: ['example.org'], deadLetter: undefined },
  ]);
});

test('overrides: endpoint, template, dead-letter queue (name or per-domain template), poll settings', () => {
  const c = loadSqsConfig({
    DOMAINS: 'example.com,example.org',
    AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:4100',
    SQS_QUEUE_TEMPLATE: 'ses-{domain}',
    SQS_DEAD_LETTER_QUEUE: '{domain}-dlq',
    POLL_INTERVAL: '1',
    MAX_MESSAGES: '5',
    VISIBILITY_TIMEOUT: '30',
    SQS_POISON_VISIBILITY_TIMEOUT: '600',
  });
  assert.equal(c.sqsEndpoint, 'http://127.0.0.1:4100');
  assert.deepEqual(
    c.queues.map((q) => [q.queue, q.deadLetter]),
    [
      ['ses-example-com', 'example-com-dlq'],
      ['ses-example-org', 'example-org-dlq'],
    ],
  );
  assert.deepEqual(
    [c.pollIntervalSeconds, c.maxMessages, c.visibilityTimeoutSeconds, c.poisonVisibilityTimeoutSeconds],
    [1, 5, 30, 600],
  );
  assert.equal(
    loadSqsConfig({ DOMAINS: 'example.com', SQS_DEAD_LETTER_QUEUE: 'mailroom-dead-letter' }).queues[0].deadLetter,
    'mailroom-dead-letter',
  );
});

test('a template without {domain} makes one queue shared by all domains', () => {
  const c = loadSqsConfig({ DOMAINS: 'example.com,example.org', SQS_QUEUE_TEMPLATE: 'all-inbound' });
  assert.deepEqual(c.queues, [
    { queue: 'all-inbound', domains: ['example.com', 'example.org'], deadLetter: undefined },
  ]);
});

test('bad values name the variable', () => {
  assert.throws(
    () => loadSqsConfig({ DOMAINS: 'example.com', POLL_INTERVAL: '30' }),
    (e: Error) =>
      e instanceof ConfigError && /POLL_INTERVAL: must be 0\.\.20/.test(e.message) && /"30"/.test(e.message),
  );
  assert.throws(() => loadSqsConfig({ DOMAINS: 'example.com', MAX_MESSAGES: '11' }), /MAX_MESSAGES: must be 1\.\.10/);
  assert.throws(() => loadSqsConfig({ DOMAINS: 'example.com', VISIBILITY_TIMEOUT: 'long' }), /VISIBILITY_TIMEOUT/);
  assert.throws(
    () => loadSqsConfig({ DOMAINS: 'example.com', AWS_ENDPOINT_URL_SQS: 'not a url' }),
    /AWS_ENDPOINT_URL_SQS/,
  );
  assert.throws(
    () => loadSqsConfig({ DOMAINS: 'example.com', SQS_DEAD_LETTER_QUEUE: '{domain}-queue' }),
    /is the queue itself/,
  );
  assert.throws(() => loadSqsConfig({ DOMAINS: 'example.com', SMTP_PORT: 'x' }), /SMTP_PORT/);
});

test('SES receipt verdicts from the notification are passed on to the workflow', () => {
  const withVerdicts = {
    ...ses(),
    receipt: {
      ...ses().receipt,
      spamVerdict: { status: 'FAIL' },
      virusVerdict: { status: 'PASS' },
      dkimVerdict: { status: 'PASS' },
    },
  };
  const d = classifyMessage(sns(withVerdicts), ctx);
  assert.ok(d.action === 'start');
  assert.deepEqual(d.input.verdicts, { spam: 'FAIL', virus: 'PASS', dkim: 'PASS', source: 'notification' });
});
