// The fast path's one lookup (activities/dynamodb.ts lookupRecipients) against dynalite: the
// blocklist and the rules in one activity; rules that cannot be read are left out with the
// reason (the workflow loads them on their own after delivery), a blocklist that cannot be
// read fails it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { createLookupActivities, createRecipientLookupActivities } from '../../activities/inbound/lookups';
import { createRulesActivities } from '../../activities/inbound/rules';
import type { Config } from '../../lib/config';
import { loadConfig } from '../../lib/config';
import { batchGetAll, batchWriteAll, writeBehind } from '../../lib/aws/dynamodb';
import { dynamodbRequests } from '../../lib/observability/metrics';
import { DEFAULT_TABLES, dynamoClientFor, ensureTables, startDynamoServer } from '../../scripts/stack/dynamodb';

test('lookupRecipients reads blocklist and rules at once; unreadable rules are reported, not thrown', async (t) => {
  const ddb = await startDynamoServer();
  t.after(() => ddb.stop());
  const dynamo = dynamoClientFor(ddb.endpoint);
  await ensureTables(dynamo, DEFAULT_TABLES);
  await dynamo.send(
    new PutItemCommand({
      TableName: DEFAULT_TABLES.blocked,
      Item: marshall({ email_address: 'grace@example.com', blocked_patterns: ['*@spam.example'] }),
    }),
  );
  await dynamo.send(
    new PutItemCommand({
      TableName: DEFAULT_TABLES.rules,
      Item: marshall({ email_address: 'dave@example.com', ooo_active: true, ooo_message: 'Away.', forwards: [] }),
    }),
  );
  const env = { DOMAINS: 'example.com', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_DYNAMODB: ddb.endpoint };
  // As activities/index.ts builds it; loadRules reads DynamoDB only (no S3, no SMTP).
  const createDynamoActivities = ({ config }: { config: Config }) => {
    const lookups = createLookupActivities({ dynamo, config });
    const rules = createRulesActivities({ dynamo, config, s3: undefined as never, transports: undefined as never });
    return createRecipientLookupActivities({ checkBlocklist: lookups.checkBlocklist, loadRules: rules.loadRules });
  };
  const input = { senders: ['promo@spam.example'], recipients: ['grace@example.com', 'dave@example.com'] };

  const ok = await createDynamoActivities({ config: loadConfig(env) }).lookupRecipients(input);
  assert.deepEqual(ok.blocked, [
    { recipient: 'grace@example.com', pattern: '*@spam.example', sender: 'promo@spam.example' },
  ]);
  assert.deepEqual(
    ok.rules?.map((r) => r.recipient),
    ['dave@example.com'],
  );
  assert.equal(ok.rulesError, undefined);

  const noRules = await createDynamoActivities({
    config: loadConfig({ ...env, DYNAMODB_RULES_TABLE: 'no-such-rules-table' }),
  }).lookupRecipients(input);
  assert.equal(noRules.blocked.length, 1, 'the blocklist still answers');
  assert.equal(noRules.rules, undefined);
  assert.match(noRules.rulesError ?? '', /no-such-rules-table|not found|ResourceNotFound/i);

  const noBlocklist = createDynamoActivities({
    config: loadConfig({ ...env, DYNAMODB_BLOCKED_TABLE: 'no-such-blocked-table' }),
  });
  await assert.rejects(
    noBlocklist.lookupRecipients(input),
    'an unreadable blocklist fails the lookup (retried; never let blocked mail through)',
  );
});

// Issue 24: fewer DynamoDB requests per email, counted as the worker's metric counts them.
test('reads of different tables started together are one BatchGetItem; waiting counter writes join the next write', async (t) => {
  const ddb = await startDynamoServer();
  t.after(() => ddb.stop());
  const dynamo = dynamoClientFor(ddb.endpoint);
  await ensureTables(dynamo, DEFAULT_TABLES);
  await dynamo.send(
    new PutItemCommand({
      TableName: DEFAULT_TABLES.blocked,
      Item: marshall({ email_address: 'grace@example.com', blocked_patterns: ['*@spam.example'] }),
    }),
  );
  const requests = async (operation: string) =>
    (await dynamodbRequests.get()).values
      .filter((v) => v.labels.operation === operation)
      .reduce((n, v) => n + v.value, 0);

  const gets = await requests('BatchGetItem');
  const [blocked, rules, none] = await Promise.all([
    batchGetAll(dynamo, DEFAULT_TABLES.blocked, 'email_address', ['grace@example.com', 'dave@example.com']),
    batchGetAll(dynamo, DEFAULT_TABLES.rules, 'email_address', ['dave@example.com']),
    batchGetAll(dynamo, DEFAULT_TABLES.delivery, 'pk', ['copies2|x']),
  ]);
  assert.equal((await requests('BatchGetItem')) - gets, 1, 'three tables, one request');
  assert.deepEqual(
    blocked.map((i) => i.email_address),
    ['grace@example.com'],
  );
  assert.deepEqual([rules, none], [[], []]);

  // A missing table fails the merged request: each table is read again on its own.
  const [missing, stillBlocked] = await Promise.allSettled([
    batchGetAll(dynamo, 'no-such-table', 'pk', ['a']),
    batchGetAll(dynamo, DEFAULT_TABLES.blocked, 'email_address', ['grace@example.com']),
  ]);
  assert.equal(missing.status, 'rejected');
  assert.equal(stillBlocked.status === 'fulfilled' && stillBlocked.value.length, 1);

  // A best-effort write waits and goes out with the next write to its table (one request)...
  const writes = await requests('BatchWriteItem');
  const failures: Error[] = [];
  writeBehind(dynamo, DEFAULT_TABLES.delivery, 'pk', [{ pk: { S: 'copies2|a' }, n: { N: '1' } }], (e) =>
    failures.push(e),
  );
  // ...a later item for the same key replacing it (one request may not put a key twice).
  writeBehind(dynamo, DEFAULT_TABLES.delivery, 'pk', [{ pk: { S: 'copies2|a' }, n: { N: '2' } }], (e) =>
    failures.push(e),
  );
  await batchWriteAll(dynamo, DEFAULT_TABLES.delivery, [{ pk: { S: 's3://b/k|a@example.com' } }]);
  assert.equal((await requests('BatchWriteItem')) - writes, 1, 'the waiting counter went with the log entry');
  const written = await batchGetAll(dynamo, DEFAULT_TABLES.delivery, 'pk', ['copies2|a', 's3://b/k|a@example.com']);
  assert.equal(written.length, 2);
  assert.equal(written.find((i) => i.pk === 'copies2|a')?.n, 2);

  // With no write to join, it goes out on its own after the delay.
  writeBehind(dynamo, DEFAULT_TABLES.delivery, 'pk', [{ pk: { S: 'copies2|b' } }], (e) => failures.push(e), 50);
  const deadline = Date.now() + 30_000;
  while (
    (await batchGetAll(dynamo, DEFAULT_TABLES.delivery, 'pk', ['copies2|b'])).length === 0 &&
    Date.now() < deadline
  )
    await new Promise((r) => setTimeout(r, 50));
  assert.equal((await batchGetAll(dynamo, DEFAULT_TABLES.delivery, 'pk', ['copies2|b'])).length, 1);
  assert.deepEqual(failures, []);
});
