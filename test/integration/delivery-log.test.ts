// A delivery skips the recipients that already have the object (lib/storage/delivery-log.ts,
// per object and recipient), so a completion lost to a killed worker or a Temporal outage,
// or a second run under another workflow id, does not become a second copy; --redeliver
// does deliver again, and a redeliver run delivers once however often its steps run. Real S3 server (versitygw), dynalite and SMTP target.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createDeliverActivities } from '../../activities/inbound/deliver';
import { createRulesActivities } from '../../activities/inbound/rules';
import { createTransports } from '../../lib/smtp/transports';
import {
  deliveredBefore,
  forwardKey,
  objectRef,
  recordDelivered,
  recordForwarded,
} from '../../lib/storage/delivery-log';
import { dynamodbRequests } from '../../lib/observability/metrics';
import { bucketForDomain, loadConfig } from '../../lib/config';
import type { RecipientResult } from '../../contracts/inbound';
import { rawMail } from '../../scripts/stack/demo-emails';
import { DEFAULT_TABLES, dynamoClientFor, ensureTables, startDynamoServer } from '../../scripts/stack/dynamodb';
import { S3_CREDENTIALS, s3ClientFor, startS3Server } from '../../scripts/stack/s3';
import { startSmtpTarget } from '../../scripts/stack/smtp-target';
import { localStackEnv } from '../../scripts/stack/worker-env';

/** versitygw, dynalite and one SMTP target (mailbox and internal port) with a@ and b@example.com. */
async function stack(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-dlog-'));
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  const [s3srv, ddb, mail] = await Promise.all([
    startS3Server({ directory: join(dir, 's3') }),
    startDynamoServer(),
    startSmtpTarget({
      directory: join(dir, 'mail'),
      localDomains: ['example.com'],
      mailboxes: ['a@example.com', 'b@example.com'],
    }),
  ]);
  const config = loadConfig(
    localStackEnv({
      s3: s3srv.endpoint,
      dynamodb: ddb.endpoint,
      domains: ['example.com'],
      smtpPort: mail.port,
      internalSmtpPort: mail.port,
    }),
  );
  const s3 = s3ClientFor(s3srv.endpoint);
  const dynamo = dynamoClientFor(ddb.endpoint);
  const transports = createTransports(config);
  t.after(async () => {
    transports.close();
    await Promise.all([s3srv.stop(), ddb.stop(), mail.stop()]);
    await rm(dir, { recursive: true, force: true });
  });
  await ensureTables(dynamo, DEFAULT_TABLES);
  const bucket = bucketForDomain('example.com');
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: 'k1',
      Body: rawMail({
        from: 'x@sender.example',
        to: ['a@example.com', 'b@example.com'],
        subject: 'Once only',
        messageId: '<once@sender.example>',
      }),
    }),
  );
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: 'k2',
      Body: rawMail({
        from: 'x@sender.example',
        to: ['"b"@example.com'],
        subject: 'Quoted',
        messageId: '<quoted@sender.example>',
      }),
    }),
  );
  return { s3, dynamo, config, transports, mail, bucket };
}

test('a retry or a later run delivers only to the recipients not yet delivered; redeliver delivers again', async (t) => {
  const { s3, dynamo, config, transports, mail, bucket } = await stack(t);
  const { deliverEmail } = createDeliverActivities({ s3, dynamo, config, transports });
  const input = { domain: 'example.com', bucket, key: 'k1', envelopeFrom: 'x@sender.example' };
  type Input = Parameters<typeof deliverEmail>[0];
  // One attempt of deliverEmail inside a given run, with an activity context and no Temporal.
  const run = (attempt: number, runId: string) => ({
    deliver: (i: Input) =>
      new MockActivityEnvironment({ attempt, workflowExecution: { workflowId: 'inbound/x/k1', runId } }).run(
        deliverEmail,
        i,
      ) as Promise<RecipientResult[]>,
  });
  const copies = async () =>
    (await mail.deliveries())
      .filter((d) => d.messageId === '<once@sender.example>')
      .map((d) => d.recipient)
      .sort();

  // Attempt 1 delivers to a, and "dies" before Temporal hears of it.
  const first = await run(1, 'run-1').deliver({ ...input, recipients: ['a@example.com'] });
  assert.deepEqual(
    first.map((r) => r.outcome),
    ['delivered'],
  );
  // Attempt 2 of the same run, for a and b: a is skipped, b is delivered.
  const second = await run(2, 'run-1').deliver({ ...input, recipients: ['a@example.com', 'b@example.com'] });
  assert.deepEqual(
    second.map((r) => [r.recipient, r.outcome]),
    [
      ['a@example.com', 'delivered'],
      ['b@example.com', 'delivered'],
    ],
  );
  assert.equal(second[0].detail, 'delivered earlier');
  assert.deepEqual(await copies(), ['a@example.com', 'b@example.com'], 'one copy each');
  // Attempt 3 with everything delivered sends nothing at all.
  const connections = mail.connections;
  await run(3, 'run-1').deliver({ ...input, recipients: ['a@example.com', 'b@example.com'] });
  assert.equal(mail.connections, connections);
  // Another run for the same object (a second trigger under another id, a re-drive) does
  // not deliver again: the log is per object and recipient, whatever the run.
  const later = await run(1, 'run-2').deliver({ ...input, recipients: ['A@Example.com'] });
  assert.deepEqual(later, [{ recipient: 'A@Example.com', outcome: 'delivered', detail: 'delivered earlier' }]);
  assert.deepEqual(await copies(), ['a@example.com', 'b@example.com']);
  // Only an explicit re-delivery does.
  await run(1, 'run-2').deliver({ ...input, recipients: ['a@example.com'], redeliver: true });
  assert.deepEqual(await copies(), ['a@example.com', 'a@example.com', 'b@example.com']);
  // Recipients are matched in their normal form: "q"@ and a(comment)@ are q@ and a@ (issue 11).
  const odd = await run(1, 'run-4').deliver({ ...input, key: 'k2', recipients: ['"b"@example.com'] });
  assert.deepEqual(odd, [{ recipient: '"b"@example.com', outcome: 'delivered' }]);

  // An attempt's log is one BatchWriteItem however many recipients it delivered to.
  const writes = async () =>
    (await dynamodbRequests.get()).values
      .filter((v) => v.labels.operation === 'BatchWriteItem' && v.labels.table === DEFAULT_TABLES.delivery)
      .reduce((n, v) => n + v.value, 0);
  const before = await writes();
  await run(1, 'run-3').deliver({ ...input, recipients: ['a@example.com', 'b@example.com'], redeliver: true });
  assert.equal((await writes()) - before, 1);
  assert.deepEqual(
    await deliveredBefore(dynamo, DEFAULT_TABLES.delivery, objectRef(bucket, 'k1'), [
      'A@example.com',
      'b@example.com',
      'c@example.com',
    ]),
    new Set(['a@example.com', 'b@example.com']),
  );
});

