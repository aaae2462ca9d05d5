// The embedded local stack must behave like the real services on the points mailroom
// relies on, or the demo and the other integration tests prove nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { BatchGetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import nodemailer from 'nodemailer';
import { ensureBuckets, s3ClientFor, startS3Server } from '../../scripts/stack/s3';
import { DEFAULT_TABLES, dynamoClientFor, ensureTables, startDynamoServer } from '../../scripts/stack/dynamodb';
import { startSmtpTarget } from '../../scripts/stack/smtp-target';
import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { startSesServer } from '../../scripts/stack/ses';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-stack-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

void test('versitygw: CopyObject with MetadataDirective REPLACE replaces the metadata', async (t) => {
  const s3 = await startS3Server({ directory: await tempDir(t) });
  const client = s3ClientFor(s3.endpoint, 'us-east-1');
  t.after(async () => {
    client.destroy();
    await s3.stop();
  });
  const Bucket = 'example-com-emails';
  const Key = 'inbound/abc123';
  const raw = 'Subject: hi\r\n\r\nhello\r\n';
  await client.send(new CreateBucketCommand({ Bucket }));
  await client.send(new PutObjectCommand({ Bucket, Key, Body: raw, Metadata: { status: 'new', keep: 'no' } }));

  await client.send(
    new CopyObjectCommand({
      Bucket,
      Key,
      CopySource: `${Bucket}/${Key}`,
      MetadataDirective: 'REPLACE',
      Metadata: { status: 'processed' },
    }),
  );

  const head = await client.send(new HeadObjectCommand({ Bucket, Key }));
  assert.deepEqual(head.Metadata, { status: 'processed' });
  const body = await client.send(new GetObjectCommand({ Bucket, Key }));
  assert.equal(await body.Body!.transformToString(), raw);
});

void test('versitygw: keys with +, ?, #, spaces and %2B stay distinct objects through put, copy-in-place and head', async (t) => {
  const s3 = await startS3Server({ directory: await tempDir(t) });
  const client = s3ClientFor(s3.endpoint, 'us-east-1');
  t.after(async () => {
    client.destroy();
    await s3.stop();
  });
  const Bucket = 'example-com-emails';
  await ensureBuckets(client, [Bucket]);
  await ensureBuckets(client, [Bucket]); // idempotent
  // "x+y", "x y" and "x%2By" are three keys: a server that decodes '+' as a space or
  // decodes twice would merge them.
  const keys = ['odd/x+y', 'odd/x y', 'odd/x%2By', 'odd/what?a=1#frag', 'odd/ü +?#%2B'];
  for (const Key of keys)
    await client.send(new PutObjectCommand({ Bucket, Key, Body: `body of ${Key}`, Metadata: { status: 'new' } }));
  for (const Key of keys) {
    // As activities/inbound/tag.ts tagEmail builds it: each path segment URI-encoded.
    const CopySource = `${Bucket}/${Key.split('/').map(encodeURIComponent).join('/')}`;
    await client.send(
      new CopyObjectCommand({
        Bucket,
        Key,
        CopySource,
        MetadataDirective: 'REPLACE',
        Metadata: { status: 'processed', key: encodeURIComponent(Key) },
      }),
    );
  }
  for (const Key of keys) {
    const head = await client.send(new HeadObjectCommand({ Bucket, Key }));
    assert.deepEqual(head.Metadata, { status: 'processed', key: encodeURIComponent(Key) }, Key);
    const body = await client.send(new GetObjectCommand({ Bucket, Key }));
    assert.equal(await body.Body!.transformToString(), `body of ${Key}`);
  }
  const listed = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'odd/' }));
  assert.deepEqual(listed.Contents?.map((o) => o.Key).sort(), [...keys].sort());
});

void test('dynalite: BatchGetItem reads items from tables made by ensureTables', async (t) => {
  const ddb = await startDynamoServer();
  const client = dynamoClientFor(ddb.endpoint, 'us-east-1');
  t.after(async () => {
    client.destroy();
    await ddb.stop();
  });
  await ensureTables(client, DEFAULT_TABLES);
  await ensureTables(client, DEFAULT_TABLES); // idempotent
  const blocked = { email_address: 'user@example.com', blocked_patterns: ['*@spam.example', 'bad@x.org'] };
  const rules = {
    email_address: 'user@example.com',
    ooo_active: true,
    ooo_message: 'Away',
    ooo_content_type: 'text',
    forwards: ['x@external.example'],
  };
  await client.send(new PutItemCommand({ TableName: DEFAULT_TABLES.blocked, Item: marshall(blocked) }));
  await client.send(new PutItemCommand({ TableName: DEFAULT_TABLES.rules, Item: marshall(rules) }));

  const res = await client.send(
    new BatchGetItemCommand({
      RequestItems: {
        [DEFAULT_TABLES.blocked]: {
          Keys: [marshall({ email_address: 'user@example.com' }), marshall({ email_address: 'nobody@example.com' })],
        },
        [DEFAULT_TABLES.rules]: { Keys: [marshall({ email_address: 'user@example.com' })] },
      },
    }),
  );
  assert.deepEqual(
    res.Responses?.[DEFAULT_TABLES.blocked]?.map((i) => unmarshall(i)),
    [blocked],
  );
  assert.deepEqual(
    res.Responses?.[DEFAULT_TABLES.rules]?.map((i) => unmarshall(i)),
    [rules],
  );
});

