// The fast path runs every step of an ordinary email as a local activity inside one workflow
// task. A worker that dies before that task completes leaves no record of the steps it ran,
// so the next worker runs them all again within the same run (issue 14's failed trial: 18
// duplicate deliveries and 3 emails reported already_processed). Here the sequence a fast
// path run makes (fetch, deliver, forward, auto-reply, tag) runs twice in one run, as local
// activities, against the real servers (versitygw, dynalite, SMTP targets): the second pass
// must recognise its own tag, deliver, forward and reply nothing again, and count the copy
// once. A second run (another trigger) still finds the email processed.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createTransports } from '../../lib/smtp/transports';
import { createInboundActivities } from '../../activities';
import { bucketForDomain, loadConfig } from '../../lib/config';
import type { FetchResult, LargeEmail } from '../../contracts/inbound';
import { rawMail } from '../../scripts/stack/demo-emails';
import { DEFAULT_TABLES, dynamoClientFor, ensureTables, startDynamoServer } from '../../scripts/stack/dynamodb';
import { S3_CREDENTIALS, s3ClientFor, startS3Server } from '../../scripts/stack/s3';
import { startSmtpTarget } from '../../scripts/stack/smtp-target';
import { localStackEnv } from '../../scripts/stack/worker-env';

const DOMAIN = 'example.com';
const AWAY = 'away@example.com'; // out of office, forwards to FRANK
const FRANK = 'frank@example.com';
const BOB = 'bob@example.com';
const SENDER = 'colleague@example.com'; // in our domain: the reply goes through the internal port

