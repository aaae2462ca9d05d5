// The chaos harness's fault injectors (scripts/stack/fault-proxy.ts and the SMTP target's
// fault hooks) against the real local servers: what they inject must look to the AWS SDK,
// nodemailer and our own retry code exactly like the real failure would.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import nodemailer from 'nodemailer';
import { batchGetAll, batchWriteAll } from '../../lib/aws/dynamodb';
import {
  DEFAULT_TABLES,
  DUMMY_CREDENTIALS,
  dynamoClientFor,
  ensureTables,
  type LocalDynamo,
  startDynamoServer,
} from '../../scripts/stack/dynamodb';
import { startHttpFaultProxy, startTcpFaultProxy } from '../../scripts/stack/fault-proxy';
import { type LocalS3, S3_CREDENTIALS, s3ClientFor, startS3Server } from '../../scripts/stack/s3';
import { type SmtpTarget, startSmtpTarget } from '../../scripts/stack/smtp-target';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mailroom-faults-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** An S3 client like s3ClientFor's, with the SDK's retries capped at `maxAttempts`. */
const s3With = (endpoint: string, maxAttempts: number) =>
  new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
  });

const errorOf = async (p: Promise<unknown>): Promise<Error & Record<string, unknown>> => {
  try {
    await p;
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  assert.fail('expected the call to fail');
};

const netCode = (err: Error & Record<string, unknown>): string => `${String(err.code)} ${err.message}`;

describe('HTTP fault proxy in front of the S3 server (versitygw)', () => {
  let s3: LocalS3;
  let proxy: Awaited<ReturnType<typeof startHttpFaultProxy>>;
  let client: S3Client;
  const Bucket = 'example-com-emails';

  before(async () => {
    s3 = await startS3Server({ directory: join(dir, 's3') });
    proxy = await startHttpFaultProxy({ target: s3.endpoint, kind: 's3', seed: 7 });
    client = s3ClientFor(proxy.endpoint);
    await client.send(new CreateBucketCommand({ Bucket }));
  });
  after(async () => {
    client.destroy();
    await proxy.stop();
    await s3.stop();
  });

  test('Put/Get/Head/Copy with REPLACE go through with valid signatures, bodies streamed both ways', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 'x');
    await client.send(new PutObjectCommand({ Bucket, Key: 'big', Body: big, Metadata: { status: 'new' } }));
    const got = await client.send(new GetObjectCommand({ Bucket, Key: 'big' }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(big));
    assert.deepEqual((await client.send(new HeadObjectCommand({ Bucket, Key: 'big' }))).Metadata, { status: 'new' });

    await client.send(
      new CopyObjectCommand({
        Bucket,
        Key: 'big',
        CopySource: `${Bucket}/big`,
        MetadataDirective: 'REPLACE',
        Metadata: { status: 'processed' },
      }),
    );
    assert.deepEqual((await client.send(new HeadObjectCommand({ Bucket, Key: 'big' }))).Metadata, {
      status: 'processed',
    });
    assert.ok(proxy.stats.requests >= 6);
    assert.equal(proxy.stats.errors, 0);
  });

  test('errorRate 1: 503 SlowDown, which the SDK classifies as a throttle and retries', async (t) => {
    await client.send(new PutObjectCommand({ Bucket, Key: 'small', Body: 'hello' }));
    await proxy.set({ errorRate: 1 });
    t.after(() => proxy.set({ errorRate: 0 }));
    const once = s3With(proxy.endpoint, 1);
    const twice = s3With(proxy.endpoint, 2);
    t.after(() => {
      once.destroy();
      twice.destroy();
    });

    const err = await errorOf(once.send(new GetObjectCommand({ Bucket, Key: 'small' })));
    assert.equal(err.name, 'SlowDown');
    const meta = err.$metadata as { httpStatusCode: number; attempts: number };
    assert.equal(meta.httpStatusCode, 503);
    assert.equal(meta.attempts, 1);
    // S3 models no SlowDown error (no $retryable trait): the SDK goes by the code, a throttle, and the 503.
    assert.equal(err.$fault, 'server');

    const put = await errorOf(
      once.send(new PutObjectCommand({ Bucket, Key: 'small', Body: 'a body the proxy must drain' })),
    );
    assert.equal(put.name, 'SlowDown');

    // No body on HEAD: the SDK only has the status, and still retries it as transient.
    const head = await errorOf(twice.send(new HeadObjectCommand({ Bucket, Key: 'small' })));
    assert.equal((head.$metadata as { httpStatusCode: number }).httpStatusCode, 503);
    assert.equal((head.$metadata as { attempts: number }).attempts, 2);

    const retried = await errorOf(twice.send(new GetObjectCommand({ Bucket, Key: 'small' })));
    assert.equal(retried.name, 'SlowDown');
    assert.equal((retried.$metadata as { attempts: number }).attempts, 2, 'the SDK retried the SlowDown');
  });

  test('errorRate 0.3: calls succeed through the SDK retry strategy', async (t) => {
    await proxy.set({ errorRate: 0.3 });
    t.after(() => proxy.set({ errorRate: 0 }));
    // The standard strategy with a few more attempts than its default 3, so 0.3³ per call cannot fail the test.
    const retrying = s3With(proxy.endpoint, 6);
    t.after(() => retrying.destroy());
    const before = proxy.stats.errors;
    let retriedCalls = 0;
    for (let i = 0; i < 4; i++) {
      const put = await retrying.send(new PutObjectCommand({ Bucket, Key: `r${i}`, Body: `body ${i}` }));
      const get = await retrying.send(new GetObjectCommand({ Bucket, Key: `r${i}` }));
      assert.equal(await get.Body!.transformToString(), `body ${i}`);
      retriedCalls += Number(put.$metadata.attempts! > 1) + Number(get.$metadata.attempts! > 1);
    }
    assert.ok(proxy.stats.errors > before, 'faults were injected');
    assert.ok(retriedCalls > 0);
  });

  test('down: connections refused and open ones dropped; up: works again on the same port', async (t) => {
    // An upload in flight when the service goes down is cut off.
    const inFlight = http.request({
      host: '127.0.0.1',
      port: proxy.port,
      method: 'PUT',
      path: `/${Bucket}/cut`,
      headers: { 'Content-Length': '100' },
    });
    const cutOff = new Promise<Error>((resolve) => inFlight.on('error', resolve));
    inFlight.write('partial');
    const seen = proxy.stats.requests;
    while (proxy.stats.requests === seen) await new Promise((r) => setImmediate(r));

    await proxy.set({ down: true });
    t.after(() => proxy.set({ down: false }));
    assert.match((await cutOff).message, /socket hang up|ECONNRESET/);
    assert.equal(proxy.stats.refusedWhileDown, 1);

    const fresh = s3With(proxy.endpoint, 1);
    t.after(() => fresh.destroy());
    assert.match(netCode(await errorOf(fresh.send(new HeadObjectCommand({ Bucket, Key: 'small' })))), /ECONNREFUSED/);

    await proxy.set({ down: false });
    // The long-lived client had a pooled connection that was dropped; the SDK reconnects.
    assert.equal(
      await (await client.send(new GetObjectCommand({ Bucket, Key: 'small' }))).Body!.transformToString(),
      'hello',
    );
    await fresh.send(new HeadObjectCommand({ Bucket, Key: 'small' }));
  });
});