test('a redeliver run delivers and forwards once however often its steps run; the next redeliver run does again', async (t) => {
  const { s3, dynamo, config, transports, mail, bucket } = await stack(t);
  const { deliverEmail } = createDeliverActivities({ s3, dynamo, config, transports });
  const { forwardEmail } = createRulesActivities({ s3, dynamo, config, transports });
  const workflowId = `inbound/${bucket}/k1`;
  // The fast path's steps are local activities: after a worker dies before the workflow task
  // completes, the same run runs them again (fast-path-reexecution.test.ts).
  const local = <A extends unknown[], R>(runId: string, fn: (...a: A) => Promise<R>, ...args: A) =>
    new MockActivityEnvironment({ isLocal: true, workflowExecution: { workflowId, runId } }).run(
      fn,
      ...args,
    ) as Promise<R>;
  const deliver = { domain: 'example.com', bucket, key: 'k1', recipients: ['a@example.com'], redeliver: true };
  const forward = { bucket, key: 'k1', recipient: 'a@example.com', to: 'b@example.com', redeliver: true };
  const copies = async (to: string) =>
    (await mail.deliveries()).filter((d) => d.messageId === '<once@sender.example>' && d.recipient === to).length;

  // The first, ordinary run delivered and forwarded (its entries name it).
  await local('run-1', deliverEmail, { ...deliver, redeliver: undefined });
  await local('run-1', forwardEmail, { ...forward, redeliver: undefined });
  assert.equal(await copies('a@example.com'), 1);
  assert.equal(await copies('b@example.com'), 1);

  // A redeliver run delivers over run-1's entries; its steps run twice: one copy each.
  for (let pass = 0; pass < 2; pass++) {
    const results = await local('redeliver-1', deliverEmail, deliver);
    assert.deepEqual(
      results.map((r) => [r.outcome, r.detail]),
      [['delivered', pass === 0 ? undefined : 'delivered earlier']],
    );
    assert.deepEqual(await local('redeliver-1', forwardEmail, forward), { route: 'internal' });
  }
  assert.equal(await copies('a@example.com'), 2, 'one more delivery, not two');
  assert.equal(await copies('b@example.com'), 2, 'one more forward, not two');
  // An ordinary run still finds them delivered (the redeliver run's entries count for everyone).
  await local('run-2', deliverEmail, { ...deliver, redeliver: undefined });
  await local('run-2', forwardEmail, { ...forward, redeliver: undefined });
  assert.equal(await copies('a@example.com'), 2);
  assert.equal(await copies('b@example.com'), 2);

  // A second redeliver run is another explicit request: it delivers and forwards again, once.
  for (let pass = 0; pass < 2; pass++) {
    await local('redeliver-2', deliverEmail, deliver);
    await local('redeliver-2', forwardEmail, forward);
  }
  assert.equal(await copies('a@example.com'), 3);
  assert.equal(await copies('b@example.com'), 3);

  // Entries written before runs were recorded (no run) are an earlier run's: redelivered over.
  const object = objectRef(bucket, 'k1');
  await recordDelivered(dynamo, DEFAULT_TABLES.delivery, object, ['a@example.com']);
  await recordForwarded(dynamo, DEFAULT_TABLES.delivery, forwardKey(object, 'a@example.com', 'b@example.com'));
  for (let pass = 0; pass < 2; pass++) {
    await local('redeliver-2', deliverEmail, deliver);
    await local('redeliver-2', forwardEmail, forward);
  }
  assert.equal(await copies('a@example.com'), 4);
  assert.equal(await copies('b@example.com'), 4);
});
