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
