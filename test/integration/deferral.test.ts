// Deferral against the real servers (issue 21): with DELIVERY_MAX_AGE set to a minute, an email
// whose recipient the mail server keeps deferring waits as `deferred` (S3 tag, MailStatus), then
// ends `failed` with the last reason, and nobody is sent anything about it: no DSN, no
// out-of-office reply. A delivery log that cannot be read defers instead of risking a copy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { DEFAULT_TABLES, ensureTables } from '../../scripts/stack/dynamodb';
import { rawMail } from '../../scripts/stack/demo-emails';
import { MAIL_FROM_HASH, MAIL_STATUS, MAIL_TO_HASH } from '../../contracts/search-attributes';
import { hashesForRun } from '../../lib/mail/address-hash';
import { parseCodecKeys } from '../../lib/temporal/codec';
import { findQuery } from '../../lib/temporal/find';
import { deferredEmailsQuery } from '../../lib/observability/metrics';
import { startInbound } from '../../starters/start-inbound';
import { BUCKET, DOMAIN, inboundWorkflowId, type InboundStack, startInboundStack } from '../support/inbound-stack';

const ALICE = 'alice@example.com';
const DAVE = 'dave@example.com'; // out of office
const OUTSIDE = 'someone@sender.example';

let stack: InboundStack;

before(async () => {
  stack = await startInboundStack({
    mailboxes: [ALICE, DAVE],
    env: { DELIVERY_MAX_AGE: '60s', DELIVERY_RETRY_FIRST_DELAY: '3s', DELIVERY_RETRY_MAX_DELAY: '10s' },
  });
  await stack.putItem(DEFAULT_TABLES.rules, {
    email_address: DAVE,
    ooo_active: true,
    ooo_message: 'I am away until Monday.',
    ooo_content_type: 'text',
    forwards: [],
  });
});