describe('HTTP fault proxy in front of dynalite', () => {
  let dyn: LocalDynamo;
  let proxy: Awaited<ReturnType<typeof startHttpFaultProxy>>;
  let client: DynamoDBClient;
  const table = DEFAULT_TABLES.blocked;
  const addresses = Array.from({ length: 30 }, (_, i) => `user${i}@example.com`);

  before(async () => {
    dyn = await startDynamoServer();
    const direct = dynamoClientFor(dyn.endpoint);
    await ensureTables(direct);
    for (const a of addresses)
      await direct.send(
        new PutItemCommand({
          TableName: table,
          Item: marshall({ email_address: a, blocked_patterns: ['*@spam.example'] }),
        }),
      );
    direct.destroy();
    proxy = await startHttpFaultProxy({ target: dyn.endpoint, kind: 'dynamodb', seed: 3 });
    client = dynamoClientFor(proxy.endpoint);
  });
  after(async () => {
    client.destroy();
    await proxy.stop();
    await dyn.stop();
  });

  test('errorRate 1: ProvisionedThroughputExceededException, retried by the SDK as a throttle', async (t) => {
    await proxy.set({ errorRate: 1 });
    t.after(() => proxy.set({ errorRate: 0 }));
    const once = new DynamoDBClient({
      endpoint: proxy.endpoint,
      region: 'us-east-1',
      credentials: DUMMY_CREDENTIALS,
      maxAttempts: 1,
    });
    const twice = new DynamoDBClient({
      endpoint: proxy.endpoint,
      region: 'us-east-1',
      credentials: DUMMY_CREDENTIALS,
      maxAttempts: 2,
    });
    t.after(() => {
      once.destroy();
      twice.destroy();
    });
    const err = await errorOf(
      once.send(new GetItemCommand({ TableName: table, Key: marshall({ email_address: addresses[0] }) })),
    );
    assert.ok(err instanceof ProvisionedThroughputExceededException, `got ${err.name}`);
    assert.equal((err.$metadata as { httpStatusCode: number }).httpStatusCode, 400);
    const retried = await errorOf(
      twice.send(new GetItemCommand({ TableName: table, Key: marshall({ email_address: addresses[0] }) })),
    );
    assert.equal((retried.$metadata as { attempts: number }).attempts, 2);
  });

  test('partialBatchRate 1: UnprocessedKeys in the shape of the request, the rest answered by dynalite', async (t) => {
    await proxy.set({ partialBatchRate: 1 });
    t.after(() => proxy.set({ partialBatchRate: 0 }));
    const wanted = addresses.slice(0, 10);
    for (let i = 0; i < 5; i++) {
      const out = await client.send(
        new BatchGetItemCommand({
          RequestItems: {
            [table]: {
              Keys: wanted.map((a) => marshall({ email_address: a })),
              ProjectionExpression: '#a',
              ExpressionAttributeNames: { '#a': 'email_address' },
            },
          },
        }),
      );
      const unprocessed = out.UnprocessedKeys?.[table];
      assert.ok(unprocessed?.Keys?.length, 'some keys unprocessed');
      assert.equal(unprocessed.ProjectionExpression, '#a');
      assert.deepEqual(unprocessed.ExpressionAttributeNames, { '#a': 'email_address' });
      const answered = (out.Responses?.[table] ?? []).map((it) => it.email_address.S!);
      for (const it of out.Responses?.[table] ?? [])
        assert.deepEqual(Object.keys(it), ['email_address'], 'projection applied upstream');
      const left = unprocessed.Keys.map((k) => k.email_address.S!);
      assert.deepEqual([...answered, ...left].sort(), [...wanted].sort());
    }
    assert.ok(proxy.stats.partialBatches >= 5);
  });

  test('lib/aws/dynamodb.ts batchGetAll retries UnprocessedKeys until it has every item', async (t) => {
    // Rate 1 moves at least one key every round, so no lookup can ever finish: batchGetAll must give up loudly.
    await proxy.set({ partialBatchRate: 1 });
    t.after(() => proxy.set({ partialBatchRate: 0 }));
    await assert.rejects(
      batchGetAll(client, table, 'email_address', addresses, 3),
      /keys still unprocessed after 3 rounds/,
    );

    await proxy.set({ partialBatchRate: 0.5 });
    const before = proxy.stats.partialBatches;
    for (let i = 0; i < 4; i++) {
      const items = await batchGetAll(client, table, 'email_address', [...addresses, 'nobody@example.com'], 30);
      assert.deepEqual(items.map((it) => it.email_address).sort(), [...addresses].sort());
    }
    assert.ok(proxy.stats.partialBatches > before, 'partial batches were injected');
  });

  // What is in the delivery-log table, read past the proxy.
  const written = async (keys: string[]) => {
    const direct = dynamoClientFor(dyn.endpoint);
    try {
      return new Set((await batchGetAll(direct, DEFAULT_TABLES.delivery, 'pk', keys)).map((it) => String(it.pk)));
    } finally {
      direct.destroy();
    }
  };

  test('partialBatchRate 1 on BatchWriteItem: UnprocessedItems in the shape of the request, only the rest written', async (t) => {
    await proxy.set({ partialBatchRate: 1 });
    t.after(() => proxy.set({ partialBatchRate: 0 }));
    const keys = Array.from({ length: 10 }, (_, i) => `partial-write-${i}`);
    const out = await client.send(
      new BatchWriteItemCommand({
        RequestItems: { [DEFAULT_TABLES.delivery]: keys.map((k) => ({ PutRequest: { Item: { pk: { S: k } } } })) },
      }),
    );
    const left = (out.UnprocessedItems?.[DEFAULT_TABLES.delivery] ?? []).map((w) => w.PutRequest!.Item!.pk.S!);
    assert.ok(left.length > 0, 'some writes unprocessed');
    const stored = await written(keys);
    assert.deepEqual(
      [...stored, ...left].sort(),
      [...keys].sort(),
      'every item either written or handed back, never both',
    );
  });

  test('lib/aws/dynamodb.ts batchWriteAll retries UnprocessedItems until every item is written', async (t) => {
    await proxy.set({ partialBatchRate: 1 });
    t.after(() => proxy.set({ partialBatchRate: 0 }));
    const item = (k: string) => ({ pk: { S: k } });
    await assert.rejects(
      batchWriteAll(client, DEFAULT_TABLES.delivery, [item('never-1'), item('never-2')], 3),
      /items still unwritten after 3 rounds/,
    );

    await proxy.set({ partialBatchRate: 0.5 });
    const keys = Array.from({ length: 60 }, (_, i) => `batch-write-${i}`); // three chunks of at most 25
    const before = proxy.stats.partialBatches;
    await batchWriteAll(client, DEFAULT_TABLES.delivery, keys.map(item), 30);
    assert.equal((await written(keys)).size, 60);
    assert.ok(proxy.stats.partialBatches > before, 'partial batches were injected');
  });
});