void test('smtp-target: delivers to mailboxes, rejects unknown local users, honours injected failures', async (t) => {
  const dir = await tempDir(t);
  const target = await startSmtpTarget({
    directory: dir,
    localDomains: ['example.com'],
    mailboxes: ['Alice@example.com'],
  });
  t.after(() => target.stop());
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: target.port,
    secure: false,
    ignoreTLS: true,
  });
  t.after(() => transport.close());
  const message = { from: 'sender@external.example', subject: 'hello', text: 'body text' };

  const partial = await transport.sendMail({
    ...message,
    to: ['alice@example.com', 'ghost@example.com', 'someone@external.example'],
  });
  assert.deepEqual(partial.accepted, ['alice@example.com', 'someone@external.example']);
  assert.deepEqual(partial.rejected, ['ghost@example.com']);
  const rejection = partial.rejectedErrors?.[0] as (Error & { responseCode?: number; response?: string }) | undefined;
  assert.equal(rejection?.responseCode, 550);
  assert.match(
    rejection?.response ?? '',
    /^550 5\.1\.1 <ghost@example\.com>: Recipient address rejected: User unknown/,
  );

  const [stored] = await target.messagesFor('ALICE@example.com');
  assert.match(stored, /Subject: hello/);
  assert.match(stored, /body text/);
  assert.equal(
    (await target.messagesFor('someone@external.example')).length,
    1,
    'outbound catch-all keeps relayed mail',
  );
  assert.deepEqual(await target.messagesFor('ghost@example.com'), []);
  assert.equal((await readdir(join(dir, 'alice@example.com'))).filter((n) => /^\d+-\d+\.eml$/.test(n)).length, 1);

  target.setRecipientFailure('alice@example.com', {
    code: 451,
    message: '4.3.0 <alice@example.com>: Temporary lookup failure',
    times: 1,
  });
  await assert.rejects(
    transport.sendMail({ ...message, to: 'alice@example.com' }),
    (err: Error & { responseCode?: number }) => {
      assert.equal(err.responseCode, 451);
      return true;
    },
  );
  await transport.sendMail({ ...message, subject: 'second', to: 'alice@example.com' });
  const all = await target.messagesFor('alice@example.com');
  assert.equal(all.length, 2);
  assert.match(all[1], /Subject: second/);
  assert.ok(target.connections >= 3);
});

void test('smtp-target: LMTP mode accepts mailboxes and rejects unknown users', async (t) => {
  const target = await startSmtpTarget({
    lmtp: true,
    directory: await tempDir(t),
    localDomains: ['example.com'],
    mailboxes: ['bob@example.com'],
  });
  t.after(() => target.stop());
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: target.port, lmtp: true, ignoreTLS: true });
  t.after(() => transport.close());
  const info = await transport.sendMail({
    from: 'a@external.example',
    to: ['bob@example.com', 'nope@example.com'],
    subject: 'lmtp',
    text: 'x',
  });
  assert.deepEqual(info.accepted, ['bob@example.com']);
  assert.deepEqual(info.rejected, ['nope@example.com']);
  assert.equal((await target.messagesFor('bob@example.com')).length, 1);
});

void test('aws-ses-v2-local: the SESv2 client sends raw mail to it and it keeps what it received', async (t) => {
  const ses = await startSesServer();
  const client = new SESv2Client({
    region: 'us-east-1',
    endpoint: ses.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  t.after(async () => {
    client.destroy();
    await ses.stop();
  });
  const raw = Buffer.from(
    'From: "Bob via example.com" <bob@example.com>\r\nTo: out@elsewhere.example\r\nSubject: forwarded\r\n\r\nhello\r\n',
  );
  const sent = await client.send(
    new SendEmailCommand({
      FromEmailAddress: 'bob@example.com',
      Destination: { ToAddresses: ['out@elsewhere.example'] },
      Content: { Raw: { Data: raw } },
    }),
  );
  assert.ok(sent.MessageId);
  const [stored] = await ses.emails();
  assert.equal(stored.from, '"Bob via example.com" <bob@example.com>');
  assert.equal(stored.subject, 'forwarded');
  // Like SES, it refuses raw mail without a From.
  await assert.rejects(
    client.send(
      new SendEmailCommand({
        Destination: { ToAddresses: ['x@elsewhere.example'] },
        Content: { Raw: { Data: Buffer.from('Subject: no from\r\n\r\nx') } },
      }),
    ),
  );
  await ses.clear();
  assert.deepEqual(await ses.emails(), []);
});
