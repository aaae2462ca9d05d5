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
import { BUCKET, inboundWorkflowId, type InboundStack, startInboundStack } from '../support/inbound-stack';

const run = promisify(execFile);
const ALICE = 'alice@example.com';
const CAROL = 'carol@example.com';
let stack: InboundStack;

function starter(script: string, args: string[], input?: string) {
  const child = run(process.execPath, ['--import', 'tsx', `starters/${script}.ts`, ...args], { env: stack.childEnv, cwd: join(__dirname, '..', '..'), timeout: 60_000 });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  return child;
}

before(async () => {
  // SWEEP_MIN_AGE=0: the sweeps here look at mail just stored (test/integration/sweep.test.ts covers the grace).
  stack = await startInboundStack({ mailboxes: [ALICE, CAROL], env: { BLOCKED_MAIL_ACTION: 'keep', SWEEP_MIN_AGE: '0' } });
});
after(async () => {
  await stack?.stop();
});

test('process-object takes an SNS-wrapped SES notification (Bcc recipient included) and is idempotent', async () => {
  const key = await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Via notification' }));
  const ses = { notificationType: 'Received', mail: { messageId: key, destination: [ALICE] }, receipt: { recipients: [ALICE, CAROL], action: { type: 'S3', bucketName: BUCKET, objectKey: key } } };
  const file = join(mkdtempSync(join(tmpdir(), 'notif-')), 'n.json');
  writeFileSync(file, JSON.stringify({ Type: 'Notification', Message: JSON.stringify(ses) }));
  const first = await starter('process-object', ['--notification', file, '--wait']);
  assert.match(first.stdout, /started inbound\//);
  assert.match(first.stdout, /"status": "delivered"/);
  assert.equal((await stack.mail.messagesFor(CAROL)).filter((m) => m.includes('Via notification')).length, 1);
  const second = await starter('process-object', ['--bucket', BUCKET, '--key', key]);
  assert.match(second.stdout, /already started earlier.*no-op/);
});

test('process-object explains a bad notification', async () => {
  await assert.rejects(starter('process-object', ['--notification', '-'], '{"notificationType":"Bounce"}'), (err: { stderr: string }) => /expected "Received"/.test(err.stderr));
});

test('sweep-domain starts workflows only for untagged objects', async () => {
  const done = await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Already done' }));
  await stack.run({ key: done });
  const fresh = [await stack.put(rawMail({ from: 'x@sender.example', to: [ALICE], subject: 'Swept 1' })), await stack.put(rawMail({ from: 'x@sender.example', to: [CAROL], subject: 'Swept 2' }))];
  const out = await starter('sweep-domain', ['--domain', 'example.com']);
  assert.match(out.stdout, /2 workflows started/);
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
  while (Date.now() < deadline && (await stack.metadata(key))?.processed !== 'true') await new Promise((r) => setTimeout(r, 250));
  assert.equal((await stack.metadata(key))?.status, 'delivered');
  await handle.delete();
});

test('redrive: blocked mail re-processed after a blocklist fix, with new workflow ids; dry run touches nothing', async () => {
  await stack.putItem(DEFAULT_TABLES.blocked, { email_address: ALICE, blocked_patterns: ['*@wrongly-blocked.example'] });
  const key = await stack.put(rawMail({ from: 'partner@wrongly-blocked.example', to: [ALICE], subject: 'Important, was blocked' }));
  assert.equal((await stack.run({ key })).status, 'blocked');
  assert.equal((await stack.metadata(key))?.status, 'blocked', 'kept in place with BLOCKED_MAIL_ACTION=keep');

  await stack.dynamo.send(new DeleteItemCommand({ TableName: DEFAULT_TABLES.blocked, Key: { email_address: { S: ALICE } } }));
  const dry = await starter('redrive', ['--domain', 'example.com', '--status', 'blocked', '--since', '1h', '--dry-run']);
  assert.match(dry.stdout, new RegExp(`would re-drive s3://${BUCKET}/${key}`));
  assert.equal((await stack.metadata(key))?.status, 'blocked', 'a dry run changes nothing');

  const out = await starter('redrive', ['--domain', 'example.com', '--status', 'blocked', '--since', '1h', '--batch', 'fix1']);
  assert.match(out.stdout, /batch fix1: 1 workflows started/);
  const redriven = await stack.env.client.workflow.getHandle(`${inboundWorkflowId(BUCKET, key)}/redrive-fix1`).result();
  assert.equal(redriven.status, 'delivered');
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Important, was blocked')).length, 1);
  const original = await stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).result();
  assert.equal(original.status, 'blocked', 'the earlier run stays inspectable');
  // The same batch again: the object re-driven above is a no-op (its id exists).
  const again = await starter('redrive', ['--domain', 'example.com', '--status', 'delivered', '--since', '1h', '--batch', 'fix1']);
  assert.match(again.stdout, /, 1 already started in this batch/);
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Important, was blocked')).length, 1);

  // Another batch re-processes it, but the delivery log (per object and recipient) knows
  // Alice has it: no second copy. Only --redeliver delivers again, on purpose.
  const other = await starter('redrive', ['--domain', 'example.com', '--status', 'delivered', '--since', '1h', '--batch', 'fix2']);
  assert.match(other.stdout, /batch fix2: \d+ workflows started/);
  const second = await stack.env.client.workflow.getHandle(`${inboundWorkflowId(BUCKET, key)}/redrive-fix2`).result();
  assert.deepEqual(second.recipients, [{ recipient: ALICE, outcome: 'delivered', detail: 'delivered earlier' }]);
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Important, was blocked')).length, 1);
  await starter('redrive', ['--domain', 'example.com', '--status', 'delivered', '--since', '1h', '--batch', 'fix3', '--redeliver']);
  const third = await stack.env.client.workflow.getHandle(`${inboundWorkflowId(BUCKET, key)}/redrive-fix3`).result();
  assert.deepEqual(third.recipients, [{ recipient: ALICE, outcome: 'delivered' }]);
  assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Important, was blocked')).length, 2);
});