describe('TCP fault proxy and SMTP target faults', () => {
  let target: SmtpTarget;
  const ALICE = 'alice@example.com';
  const BOB = 'bob@example.com';
  let n = 0;
  const mail = (to: string[], subject = `m${++n}`) => ({
    from: 'sender@example.org',
    to,
    subject,
    text: 'hello',
    messageId: `<${subject}.${process.pid}@test.example>`,
  });

  before(async () => {
    target = await startSmtpTarget({
      directory: join(dir, 'mail'),
      localDomains: ['example.com'],
      mailboxes: [ALICE, BOB],
    });
  });
  after(() => target.stop());

  test('TCP proxy: mail goes through; cut() breaks the open connection; refuse() refuses, then accepts again', async (t) => {
    const proxy = await startTcpFaultProxy({ target: { host: '127.0.0.1', port: target.port } });
    t.after(() => proxy.stop());
    const pooled = nodemailer.createTransport({ pool: true, host: proxy.host, port: proxy.port, maxConnections: 1 });
    t.after(() => pooled.close());

    await pooled.sendMail(mail([ALICE], 'through-proxy'));
    assert.equal(proxy.connections, 1);
    assert.ok((await target.messagesFor(ALICE)).some((m) => m.includes('Subject: through-proxy')));

    // Cut while the server holds its reply: the client's send fails although the message was stored.
    let heldUp!: () => void;
    const hold = new Promise<void>((r) => (heldUp = r));
    const hookRan = new Promise<void>((ran) =>
      target.onBeforeAccept(async () => {
        ran();
        await hold;
      }),
    );
    t.after(() => target.onBeforeAccept(null));
    const sending = pooled.sendMail(mail([ALICE], 'cut-mid-reply'));
    const failed = errorOf(sending);
    await hookRan;
    proxy.cut();
    heldUp();
    const err = await failed;
    assert.ok(err.message.length > 0, 'the client saw an error');
    target.onBeforeAccept(null);
    assert.ok(
      (await target.messagesFor(ALICE)).some((m) => m.includes('Subject: cut-mid-reply')),
      'stored: the duplicate-delivery window',
    );

    // The pool opens a new connection through the proxy.
    await pooled.sendMail(mail([ALICE], 'after-cut'));
    assert.ok(proxy.connections >= 2);

    await proxy.refuse(true);
    const single = nodemailer.createTransport({ host: proxy.host, port: proxy.port });
    const refused = await errorOf(single.sendMail(mail([ALICE])));
    assert.match(netCode(refused), /ECONNREFUSED/);
    await proxy.refuse(false);
    await single.sendMail(mail([ALICE], 'after-refuse'));
    assert.ok((await target.messagesFor(ALICE)).some((m) => m.includes('Subject: after-refuse')));
  });

  test('setTemporaryFailure: every recipient is deferred with the given 4xx until cleared', async (t) => {
    const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: target.port });
    target.setTemporaryFailure({ code: 451, message: '4.3.0 Mailbox server busy, try later' });
    t.after(() => target.setTemporaryFailure(null));
    const before = (await target.messagesFor(BOB)).length;
    const err = await errorOf(smtp.sendMail(mail([BOB])));
    assert.equal(err.responseCode, 451);
    assert.match(String(err.response), /4\.3\.0 Mailbox server busy/);
    assert.equal((await target.messagesFor(BOB)).length, before);
    assert.throws(() => target.setTemporaryFailure({ code: 550 }), /4xx/);

    target.setTemporaryFailure(null);
    await smtp.sendMail(mail([BOB]));
    assert.equal((await target.messagesFor(BOB)).length, before + 1);
  });

  test('onBeforeAccept runs after storing and before the client hears 250', async (t) => {
    const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: target.port });
    let settled = false;
    let seen: { recipients: string[]; storedBefore: boolean; settledBefore: boolean; from?: string } | undefined;
    target.onBeforeAccept(async (info) => {
      const stored = await target.messagesFor(BOB);
      seen = {
        recipients: info.recipients,
        from: info.from,
        storedBefore: stored.some((m) => m.includes('Subject: held')),
        settledBefore: settled,
      };
      assert.ok(info.raw.includes('Subject: held'));
    });
    t.after(() => target.onBeforeAccept(null));
    const sent = await smtp.sendMail(mail([BOB, ALICE], 'held')).finally(() => (settled = true));
    assert.match(sent.response, /^250/);
    assert.deepEqual(seen, {
      recipients: [BOB, ALICE],
      from: 'sender@example.org',
      storedBefore: true,
      settledBefore: false,
    });
  });

  test('refuse(): ECONNREFUSED while on, the same port afterwards', async () => {
    const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: target.port });
    await target.refuse(true);
    try {
      assert.match(netCode(await errorOf(smtp.sendMail(mail([ALICE])))), /ECONNREFUSED/);
    } finally {
      await target.refuse(false);
    }
    await smtp.sendMail(mail([ALICE], 'after-target-refuse'));
  });

  test('deliveries(): every stored copy with recipient and Message-ID, also behind prepended and folded headers', async () => {
    const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: target.port });
    const raw =
      'Received: from mx.peer.example by test; Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: x@example.org\r\nMessage-ID:\r\n <folded.1@test.example>\r\nSubject: raw\r\n\r\nMessage-ID: <in-body@nowhere>\r\n';
    await smtp.sendMail({ envelope: { from: 'x@example.org', to: [ALICE, BOB] }, raw });
    await smtp.sendMail({ envelope: { from: 'x@example.org', to: [BOB] }, raw });
    await smtp.sendMail({ envelope: { from: 'x@example.org', to: [BOB] }, raw: 'Subject: no id\r\n\r\nbody\r\n' });

    const all = await target.deliveries();
    const folded = all.filter((d) => d.messageId === '<folded.1@test.example>');
    assert.deepEqual(folded.map((d) => d.recipient).sort(), [ALICE, BOB, BOB]);
    assert.ok(all.some((d) => d.recipient === BOB && d.messageId === undefined));
    assert.ok(all.some((d) => d.recipient === ALICE && d.messageId === `<held.${process.pid}@test.example>`));
    assert.equal(all.length, (await target.messagesFor(ALICE)).length + (await target.messagesFor(BOB)).length);
  });
});