after(async () => {
  await stack?.stop();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('DELIVERY_MAX_AGE: deferred while it waits, then failed with the reason; no DSN or reply to anyone', async () => {
  stack.mail.setRecipientFailure(DAVE, { code: 451, message: '4.3.0 mailbox locked, try later' });
  try {
    const key = await stack.put(rawMail({ from: OUTSIDE, to: [DAVE], subject: 'Waits a minute' }));
    const { workflowId } = await startInbound(stack.env.client, stack.config.taskQueue, {
      domain: DOMAIN,
      bucket: BUCKET,
      key,
    });
    const handle = stack.env.client.workflow.getHandle(workflowId);
    // While it waits: the S3 tag says deferred and not processed, and so does MailStatus.
    const waiting = await until('the deferred tag', async () => {
      const m = await stack.metadata(key);
      return m?.status === 'deferred' ? m : undefined;
    });
    assert.equal(waiting.processed, 'false', 'the sweep must not take a waiting email for processed');
    assert.match(waiting.error ?? '', /451 4\.3\.0 mailbox locked/);
    assert.ok(Number(waiting.arrived_at) > 0);
    assert.equal((await handle.describe()).typedSearchAttributes.get(MAIL_STATUS), 'deferred');
    // Findable by address while it waits (npm run find): the hashes came with the deferred upsert.
    const keys = parseCodecKeys(stack.childEnv.MAILROOM_CODEC_KEYS!);
    const attrs = (await handle.describe()).typedSearchAttributes;
    assert.deepEqual(attrs.get(MAIL_FROM_HASH), hashesForRun(keys, [OUTSIDE]));
    assert.deepEqual(attrs.get(MAIL_TO_HASH), hashesForRun(keys, [DAVE]));
    await until('find to list the waiting email', async () => {
      const { count } = await stack.env.client.workflow.count(
        findQuery(keys, { from: [OUTSIDE], status: ['deferred'] }),
      );
      return count === 1 ? count : undefined;
    });
    // What mailroom_deferred_emails counts (workers/main.ts): visibility catches up within a moment.
    await until('the deferred-emails count', async () => {
      const { count } = await stack.env.client.workflow.count(deferredEmailsQuery(stack.config.taskQueue));
      return count === 1 ? count : undefined;
    });
    // A second trigger meanwhile is a no-op: the running workflow id refuses it.
    const again = await startInbound(stack.env.client, stack.config.taskQueue, { domain: DOMAIN, bucket: BUCKET, key });
    assert.equal(again.started, false);

    const result = await handle.result();
    assert.equal(result.status, 'failed');
    assert.equal(result.recipients[0].outcome, 'failed');
    assert.match(
      result.reason ?? '',
      /^dave@example\.com: deferred since \S+Z, given up after DELIVERY_MAX_AGE \(60 s\): 451 4\.3\.0 mailbox locked, try later$/,
    );
    assert.deepEqual(result.autoReplies, [], 'no out-of-office reply for mail that never arrived');
    const meta = await stack.metadata(key);
    assert.equal(meta?.status, 'failed');
    assert.equal(meta?.processed, 'true');
    assert.match(meta?.error ?? '', /given up after DELIVERY_MAX_AGE/);
    assert.deepEqual(await stack.ses.emails(), [], 'nothing sent out through SES');
    assert.deepEqual(await stack.mail.deliveries(), [], 'nothing delivered to anyone, no DSN either');
    assert.deepEqual(await stack.internal.deliveries(), []);
    assert.equal((await handle.describe()).typedSearchAttributes.get(MAIL_STATUS), 'failed');
  } finally {
    stack.mail.setRecipientFailure(DAVE, null);
  }
});

test('an unreadable delivery log defers the delivery (no blind second copy), delivered once it is back', async () => {
  const key = await stack.put(rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Log first' }));
  await stack.dynamo.send(new DeleteTableCommand({ TableName: DEFAULT_TABLES.delivery }));
  try {
    const { workflowId } = await startInbound(stack.env.client, stack.config.taskQueue, {
      domain: DOMAIN,
      bucket: BUCKET,
      key,
    });
    assert.equal(workflowId, inboundWorkflowId(BUCKET, key));
    const handle = stack.env.client.workflow.getHandle(workflowId);
    await until(
      'MailStatus deferred',
      async () => ((await handle.describe()).typedSearchAttributes.get(MAIL_STATUS) === 'deferred' ? true : undefined),
      90_000,
    );
    assert.deepEqual(await stack.mail.messagesFor(ALICE), [], 'not delivered without the log');
  } finally {
    await ensureTables(stack.dynamo, DEFAULT_TABLES);
  }
  const result = await stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).result();
  assert.equal(result.status, 'delivered');
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Log first')).length, 1);
});

test('a deferred email whose run was ended (terminated) is processed by a later trigger: not taken for processed', async () => {
  stack.mail.setRecipientFailure(ALICE, { code: 451, message: '4.3.0 try again later' });
  const key = await stack.put(rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Second run' }));
  const ref = { domain: DOMAIN, bucket: BUCKET, key };
  try {
    const { workflowId } = await startInbound(stack.env.client, stack.config.taskQueue, ref);
    await until('the deferred tag', async () =>
      (await stack.metadata(key))?.status === 'deferred' ? true : undefined,
    );
    await stack.env.client.workflow.getHandle(workflowId).terminate('an operator ended it');
  } finally {
    stack.mail.setRecipientFailure(ALICE, null);
  }
  // The sweep would start it (processed is not true); a trigger under the same id may (the run failed).
  const again = await startInbound(stack.env.client, stack.config.taskQueue, ref);
  assert.equal(again.started, true);
  const result = await stack.env.client.workflow.getHandle(again.workflowId).result();
  assert.equal(result.status, 'delivered', 'fetchEmail did not answer already_processed');
  const meta = await stack.metadata(key);
  assert.equal(meta?.status, 'delivered');
  assert.equal(meta?.processed, 'true');
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Second run')).length, 1);
});