test('a fast-path sequence run twice within one run does everything once and ends with the real status', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-fastpath-'));
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  const mailboxes = [AWAY, FRANK, BOB, SENDER];
  const [s3srv, ddb, mail, internal] = await Promise.all([
    startS3Server({ directory: join(dir, 's3') }),
    startDynamoServer(),
    startSmtpTarget({ directory: join(dir, 'mail'), localDomains: [DOMAIN], mailboxes }),
    startSmtpTarget({ directory: join(dir, 'internal'), localDomains: [DOMAIN], mailboxes }),
  ]);
  const config = loadConfig({
    ...localStackEnv({
      s3: s3srv.endpoint,
      dynamodb: ddb.endpoint,
      domains: [DOMAIN],
      smtpPort: mail.port,
      internalSmtpPort: internal.port,
    }),
    WORKER_NAME: 'fast-path-test',
    FAST_PATH_MAX_BYTES: '20000',
    MAX_COPIES_PER_HOUR: '1',
  });
  const s3 = s3ClientFor(s3srv.endpoint);
  const dynamo = dynamoClientFor(ddb.endpoint);
  const transports = createTransports(config);
  t.after(async () => {
    transports.close();
    await Promise.all([s3srv.stop(), ddb.stop(), mail.stop(), internal.stop()]);
    await rm(dir, { recursive: true, force: true });
  });
  await ensureTables(dynamo, DEFAULT_TABLES);
  await dynamo.send(
    new PutItemCommand({
      TableName: DEFAULT_TABLES.rules,
      Item: marshall({
        email_address: AWAY,
        ooo_active: true,
        ooo_message: 'Away.',
        ooo_content_type: 'text',
        forwards: [FRANK],
      }),
    }),
  );
  const bucket = bucketForDomain(DOMAIN);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const messageId = '<twice@example.com>';
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: 'k1',
      Body: rawMail({ from: SENDER, to: [AWAY, BOB], subject: 'Lunch?', messageId }),
    }),
  );
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: 'big',
      Body: rawMail({ from: SENDER, to: [BOB], subject: 'Big', body: 'x'.repeat(30_000) }),
    }),
  );

  const acts = createInboundActivities({ s3, dynamo, config, transports });
  const ref = { domain: DOMAIN, bucket, key: 'k1' };
  const workflowId = `inbound/${bucket}/k1`;
  // A local activity of the given run, as the worker runs it (no heartbeats, info.isLocal).
  const local = <A extends unknown[], R>(runId: string, fn: (...a: A) => Promise<R>, ...args: A) =>
    new MockActivityEnvironment({ isLocal: true, workflowExecution: { workflowId, runId } }).run(
      fn,
      ...args,
    ) as Promise<R>;

  /** The fast path's sequence for k1, as processInboundEmail makes it; returns what each step reported. */
  const sequence = async (runId: string) => {
    // Since BATCHED_PATCH the fetch reads the blocklist and rules too (with the copy counter).
    const fetched = (await local(runId, acts.fetchEmail, { ...ref, fastPath: true, lookups: true })) as FetchResult;
    if (fetched.kind !== 'email') return { fetched };
    assert.deepEqual(fetched.lookups?.blocked, [], 'the fetch read the blocklist');
    const recipients = fetched.summary.recipients;
    const delivered = await local(runId, acts.deliverEmail, {
      ...ref,
      recipients,
      envelopeFrom: fetched.summary.sender,
    });
    const rules = fetched.lookups?.rules;
    assert.ok(rules, 'the fetch read the rules');
    const forward = await local(runId, acts.forwardEmail, {
      bucket,
      key: 'k1',
      recipient: AWAY,
      to: rules[0].forwards[0],
    });
    const reply = await local(runId, acts.sendAutoReply, {
      recipient: AWAY,
      to: SENDER,
      originalSubject: 'Lunch?',
      originalMessageId: messageId,
      message: 'Away.',
      contentType: 'text',
    });
    const status = delivered.every((d) => d.outcome === 'delivered') ? 'delivered' : 'partial';
    await local(runId, acts.tagEmail, {
      domain: DOMAIN,
      bucket,
      key: 'k1',
      record: { status, deliveredCount: delivered.length },
    });
    return { fetched, delivered, forward, reply, status };
  };
  const copiesAt = async (target: typeof mail, to: string) =>
    (await target.deliveries()).filter((d) => d.recipient === to).length;

  const first = await sequence('run-1');
  assert.equal(first.fetched.kind, 'email');
  assert.equal(first.status, 'delivered');
  assert.deepEqual(first.reply, { sent: true });
  const meta = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k1' }))).Metadata!;
  assert.equal(meta.processed, 'true');
  assert.equal(meta.processed_run, 'run-1', 'the tag names the run that wrote it');

  // The worker died before the workflow task completed: the same run runs the steps again.
  const again = await sequence('run-1');
  assert.equal(again.fetched.kind, 'email', 'its own tag is not already_processed');
  if (again.fetched.kind === 'email')
    assert.equal(
      again.fetched.summary.looped,
      undefined,
      'the copy counter counts this object once (MAX_COPIES_PER_HOUR=1)',
    );
  assert.deepEqual(
    again.delivered!.map((d) => [d.recipient, d.outcome, d.detail]),
    [
      [AWAY, 'delivered', 'delivered earlier'],
      [BOB, 'delivered', 'delivered earlier'],
    ],
  );
  assert.equal(again.status, 'delivered', 'the real status, not already_processed');
  assert.deepEqual(again.forward, { route: 'internal' });
  assert.deepEqual(again.reply, { sent: true }, 'its own reply is reported as sent');
  assert.equal(await copiesAt(mail, AWAY), 1, 'one delivery to away');
  assert.equal(await copiesAt(mail, BOB), 1, 'one delivery to bob');
  assert.equal(await copiesAt(internal, FRANK), 1, 'one forward');
  assert.equal(await copiesAt(internal, SENDER), 1, 'one auto-reply');
  assert.equal((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k1' }))).Metadata!.status, 'delivered');

  // Another run for the object (a second trigger under another id) finds it processed, and
  // its reply would be a duplicate within the interval.
  const other = await sequence('run-2');
  assert.equal(other.fetched.kind, 'terminal');
  assert.equal(other.fetched.kind === 'terminal' && other.fetched.status, 'already_processed');
  const otherReply = await local('run-2', acts.sendAutoReply, {
    recipient: AWAY,
    to: SENDER,
    message: 'Away.',
    contentType: 'text',
  });
  assert.equal(otherReply.sent, false);
  assert.match(otherReply.reason ?? '', /already replied/);
  assert.equal(await copiesAt(internal, SENDER), 1);

  // A reply claimed by this run whose sending never finished (the worker died in between) is sent.
  await dynamo.send(
    new PutItemCommand({
      TableName: DEFAULT_TABLES.autoreply,
      Item: {
        pk: { S: `${AWAY}|${BOB}` },
        sent_at: { N: String(Math.floor(Date.now() / 1000)) },
        claimed_by: { S: `${workflowId}|run-3` },
      },
    }),
  );
  assert.deepEqual(
    await local('run-3', acts.sendAutoReply, { recipient: AWAY, to: BOB, message: 'Away.', contentType: 'text' }),
    { sent: true },
  );
  assert.equal(await copiesAt(internal, BOB), 1);

  // An email without rules: fetch, delivery and tag in one local activity (fetchAndDeliver), twice in one run.
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: 'plain',
      Body: rawMail({ from: SENDER, to: [BOB], subject: 'Plain twice' }),
    }),
  );
  const plainRef = { domain: DOMAIN, bucket, key: 'plain' };
  const plainPass = async () => {
    const fetched = (await local('run-5', acts.fetchAndDeliver, plainRef)) as FetchResult;
    assert.equal(fetched.kind, 'email', 'its own tag is not already_processed');
    return fetched.kind === 'email' ? fetched.delivered : undefined;
  };
  const plainBefore = await copiesAt(mail, BOB);
  assert.deepEqual(await plainPass(), { recipients: [{ recipient: BOB, outcome: 'delivered' }], tagged: 'delivered' });
  const plainAgain = await plainPass();
  assert.equal(plainAgain?.tagged, 'delivered');
  assert.equal(plainAgain?.recipients[0].detail, 'delivered earlier');
  assert.equal(await copiesAt(mail, BOB), plainBefore + 1, 'one delivery');
  const plainMeta = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'plain' }))).Metadata!;
  assert.equal(plainMeta.status, 'delivered');
  assert.equal(plainMeta.processed_run, 'run-5');
  assert.equal(plainMeta.delivered_count, '1');

  // Over FAST_PATH_MAX_BYTES the local fetch only looks (HEAD) and says so.
  const big = (await local('run-4', acts.fetchEmail, { domain: DOMAIN, bucket, key: 'big', fastPath: true })) as
    FetchResult | LargeEmail;
  assert.equal(big.kind, 'large');
  assert.ok(big.kind === 'large' && big.size > 20_000);
  // ... and the regular fetch reads it.
  assert.equal(
    ((await local('run-4', acts.fetchEmail, { domain: DOMAIN, bucket, key: 'big' })) as FetchResult).kind,
    'email',
  );
});
