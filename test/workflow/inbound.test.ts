// processInboundEmail with stubbed activities: every inbound status and path in seconds,
// without S3, DynamoDB or a mail server. The workflow runs for real on the Temporal dev
// server (the project's temporal CLI); its activities are plain functions here that answer
// per run and record each call, so a test asserts what the workflow asked for, in which
// order and with which arguments, and what it made of the answers. Whether a step is a local
// or a regular activity does not matter to these tests: both are served by `activities`.
// The activities themselves, and the whole pipeline, are tested against real servers in
// test/integration/. Each run has its own workflow id and its own stubbed answers, so the
// tests of a suite run concurrently (the delivery rounds' timers overlap).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { InboundActivities } from '../../activities';
import { createDeliverAndTagActivities } from '../../activities/inbound/deliver-and-tag';
import { createFetchAndDeliverActivities } from '../../activities/inbound/fetch-and-deliver';
import type {
  EmailSummary,
  FetchResult,
  InboundResult,
  RecipientResult,
  RecipientRules,
} from '../../contracts/inbound';
import { MAIL_DOMAIN, MAIL_STATUS } from '../../contracts/search-attributes';
import { progressQuery, type ProcessInboundInput } from '../../contracts/inbound';
import { processInboundEmail } from '../../workflows/processInboundEmail';
import { activitySteps } from '../support/history-steps';
import { startTestTemporal } from '../support/temporal';

const DOMAIN = 'example.com';
const BUCKET = 'mail-example-com';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const FRANK = 'frank@example.org'; // one of our domains: forwards to it stay internal
const OUTSIDE = 'someone@sender.example';
const ELSEWHERE = 'erin.private@elsewhere.example';
const TASK_QUEUE = 'inbound-workflow-test';
/** Rounds in milliseconds, so the round tests take no real time. */
const FAST_ROUNDS = { rounds: 3, firstDelaySeconds: 0.02, maxDelaySeconds: 0.05 };

type Acts = InboundActivities;
type In<K extends keyof Acts> = Parameters<Acts[K]>[0];
type Out<K extends keyof Acts> = Awaited<ReturnType<Acts[K]>>;
type StubbedName =
  | 'fetchEmail'
  | 'checkBlocklist'
  | 'lookupRecipients'
  | 'findOutboundMessage'
  | 'loadRules'
  | 'deliverEmail'
  | 'forwardEmail'
  | 'sendAutoReply'
  | 'tagEmail'
  | 'deleteEmail';

interface Call {
  name: StubbedName;
  input: unknown;
  attempt: number;
}

/** What each activity answers in one run; a handler may throw to fail the activity. */
interface Scenario {
  fetch: FetchResult;
  /** S3 unavailable: the first this many fetchEmail calls fail retryably (and quickly). */
  fetchFails?: number;
  /** S3 unavailable for the final tag: the first this many non-deferred tagEmail calls fail. */
  tagFails?: number;
  blocklist?: (input: In<'checkBlocklist'>) => Out<'checkBlocklist'>;
  outbound?: (input: In<'findOutboundMessage'>) => Out<'findOutboundMessage'>;
  rules?: (input: In<'loadRules'>) => RecipientRules[];
  /** `round` counts deliverEmail calls that reached a new round (attempt 1), from 1. */
  deliver?: (input: In<'deliverEmail'>, round: number, attempt: number) => RecipientResult[];
  forward?: (input: In<'forwardEmail'>, attempt: number) => Out<'forwardEmail'>;
  autoReply?: (input: In<'sendAutoReply'>) => Out<'sendAutoReply'>;
}

interface Run {
  scenario: Scenario;
  calls: Call[];
  rounds: number;
}

const runs = new Map<string, Run>();

function current(name: StubbedName, input: unknown): Run {
  const { workflowExecution, attempt } = Context.current().info;
  const workflowId = workflowExecution?.workflowId ?? '(none)';
  const run = runs.get(workflowId);
  if (!run) throw ApplicationFailure.nonRetryable(`no scenario for workflow ${workflowId}`, 'TestSetup');
  run.calls.push({ name, input, attempt });
  return run;
}

const ours = (address: string) => [DOMAIN, 'example.org'].includes(address.split('@')[1]);

// Stand-ins with the real activities' names and signatures (activities/*.ts); the defaults
// are the happy path: nobody blocked, no outbound match, no rules, every recipient delivered.
const stubs: Pick<Acts, StubbedName> = {
  async fetchEmail(ref) {
    const run = current('fetchEmail', ref);
    if (run.calls.filter((c) => c.name === 'fetchEmail').length <= (run.scenario.fetchFails ?? 0))
      throw ApplicationFailure.create({
        type: 'ServiceUnavailable',
        message: 'S3: 503 SlowDown',
        nextRetryDelay: '10ms',
      });
    return run.scenario.fetch;
  },
  async checkBlocklist(input) {
    return current('checkBlocklist', input).scenario.blocklist?.(input) ?? [];
  },
  async findOutboundMessage(input) {
    return current('findOutboundMessage', input).scenario.outbound?.(input) ?? null;
  },
  async loadRules(input) {
    return current('loadRules', input).scenario.rules?.(input) ?? [];
  },
  // The fast path's one lookup (blocklist and rules), answered from the same handlers. Like the
  // real one: a blocklist that cannot be read fails it; rules that cannot be read are left out
  // with the reason (the workflow loads them on their own after delivery).
  async lookupRecipients(input) {
    const { scenario } = current('lookupRecipients', input);
    const blocked = input.senders.length ? (scenario.blocklist?.(input) ?? []) : [];
    try {
      return { blocked, rules: scenario.rules?.({ recipients: input.recipients }) ?? [] };
    } catch (err) {
      return { blocked, rulesError: (err as Error).message };
    }
  },
  async deliverEmail(input) {
    const run = current('deliverEmail', input);
    const { attempt } = Context.current().info;
    if (attempt === 1) run.rounds++;
    return (
      run.scenario.deliver?.(input, run.rounds, attempt) ??
      input.recipients.map((recipient) => ({ recipient, outcome: 'delivered' as const }))
    );
  },
  async forwardEmail(input) {
    const run = current('forwardEmail', input);
    if (run.scenario.forward) return run.scenario.forward(input, Context.current().info.attempt);
    // Like the real one: outside our domains and an outside verdict means skipped.
    const route = ours(input.to) ? 'internal' : 'outbound';
    return route === 'outbound' && input.outside ? { route, skipped: input.outside.skip } : { route };
  },
  async sendAutoReply(input) {
    return current('sendAutoReply', input).scenario.autoReply?.(input) ?? { sent: true };
  },
  async tagEmail(input) {
    const run = current('tagEmail', input);
    const finals = run.calls.filter(
      (c) => c.name === 'tagEmail' && (c.input as In<'tagEmail'>).record.status !== 'deferred',
    ).length;
    if (input.record.status !== 'deferred' && finals <= (run.scenario.tagFails ?? 0))
      throw ApplicationFailure.create({
        type: 'ServiceUnavailable',
        message: 'S3: 503 SlowDown',
        nextRetryDelay: '10ms',
      });
    return { processed: 'true', status: input.record.status };
  },
  async deleteEmail(input) {
    current('deleteEmail', input);
    return { deleted: true };
  },
};
// The real compositions (activities/inbound/deliver-and-tag.ts, fetch-and-deliver.ts) over the
// stubs: their calls show as fetchEmail, deliverEmail and tagEmail, so a fetch that delivers and
// tags the email reads like the three steps did.
const deliverAndTag = createDeliverAndTagActivities({ deliverEmail: stubs.deliverEmail, tagEmail: stubs.tagEmail });
const activities = {
  ...stubs,
  ...deliverAndTag,
  ...createFetchAndDeliverActivities({ fetchEmail: stubs.fetchEmail, deliverAndTag: deliverAndTag.deliverAndTag }),
};

function summary(over: Partial<EmailSummary> = {}): EmailSummary {
  const recipients = over.recipients ?? [ALICE];
  return {
    messageId: '<m1@sender.example>',
    from: OUTSIDE,
    sender: OUTSIDE,
    subject: 'Hello',
    size: 4096,
    recipients,
    recipientSource: 'envelope',
    autoReply: { to: OUTSIDE },
    addressed: recipients,
    ...over,
  };
}

const email = (over: Partial<EmailSummary> = {}): FetchResult => ({ kind: 'email', summary: summary(over) });

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let started = 0;
let counter = 0;

before(async () => {
  started = Date.now();
  // The workflow logs every email at INFO; warnings and errors are what a test run needs.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  env = await startTestTemporal({ backend: 'dev' });
  // One worker, one workflow bundle, for the whole file.
  worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: TASK_QUEUE,
    workflowsPath: require.resolve('../../workflows/inbound'),
    activities,
  });
  running = worker.run();
  console.log(`# environment and worker ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

after(async () => {
  if (worker) {
    worker.shutdown();
    await running;
  }
  await env?.teardown();
  console.log(`# workflow tests: ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
});

interface Outcome {
  handle: WorkflowHandle<typeof processInboundEmail>;
  calls: Call[];
  /** The activities called, in order (retries included). */
  order: StubbedName[];
  callsOf: <K extends StubbedName>(name: K) => In<K>[];
  /** The audit record of the one tagEmail call (fails when there was none or several). */
  record: () => In<'tagEmail'>['record'];
}

async function start(scenario: Scenario, input: Partial<ProcessInboundInput> = {}): Promise<Outcome> {
  const key = `incoming/test-${++counter}-${Date.now()}`;
  const workflowId = `inbound/${BUCKET}/${key}`;
  const run: Run = { scenario, calls: [], rounds: 0 };
  runs.set(workflowId, run);
  const handle = await env.client.workflow.start(processInboundEmail, {
    taskQueue: TASK_QUEUE,
    workflowId,
    args: [{ domain: DOMAIN, bucket: BUCKET, key, envelopeRecipients: [], ...input }],
    // As every starter does (lib/start-inbound.ts); the run itself no longer sets it.
    typedSearchAttributes: [{ key: MAIL_DOMAIN, value: (input.domain ?? DOMAIN).toLowerCase() }],
  });
  const callsOf = <K extends StubbedName>(name: K) =>
    run.calls.filter((c) => c.name === name).map((c) => c.input as In<K>);
  return {
    handle,
    calls: run.calls,
    get order() {
      return run.calls.map((c) => c.name);
    },
    callsOf,
    record: () => {
      // The final tag; a waiting email is also tagged `deferred` (best effort) on the way, and a
      // tag that failed (S3 down) is tried again with the same record.
      const tags = callsOf('tagEmail')
        .filter((t) => t.record.status !== 'deferred')
        .filter((t, i, all) => JSON.stringify(t) !== JSON.stringify(all[i + 1]));
      assert.equal(tags.length, 1, `tagged once, not ${tags.length} times`);
      assert.equal(tags[0].key, handle.workflowId.slice(`inbound/${BUCKET}/`.length));
      return tags[0].record;
    },
  };
}

async function runEmail(
  scenario: Scenario,
  input: Partial<ProcessInboundInput> = {},
): Promise<Outcome & { result: InboundResult }> {
  const o = await start(scenario, input);
  const result = await o.handle.result();
  return Object.assign(o, { result });
}

async function searchAttributes(handle: WorkflowHandle): Promise<{ domain?: string; status?: string }> {
  const { typedSearchAttributes } = await handle.describe();
  return { domain: typedSearchAttributes.get(MAIL_DOMAIN), status: typedSearchAttributes.get(MAIL_STATUS) };
}

/** The run's current details (the Web UI's "details" line), through the SDK's metadata query. */
async function details(handle: WorkflowHandle): Promise<string | undefined> {
  const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return meta.currentDetails ?? undefined;
}

// Found by these tests: a local activity that fails for good reaches the workflow as a bare
// ApplicationFailure, not an ActivityFailure, and such a run failed instead of ending 'failed'
// or recording a rule error. Since the fast path (patched('inbound-fast-path')) the workflow
// wraps its local activities' failures, and the lookup tests below run as plain tests. Runs
// from before the patch (LOCAL_LOOKUPS_PATCH's lookups) keep the old behaviour on replay.

describe('statuses fetchEmail decides', { concurrency: true }, () => {
  const terminal = [
    { status: 'invalid', reason: 'no recipient in our domains' },
    { status: 'unknown_domain', reason: 'example.net is not in domains.txt; add it there to process its mail' },
    { status: 'oversize', reason: '50000000 bytes exceeds MAX_MESSAGE_BYTES=41943040; left in S3 for manual handling' },
  ] as const;
  for (const { status, reason } of terminal) {
    test(`${status}: tagged with the reason, nothing else runs`, async () => {
      const r = await runEmail({ fetch: { kind: 'terminal', status, reason } });
      assert.equal(r.result.status, status);
      assert.equal(r.result.reason, reason);
      assert.deepEqual(r.order, ['fetchEmail', 'tagEmail']);
      assert.deepEqual(r.record(), { status, error: reason });
      assert.deepEqual(r.callsOf('tagEmail')[0].domain, DOMAIN);
      assert.deepEqual(await searchAttributes(r.handle), { domain: DOMAIN, status });
    });
  }

  test('quarantined: tagged with the SES verdicts, kept (not deleted), not delivered', async () => {
    const reason = 'SES virus verdict FAIL: not delivered, kept in S3';
    const r = await runEmail({
      fetch: {
        kind: 'terminal',
        status: 'quarantined',
        reason,
        verdicts: { virus: 'FAIL', spam: 'PASS', source: 'notification' },
      },
    });
    assert.equal(r.result.status, 'quarantined');
    assert.match(r.result.verdicts ?? '', /virus=FAIL/);
    assert.deepEqual(r.order, ['fetchEmail', 'tagEmail']);
    assert.deepEqual(r.record(), { status: 'quarantined', error: reason, verdicts: r.result.verdicts });
    assert.match((await details(r.handle)) ?? '', /^quarantined .*SES verdicts: .*virus=FAIL/);
  });

  test('already_processed: completes without touching the earlier tags', async () => {
    const reason = `s3://${BUCKET}/x was processed at 1700000000 by worker-1 with status delivered`;
    const r = await runEmail({ fetch: { kind: 'terminal', status: 'already_processed', reason, size: 10 } });
    assert.equal(r.result.status, 'already_processed');
    assert.equal(r.result.reason, reason);
    assert.deepEqual(r.order, ['fetchEmail'], 'no tagEmail: the earlier run tagged it');
    assert.equal((await searchAttributes(r.handle)).status, 'already_processed');
  });

  test('missing: nothing tagged, the run fails with a non-retryable EmailMissing carrying the result', async () => {
    const reason = `s3://${BUCKET}/gone does not exist`;
    const o = await start({ fetch: { kind: 'terminal', status: 'missing', reason } });
    const err = await o.handle.result().then(
      () => assert.fail('the run completed; a missing object must fail it'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    assert.equal(err.cause.type, 'EmailMissing');
    assert.equal(err.cause.nonRetryable, true);
    assert.match(err.cause.message, /does not exist \(status missing\)/);
    const result = err.cause.details?.[0] as InboundResult;
    assert.equal(result.status, 'missing');
    assert.equal(result.reason, reason);
    assert.deepEqual(o.order, ['fetchEmail'], 'nothing to tag when the object is gone');
    assert.equal((await o.handle.describe()).status.name, 'FAILED');
    assert.equal((await searchAttributes(o.handle)).status, 'missing');
  });

  test('loop: a message carrying our marker is tagged loop and not delivered', async () => {
    const loop = 'X-Mailroom-Processed header present: mailroom already handled this message';
    const r = await runEmail({ fetch: email({ loop }) });
    assert.equal(r.result.status, 'loop');
    assert.equal(r.result.reason, loop);
    assert.deepEqual(r.order, ['fetchEmail', 'tagEmail']);
    assert.deepEqual(r.record(), { status: 'loop', error: loop });
  });
});

describe('delivery outcomes', { concurrency: true }, () => {
  test('delivered: block-check, deliver, rules, then the tag; search attributes and details set', async () => {
    const r = await runEmail(
      { fetch: email({ from: 'Someone@Sender.example', sender: 'bounces@sender.example' }) },
      { domain: 'Example.COM' },
    );
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(r.result.recipients, [{ recipient: ALICE, outcome: 'delivered' }]);
    assert.equal(r.result.messageId, '<m1@sender.example>');
    assert.equal(r.result.reason, undefined);
    assert.deepEqual(r.order, ['fetchEmail', 'lookupRecipients', 'deliverEmail', 'tagEmail']);
    assert.equal(r.callsOf('fetchEmail')[0].domain, DOMAIN, 'the domain is lower-cased before anything uses it');
    assert.deepEqual(r.callsOf('lookupRecipients'), [
      { senders: ['Someone@Sender.example', 'bounces@sender.example'], recipients: [ALICE] },
    ]);
    const [deliver] = r.callsOf('deliverEmail');
    assert.deepEqual(
      deliver,
      { domain: DOMAIN, bucket: BUCKET, key: deliver.key, recipients: [ALICE], envelopeFrom: 'bounces@sender.example' },
      'no rewrite, spam or redeliver flag on plain mail',
    );
    assert.equal(r.callsOf('loadRules').length, 0, 'the rules came with the blocklist');
    assert.deepEqual(r.record(), { status: 'delivered', invalidInboxes: [], deliveredCount: 1 });
    assert.deepEqual(await searchAttributes(r.handle), { domain: DOMAIN, status: 'delivered' });
    assert.equal(await details(r.handle), 'delivered: 1 delivered');
    assert.deepEqual(await r.handle.query('progress'), { step: 'done', recipients: r.result.recipients });
  });

  test("the delivery that ends an email tags it in the same local activity; a tag that fails there is the tag step's", async () => {
    const localSteps = async (handle: WorkflowHandle) =>
      activitySteps(await handle.fetchHistory())
        .filter((step) => step.local)
        .map((step) => step.type);
    const plain = await runEmail({ fetch: email({ recipients: [ALICE, BOB] }) });
    assert.equal(plain.result.status, 'delivered');
    assert.deepEqual(await localSteps(plain.handle), ['fetchAndDeliver', 'lookupRecipients', 'deliverAndTag']);
    assert.deepEqual(plain.record(), { status: 'delivered', invalidInboxes: [], deliveredCount: 2 });

    // S3 refuses the tag after the delivery: the answer stands, the tag step writes it.
    const s3Down = await runEmail({ fetch: email(), tagFails: 1 });
    assert.equal(s3Down.result.status, 'delivered');
    assert.deepEqual(s3Down.order, ['fetchEmail', 'lookupRecipients', 'deliverEmail', 'tagEmail', 'tagEmail']);
    assert.deepEqual(await localSteps(s3Down.handle), [
      'fetchAndDeliver',
      'lookupRecipients',
      'deliverAndTag',
      'tagEmail',
    ]);
    assert.equal(s3Down.callsOf('deliverEmail').length, 1, 'delivered once');

    // Rules after the delivery: the tag waits for them, in its own step.
    const ooo = await runEmail({
      fetch: email(),
      rules: () => [{ recipient: ALICE, forwards: [], outOfOffice: { message: 'Away.', contentType: 'text' } }],
    });
    assert.deepEqual((await localSteps(ooo.handle)).slice(-3), ['deliverEmail', 'sendAutoReply', 'tagEmail']);
  });

  test('partial: one recipient delivered, one unknown (5xx) listed in invalidInboxes', async () => {
    const r = await runEmail({
      fetch: email({ recipients: [ALICE, BOB] }),
      deliver: (input) =>
        input.recipients.map((recipient) =>
          recipient === BOB
            ? { recipient, outcome: 'invalid', code: 550, detail: '550 5.1.1 no such user' }
            : { recipient, outcome: 'delivered' },
        ),
    });
    assert.equal(r.result.status, 'partial');
    assert.deepEqual(r.result.recipients, [
      { recipient: ALICE, outcome: 'delivered' },
      { recipient: BOB, outcome: 'invalid', code: 550, detail: '550 5.1.1 no such user' },
    ]);
    assert.deepEqual(r.record(), { status: 'partial', invalidInboxes: [BOB], deliveredCount: 1 });
    assert.deepEqual(r.callsOf('lookupRecipients')[0].recipients, [ALICE, BOB]);
  });

  test('rejected: every recipient unknown to the mail server', async () => {
    const r = await runEmail({
      fetch: email({ recipients: [ALICE, BOB] }),
      deliver: (input) =>
        input.recipients.map((recipient) => ({
          recipient,
          outcome: 'invalid',
          code: 550,
          detail: '550 5.1.1 no such user',
        })),
    });
    assert.equal(r.result.status, 'rejected');
    assert.deepEqual(r.record(), { status: 'rejected', invalidInboxes: [ALICE, BOB], deliveredCount: 0 });
    assert.equal(r.callsOf('deliverEmail').length, 1, 'a 5xx is not deferred: no second round');
  });

  test('spam delivered marked, redeliver passed on, verdicts in result, tag and details', async () => {
    const r = await runEmail(
      { fetch: email({ spam: true, verdicts: { spam: 'FAIL', virus: 'PASS', source: 'notification' } }) },
      { redeliver: true },
    );
    assert.equal(r.result.status, 'delivered');
    const [deliver] = r.callsOf('deliverEmail');
    assert.equal(deliver.spam, true);
    assert.equal(deliver.redeliver, true);
    assert.equal(r.result.verdicts, 'spam=FAIL virus=PASS');
    assert.deepEqual(r.record(), {
      status: 'delivered',
      invalidInboxes: [],
      deliveredCount: 1,
      verdicts: 'spam=FAIL virus=PASS',
    });
    assert.equal(await details(r.handle), 'delivered: 1 delivered; SES verdicts: spam=FAIL virus=PASS');
  });

  test('looped recipients are failed with the loop detail while the others are delivered: partial', async () => {
    const detail = 'mail loop: copy 6 of this message within an hour';
    const r = await runEmail({ fetch: email({ recipients: [ALICE], looped: [{ recipient: BOB, detail }] }) });
    assert.equal(r.result.status, 'partial');
    assert.deepEqual(r.result.recipients, [
      { recipient: ALICE, outcome: 'delivered' },
      { recipient: BOB, outcome: 'failed', detail },
    ]);
    assert.deepEqual(r.callsOf('deliverEmail')[0].recipients, [ALICE], 'a looped recipient gets no copy');
    assert.equal(r.result.reason, `${BOB}: ${detail}`);
  });

  test('failed: a lookup that fails for good marks the email failed, with the reason tagged', async () => {
    const r = await runEmail({
      fetch: email(),
      blocklist: () => {
        throw ApplicationFailure.nonRetryable(
          'blocklist table mailroom-blocked does not exist',
          'ResourceNotFoundException',
        );
      },
    });
    assert.equal(r.result.status, 'failed');
    assert.equal(r.result.reason, 'lookupRecipients: blocklist table mailroom-blocked does not exist');
    assert.deepEqual(r.order, ['fetchEmail', 'lookupRecipients', 'tagEmail'], 'nothing delivered after the failure');
    assert.deepEqual(r.record(), { status: 'failed', error: r.result.reason, deliveredCount: 0 });
    assert.equal((await searchAttributes(r.handle)).status, 'failed');
  });
});

describe('blocklist', { concurrency: true }, () => {
  test('blocked: every recipient blocks the sender; tagged first, then deleted, never delivered', async () => {
    const r = await runEmail({
      fetch: email({ from: 'promo@spam.example', sender: 'promo@spam.example', recipients: [ALICE, BOB] }),
      blocklist: (input) =>
        input.recipients.map((recipient) => ({ recipient, pattern: '*@spam.example', sender: 'promo@spam.example' })),
    });
    assert.equal(r.result.status, 'blocked');
    assert.deepEqual(
      r.order,
      ['fetchEmail', 'lookupRecipients', 'tagEmail', 'deleteEmail'],
      'the audit tag is written before the object is deleted',
    );
    assert.deepEqual(
      r.callsOf('lookupRecipients'),
      [{ senders: ['promo@spam.example'], recipients: [ALICE, BOB] }],
      'one batch call, the sender once',
    );
    assert.deepEqual(r.record(), {
      status: 'blocked',
      blockedSender: 'promo@spam.example',
      blockedRecipients: [ALICE, BOB],
    });
    assert.deepEqual(r.callsOf('deleteEmail'), [{ bucket: BUCKET, key: r.callsOf('tagEmail')[0].key }]);
    assert.equal(r.result.reason, 'every recipient blocks promo@spam.example');
    assert.deepEqual(
      r.result.recipients.map((x) => x.outcome),
      ['blocked', 'blocked'],
    );
    assert.equal((await searchAttributes(r.handle)).status, 'blocked');
  });

  test('one recipient blocks the sender: the other is delivered (partial), nothing deleted, the block recorded', async () => {
    const r = await runEmail({
      fetch: email({ recipients: [ALICE, BOB] }),
      blocklist: () => [{ recipient: BOB, pattern: '*@sender.example', sender: OUTSIDE }],
      rules: (input) => input.recipients.map((recipient) => ({ recipient, forwards: [FRANK] })),
    });
    assert.equal(r.result.status, 'partial');
    assert.deepEqual(r.callsOf('deliverEmail')[0].recipients, [ALICE]);
    assert.deepEqual(
      r.callsOf('forwardEmail').map((f) => f.recipient),
      [ALICE],
      'rules only for recipients that got the mail',
    );
    assert.equal(r.callsOf('deleteEmail').length, 0);
    assert.deepEqual(r.result.recipients, [
      { recipient: BOB, outcome: 'blocked', detail: `${OUTSIDE} matches *@sender.example` },
      { recipient: ALICE, outcome: 'delivered' },
    ]);
    assert.deepEqual(r.record(), {
      status: 'partial',
      invalidInboxes: [],
      deliveredCount: 1,
      blockedSender: OUTSIDE,
      blockedRecipients: [BOB],
    });
  });
});

describe('bounces and complaints', { concurrency: true }, () => {
  const GONE = 'gone@remote.example';
  const bounce = (over: Partial<NonNullable<EmailSummary['bounce']>> = {}): NonNullable<EmailSummary['bounce']> => ({
    fromSes: true,
    recipients: [{ recipient: GONE, action: 'failed', status: '5.1.1', diagnostic: 'smtp; 550 5.1.1 user unknown' }],
    originalMessageIds: ['<orig-1@example.com>'],
    kind: 'bounce',
    ...over,
  });
  const original = { messageId: '<orig-1@example.com>', source: ALICE, subject: 'Our offer', destinations: [GONE] };

  test('matched bounce: rewritten for the recipient it is about, empty envelope sender, no rules', async () => {
    const r = await runEmail({
      fetch: email({
        from: 'MAILER-DAEMON@amazonses.com',
        sender: 'MAILER-DAEMON@amazonses.com',
        bounce: bounce(),
        autoReply: { skip: 'bounce' },
      }),
      outbound: () => original,
    });
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(r.callsOf('findOutboundMessage'), [{ messageIds: ['<orig-1@example.com>'] }]);
    const [deliver] = r.callsOf('deliverEmail');
    assert.equal(deliver.envelopeFrom, '', 'a bounce is delivered with the null sender (RFC 5321 4.5.5)');
    assert.deepEqual(deliver.rewrite, {
      bouncedRecipient: GONE,
      status: '5.1.1',
      diagnostic: 'smtp; 550 5.1.1 user unknown',
      originalSubject: 'Our offer',
      kind: 'bounce',
    });
    assert.deepEqual(r.result.bounce, { matched: true, bouncedRecipient: GONE, kind: 'bounce', rewritten: true });
    assert.deepEqual(
      r.order,
      ['fetchEmail', 'findOutboundMessage', 'lookupRecipients', 'deliverEmail', 'tagEmail'],
      'no rules for a bounce',
    );
  });

  test('matched complaint: rewritten as a complaint', async () => {
    const r = await runEmail({
      fetch: email({
        bounce: bounce({ kind: 'complaint', recipients: [{ recipient: GONE, action: 'complained' }] }),
        autoReply: { skip: 'report' },
      }),
      outbound: () => original,
    });
    assert.deepEqual(r.callsOf('deliverEmail')[0].rewrite, {
      bouncedRecipient: GONE,
      originalSubject: 'Our offer',
      kind: 'complaint',
    });
    assert.deepEqual(r.result.bounce, { matched: true, bouncedRecipient: GONE, kind: 'complaint', rewritten: true });
  });

  test('unmatched bounce: delivered as received', async () => {
    const r = await runEmail({
      fetch: email({ bounce: bounce(), autoReply: { skip: 'bounce' } }),
      outbound: () => null,
    });
    assert.equal(r.result.status, 'delivered');
    assert.equal(r.callsOf('deliverEmail')[0].rewrite, undefined);
    assert.equal(r.callsOf('deliverEmail')[0].envelopeFrom, '');
    assert.deepEqual(r.result.bounce, { matched: false, bouncedRecipient: GONE, kind: 'bounce', rewritten: false });
  });

  test('untrusted report (failed sender authentication): matched but not rewritten, with why', async () => {
    const untrusted = 'SPF and DKIM fail for the report sender: it must not choose our From';
    const r = await runEmail({
      fetch: email({ bounce: bounce({ untrusted }), autoReply: { skip: 'bounce' } }),
      outbound: () => original,
    });
    assert.equal(r.callsOf('deliverEmail')[0].rewrite, undefined);
    assert.deepEqual(r.result.bounce, {
      matched: true,
      bouncedRecipient: GONE,
      kind: 'bounce',
      rewritten: false,
      reason: untrusted,
    });
  });

  test('a matched report naming none of the destinations (forged): delivered unmodified, with why', async () => {
    // Cites our message id, but names one of our own users: it must not become From/Reply-To.
    const r = await runEmail({
      fetch: email({
        bounce: bounce({ recipients: [{ recipient: 'ceo@example.com', action: 'failed', status: '5.1.1' }] }),
        autoReply: { skip: 'bounce' },
      }),
      outbound: () => original,
    });
    assert.equal(r.result.status, 'delivered');
    assert.equal(r.callsOf('deliverEmail')[0].rewrite, undefined, 'not rewritten');
    assert.deepEqual(r.result.bounce, {
      matched: true,
      kind: 'bounce',
      rewritten: false,
      reason: 'the report names none of the 1 address(es) our message was sent to: delivered unmodified',
    });
  });

  test('a bounce without the original message id is not looked up', async () => {
    const r = await runEmail({
      fetch: email({ bounce: bounce({ originalMessageIds: [] }), autoReply: { skip: 'bounce' } }),
    });
    assert.equal(r.callsOf('findOutboundMessage').length, 0);
    assert.equal(r.result.bounce, undefined);
    assert.equal(r.result.status, 'delivered');
  });
});

describe('rules', { concurrency: true }, () => {
  const away = (recipient: string, forwards: string[] = [], outside?: string[]): RecipientRules => ({
    recipient,
    outOfOffice: { message: 'Away until Monday.', contentType: 'text' },
    forwards,
    ...(outside ? { outside } : {}),
  });

  test('out-of-office reply sent to the sender, after delivery', async () => {
    const r = await runEmail({ fetch: email(), rules: () => [away(ALICE)] });
    assert.deepEqual(r.order, ['fetchEmail', 'lookupRecipients', 'deliverEmail', 'sendAutoReply', 'tagEmail']);
    assert.deepEqual(r.callsOf('sendAutoReply'), [
      {
        recipient: ALICE,
        to: OUTSIDE,
        originalSubject: 'Hello',
        originalMessageId: '<m1@sender.example>',
        message: 'Away until Monday.',
        contentType: 'text',
      },
    ]);
    assert.deepEqual(r.result.autoReplies, [{ recipient: ALICE, to: OUTSIDE, sent: true }]);
    assert.equal(r.result.status, 'delivered');
  });

  test('the reply activity declining (already answered this sender) is reported, not an error', async () => {
    const reason = 'already replied to this sender within 24 hours';
    const r = await runEmail({
      fetch: email(),
      rules: () => [away(ALICE)],
      autoReply: () => ({ sent: false, reason }),
    });
    assert.deepEqual(r.result.autoReplies, [{ recipient: ALICE, to: OUTSIDE, sent: false, reason }]);
    assert.equal(r.result.reason, undefined);
  });

  test('automatic mail is not answered: skipped with the reason, no reply sent', async () => {
    const skip = 'automatic mail (Auto-Submitted: auto-generated): no reply (RFC 3834)';
    const r = await runEmail({
      fetch: email({
        automatic: { rule: 'auto-submitted', reason: 'Auto-Submitted: auto-generated', class: 'report' },
        autoReply: { skip },
      }),
      rules: () => [away(ALICE)],
    });
    assert.equal(r.callsOf('sendAutoReply').length, 0);
    assert.deepEqual(r.result.autoReplies, [{ recipient: ALICE, to: OUTSIDE, sent: false, reason: skip }]);
    assert.equal(r.result.status, 'delivered');
  });

  test('no reply for a recipient not named in To/Cc (RFC 5230 4.5) nor for one the mail did not reach', async () => {
    const r = await runEmail({
      fetch: email({ recipients: [ALICE, BOB], addressed: [BOB] }),
      rules: () => [away(ALICE), away(BOB)],
      deliver: (input) =>
        input.recipients.map((recipient) =>
          recipient === BOB ? { recipient, outcome: 'invalid', code: 550 } : { recipient, outcome: 'delivered' },
        ),
    });
    assert.equal(r.callsOf('sendAutoReply').length, 0);
    assert.equal(r.result.autoReplies.length, 1, 'BOB, who did not get the mail, has no entry at all');
    assert.equal(r.result.autoReplies[0].recipient, ALICE);
    assert.equal(r.result.autoReplies[0].sent, false);
    assert.match(r.result.autoReplies[0].reason ?? '', /RFC 5230/);
  });

  test('forwards: internal and outside sent; with an outside-forward verdict the outside one is skipped', async () => {
    const rule: RecipientRules = { recipient: ALICE, forwards: [FRANK, ELSEWHERE], outside: [ELSEWHERE] };
    const plain = await runEmail({ fetch: email(), rules: () => [rule] });
    assert.deepEqual(
      plain.callsOf('forwardEmail').map((f) => ({ ...f, key: undefined })),
      [
        { bucket: BUCKET, key: undefined, recipient: ALICE, to: FRANK },
        { bucket: BUCKET, key: undefined, recipient: ALICE, to: ELSEWHERE },
      ],
    );
    assert.deepEqual(plain.result.forwards, [
      { recipient: ALICE, to: FRANK, route: 'internal', sent: true },
      { recipient: ALICE, to: ELSEWHERE, route: 'outbound', sent: true },
    ]);

    const skip = 'SES spam verdict FAIL: not forwarded outside our domains';
    const spam = await runEmail({ fetch: email({ spam: true, outsideForward: { skip } }), rules: () => [rule] });
    assert.deepEqual(
      spam.callsOf('forwardEmail').map((f) => [f.to, f.outside, f.spam]),
      [
        [FRANK, { skip }, true],
        [ELSEWHERE, { skip }, true],
      ],
    );
    assert.deepEqual(spam.result.forwards, [
      { recipient: ALICE, to: FRANK, route: 'internal', sent: true },
      { recipient: ALICE, to: ELSEWHERE, route: 'outbound', sent: false, reason: skip },
    ]);
    assert.equal(spam.result.status, 'delivered');
  });

  test('one failing forward (refused, not retried) is recorded; the other forward and the reply still run', async () => {
    const GHOST = 'ghost@example.org';
    const r = await runEmail({
      fetch: email(),
      rules: () => [away(ALICE, [GHOST, FRANK])],
      forward: (input) => {
        // Thrown as retryable: the workflow's policy must still not retry a ForwardRefused.
        if (input.to === GHOST)
          throw ApplicationFailure.create({
            type: 'ForwardRefused',
            message: `forward to ${GHOST} refused: 550 no such user`,
            nextRetryDelay: '10ms',
          });
        return { route: 'internal' };
      },
    });
    assert.equal(r.result.status, 'delivered', 'a failing rule does not change the delivery outcome');
    assert.equal(
      r.calls.filter((c) => c.name === 'forwardEmail' && (c.input as In<'forwardEmail'>).to === GHOST).length,
      1,
      'ForwardRefused is not retried',
    );
    assert.deepEqual(r.result.forwards, [
      {
        recipient: ALICE,
        to: GHOST,
        route: 'internal',
        sent: false,
        reason: `forwardEmail: forward to ${GHOST} refused: 550 no such user`,
      },
      { recipient: ALICE, to: FRANK, route: 'internal', sent: true },
    ]);
    assert.deepEqual(r.result.autoReplies, [{ recipient: ALICE, to: OUTSIDE, sent: true }]);
    assert.equal(r.result.reason, `forward: forwardEmail: forward to ${GHOST} refused: 550 no such user`);
    assert.deepEqual(r.record(), {
      status: 'delivered',
      invalidInboxes: [],
      deliveredCount: 1,
      error: r.result.reason,
    });
  });

  test('rules that cannot be loaded are reported; the delivery stands', async () => {
    const r = await runEmail({
      fetch: email(),
      rules: () => {
        throw ApplicationFailure.nonRetryable('rules table unreadable', 'AccessDeniedException');
      },
    });
    assert.equal(r.result.status, 'delivered');
    assert.equal(r.result.reason, 'rules: loadRules: rules table unreadable');
    assert.deepEqual(
      r.order,
      ['fetchEmail', 'lookupRecipients', 'deliverEmail', 'loadRules', 'tagEmail'],
      'loaded again, on their own, after delivery',
    );
    assert.equal(r.callsOf('forwardEmail').length + r.callsOf('sendAutoReply').length, 0);
  });
});

// Since patched('inbound-current-2026-12b') (issue 21): a temporary failure defers the email
// (durable timers between tries) until DELIVERY_MAX_AGE; only permanent answers fail it. The
// delays and the age are the run's own (input.delivery, input.deferral), in fractions of a second.
describe('delivery rounds and deferral', { concurrency: true }, () => {
  const deferred = (recipient: string): RecipientResult => ({
    recipient,
    outcome: 'deferred',
    code: 451,
    detail: '451 4.2.0 mailbox busy, try later',
  });
  /** Gives up after `seconds` from the run's start (the stub's fetch reports no arrival). */
  const maxAge = (seconds: number) => ({ delivery: FAST_ROUNDS, deferral: { maxAgeSeconds: seconds } });

  test('deferred (4xx) in round 1, delivered in round 2: only the deferred recipient is retried', async () => {
    const r = await runEmail(
      {
        fetch: email({ recipients: [ALICE, BOB] }),
        deliver: (input, round) =>
          input.recipients.map((recipient) =>
            recipient === BOB && round === 1 ? deferred(recipient) : { recipient, outcome: 'delivered' },
          ),
      },
      { delivery: FAST_ROUNDS },
    );
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(
      r.callsOf('deliverEmail').map((d) => d.recipients),
      [[ALICE, BOB], [BOB]],
    );
    assert.deepEqual(r.result.recipients, [
      { recipient: ALICE, outcome: 'delivered' },
      { recipient: BOB, outcome: 'delivered' },
    ]);
    assert.deepEqual(r.order, [
      'fetchEmail',
      'lookupRecipients',
      'deliverEmail',
      'tagEmail', // status deferred, while it waits
      'deliverEmail',
      'tagEmail',
    ]);
    const [waiting] = r.callsOf('tagEmail');
    assert.equal(waiting.record.status, 'deferred');
    assert.match(waiting.record.error ?? '', /^delivering to 1 recipient\(s\): 451 4\.2\.0 mailbox busy/);
    assert.equal(typeof waiting.record.arrivedAt, 'number', 'the arrival, for a later run to measure the age from');
    assert.equal((await searchAttributes(r.handle)).status, 'delivered');
  });

  test('still deferred at DELIVERY_MAX_AGE: failed with the last answer; no reply or forward to anyone', async () => {
    const r = await runEmail(
      {
        fetch: email(),
        deliver: (input) => input.recipients.map(deferred),
        rules: () => [
          { recipient: ALICE, outOfOffice: { message: 'Away.', contentType: 'text' }, forwards: [], outside: [] },
        ],
      },
      maxAge(1),
    );
    assert.ok(r.callsOf('deliverEmail').length >= 2, 'tried again until the age');
    assert.equal(r.result.status, 'failed');
    const [alice] = r.result.recipients;
    assert.equal(alice.outcome, 'failed');
    assert.equal(alice.code, 451);
    assert.match(
      alice.detail ?? '',
      /^deferred since \S+Z, given up after DELIVERY_MAX_AGE \(1 s\): 451 4\.2\.0 mailbox busy, try later$/,
    );
    assert.equal(r.result.reason, `${ALICE}: ${alice.detail}`);
    assert.deepEqual(r.record(), { status: 'failed', invalidInboxes: [], deliveredCount: 0, error: r.result.reason });
    assert.equal(r.callsOf('sendAutoReply').length, 0, 'nobody is answered for mail that never arrived');
    assert.deepEqual(r.result.autoReplies, []);
    assert.equal((await searchAttributes(r.handle)).status, 'failed');
  });

  test('one recipient delivered, the other deferred until the age: partial', async () => {
    const r = await runEmail(
      {
        fetch: email({ recipients: [ALICE, BOB] }),
        deliver: (input) =>
          input.recipients.map((recipient) =>
            recipient === BOB ? deferred(recipient) : { recipient, outcome: 'delivered' },
          ),
      },
      maxAge(1),
    );
    assert.equal(r.result.status, 'partial');
    const calls = r.callsOf('deliverEmail').map((d) => d.recipients);
    assert.deepEqual(calls[0], [ALICE, BOB]);
    assert.ok(
      calls.slice(1).every((c) => c.length === 1 && c[0] === BOB),
      'only the deferred one is tried again',
    );
    assert.match(r.result.reason ?? '', /^bob@example\.com: deferred since .*given up after DELIVERY_MAX_AGE/);
  });

  test('unreachable server: the round retries briefly, then the email waits and is delivered later', async () => {
    const message = 'cannot deliver over SMTP to 127.0.0.1: connect ECONNREFUSED';
    const r = await runEmail(
      {
        fetch: email({ recipients: [ALICE, BOB] }),
        deliver: (input, round, attempt) => {
          // Round 1: the first attempt fails retryably (the policy retries it); the second
          // stands in for the last of the round's attempts. Round 2: the server is back.
          if (round === 1 && attempt === 1)
            throw ApplicationFailure.create({ type: 'DeliveryUnavailable', message, nextRetryDelay: '10ms' });
          if (round === 1)
            throw ApplicationFailure.create({ type: 'DeliveryUnavailable', message, nonRetryable: true });
          return input.recipients.map((recipient) => ({ recipient, outcome: 'delivered' }));
        },
      },
      { delivery: FAST_ROUNDS },
    );
    assert.deepEqual(
      r.calls.filter((c) => c.name === 'deliverEmail').map((a) => a.attempt),
      [1, 2, 1],
      'retried within the round, then a new round after the wait',
    );
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(r.result.recipients, [
      { recipient: ALICE, outcome: 'delivered' },
      { recipient: BOB, outcome: 'delivered' },
    ]);
    assert.match(r.callsOf('tagEmail')[0].record.error ?? '', /ECONNREFUSED/);
    assert.deepEqual(r.record(), { status: 'delivered', invalidInboxes: [], deliveredCount: 2 });
  });

  test('deferred, then the server unreachable until the age: the delivered one stands (partial)', async () => {
    const r = await runEmail(
      {
        fetch: email({ recipients: [ALICE, BOB] }),
        deliver: (input, round) => {
          if (round === 1)
            return input.recipients.map((recipient) =>
              recipient === BOB ? deferred(recipient) : { recipient, outcome: 'delivered' },
            );
          throw ApplicationFailure.nonRetryable('cannot deliver over SMTP: connection reset', 'DeliveryUnavailable');
        },
      },
      maxAge(1),
    );
    assert.equal(r.result.status, 'partial');
    assert.equal(r.result.recipients[0].outcome, 'delivered');
    assert.equal(r.result.recipients[1].outcome, 'failed');
    assert.match(
      r.result.recipients[1].detail ?? '',
      /given up after DELIVERY_MAX_AGE \(1 s\): deliverEmail: cannot deliver over SMTP: connection reset$/,
    );
  });

  test('DeliveryRefused (5xx for the whole message) is not retried: failed at once', async () => {
    const r = await runEmail(
      {
        fetch: email(),
        deliver: () => {
          // Thrown as retryable: the workflow's retry policy itself must list DeliveryRefused.
          throw ApplicationFailure.create({
            type: 'DeliveryRefused',
            message: `SMTP server refused s3://${BUCKET}/x: 554 5.6.0 message refused`,
            nextRetryDelay: '10ms',
          });
        },
      },
      { delivery: FAST_ROUNDS },
    );
    assert.equal(
      r.calls.filter((c) => c.name === 'deliverEmail').length,
      1,
      'neither retried nor tried again in a later round',
    );
    assert.equal(r.result.status, 'failed');
    assert.deepEqual(r.result.recipients, [
      {
        recipient: ALICE,
        outcome: 'failed',
        detail: `deliverEmail: SMTP server refused s3://${BUCKET}/x: 554 5.6.0 message refused`,
      },
    ]);
    assert.equal(r.callsOf('tagEmail').length, 1, 'never tagged deferred');
  });

  test('the object vanishing before delivery (EmailMissing) is not retried: failed', async () => {
    const r = await runEmail(
      {
        fetch: email(),
        deliver: () => {
          throw ApplicationFailure.create({
            type: 'EmailMissing',
            message: `s3://${BUCKET}/x does not exist`,
            nextRetryDelay: '10ms',
          });
        },
      },
      { delivery: FAST_ROUNDS },
    );
    assert.equal(r.calls.filter((c) => c.name === 'deliverEmail').length, 1);
    assert.equal(r.result.status, 'failed');
  });

  test('a DynamoDB outage in the lookups defers the email; it is delivered once DynamoDB answers', async () => {
    let calls = 0;
    const r = await runEmail(
      {
        fetch: email(),
        blocklist: () => {
          // Throttled through the first round's six attempts and two more: the email waits once.
          if (++calls <= 8)
            throw ApplicationFailure.create({
              type: 'ThrottlingException',
              message: 'Rate of requests exceeds the allowed throughput',
              nextRetryDelay: '10ms',
            });
          return [];
        },
      },
      { delivery: FAST_ROUNDS },
    );
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(
      r.calls.filter((c) => c.name === 'lookupRecipients').map((c) => c.attempt),
      [1, 2, 3, 4, 5, 6, 1, 2, 3],
    );
    const [waiting] = r.callsOf('tagEmail');
    assert.equal(waiting.record.status, 'deferred');
    assert.match(
      waiting.record.error ?? '',
      /^reading the blocklists \(DynamoDB\): lookupRecipients: Rate of requests/,
    );
    assert.equal(r.callsOf('deliverEmail').length, 1);
    assert.deepEqual(r.record(), { status: 'delivered', invalidInboxes: [], deliveredCount: 1 });
  });

  test('a lookup outage until the age: failed with the reason, nothing delivered', async () => {
    const r = await runEmail(
      {
        fetch: email(),
        blocklist: () => {
          throw ApplicationFailure.create({
            type: 'ThrottlingException',
            message: 'Rate exceeded',
            nextRetryDelay: '10ms',
          });
        },
      },
      maxAge(1),
    );
    assert.equal(r.result.status, 'failed');
    assert.match(
      r.result.reason ?? '',
      /^deferred since \S+Z, given up after DELIVERY_MAX_AGE \(1 s\): lookupRecipients: Rate exceeded$/,
    );
    assert.equal(r.callsOf('deliverEmail').length, 0);
  });

  test('a forward whose server is unavailable waits and is sent later; the delivery stands', async () => {
    let calls = 0;
    const r = await runEmail(
      {
        fetch: email({ recipients: [ALICE] }),
        rules: () => [{ recipient: ALICE, forwards: [FRANK], outside: [] }],
        forward: (input) => {
          // Unavailable through the first round's eight attempts, then back.
          if (++calls <= 8)
            throw ApplicationFailure.create({
              type: 'ForwardUnavailable',
              message: 'cannot forward: connect ECONNREFUSED',
              nextRetryDelay: '10ms',
            });
          return { route: ours(input.to) ? 'internal' : 'outbound' };
        },
      },
      { delivery: FAST_ROUNDS },
    );
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(r.result.forwards, [{ recipient: ALICE, to: FRANK, route: 'internal', sent: true }]);
    assert.equal(r.callsOf('forwardEmail').length, 9);
    assert.equal(r.callsOf('deliverEmail').length, 1, 'delivered once; only the forward waited');
    assert.deepEqual(
      r.callsOf('tagEmail').map((t) => t.record.status),
      ['delivered'],
      'the mail is not deferred while only its forward waits',
    );
  });

  test('an out-of-office reply whose server is unavailable waits and is sent later, once', async () => {
    let calls = 0;
    const r = await runEmail(
      {
        fetch: email({ recipients: [ALICE] }),
        rules: () => [
          { recipient: ALICE, outOfOffice: { message: 'Away.', contentType: 'text' }, forwards: [], outside: [] },
        ],
        autoReply: () => {
          // Unavailable through the first round's eight attempts, then back.
          if (++calls <= 8)
            throw ApplicationFailure.create({
              type: 'AutoReplyUnavailable',
              message: 'auto-reply failed: connect ECONNREFUSED',
              nextRetryDelay: '10ms',
            });
          return { sent: true };
        },
      },
      { delivery: FAST_ROUNDS },
    );
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(r.result.autoReplies, [{ recipient: ALICE, to: OUTSIDE, sent: true }]);
    assert.equal(r.callsOf('sendAutoReply').length, 9);
    assert.equal(r.result.reason, undefined, 'no rule error once the reply went out');
    assert.deepEqual(
      r.callsOf('tagEmail').map((t) => t.record.status),
      ['delivered'],
      'the mail is not deferred while only its reply waits',
    );
  });

  test('S3 unavailable for the fetch: the email waits, then is fetched and delivered', async () => {
    const r = await runEmail({ fetch: email(), fetchFails: 8 }, { delivery: FAST_ROUNDS });
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(
      r.calls.filter((c) => c.name === 'fetchEmail').map((c) => c.attempt),
      [1, 2, 3, 4, 5, 6, 1, 2, 3],
      'six attempts in the first round, the rest after a wait',
    );
    const [waiting] = r.callsOf('tagEmail');
    assert.equal(waiting.record.status, 'deferred');
    assert.match(waiting.record.error ?? '', /^reading the email from S3: fetchEmail: S3: 503 SlowDown/);
    assert.deepEqual(r.record(), { status: 'delivered', invalidInboxes: [], deliveredCount: 1 });
  });

  test('S3 unavailable for the final tag: the tag waits and is written; the email is not deferred', async () => {
    const r = await runEmail({ fetch: email(), tagFails: 7 }, { delivery: FAST_ROUNDS });
    assert.equal(r.result.status, 'delivered');
    const tags = r.callsOf('tagEmail').map((t) => t.record.status);
    assert.ok(tags.length > 7 && tags.every((t) => t === 'delivered'), `only the final tag, tried again: ${tags}`);
    assert.equal((await searchAttributes(r.handle)).status, 'delivered');
  });

  test('while it waits: MailStatus deferred, details and the progress query say what for and until when', async () => {
    let open = false;
    const o = await start(
      {
        fetch: email(),
        deliver: (input) =>
          input.recipients.map((recipient) => (open ? { recipient, outcome: 'delivered' } : deferred(recipient))),
      },
      { delivery: { firstDelaySeconds: 1, maxDelaySeconds: 1 } },
    );
    let status: string | undefined;
    for (let i = 0; i < 100 && status !== 'deferred'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await searchAttributes(o.handle)).status;
    }
    assert.equal(status, 'deferred', 'MailStatus while the email waits');
    const progress = await o.handle.query(progressQuery);
    assert.equal(progress.status, 'deferred');
    assert.equal(progress.step, 'deliver');
    assert.match(progress.deferred?.reason ?? '', /451 4\.2\.0 mailbox busy/);
    assert.ok(progress.deferred && Date.parse(progress.deferred.giveUpAt) > Date.parse(progress.deferred.nextTry));
    assert.match((await details(o.handle)) ?? '', /^deferred: delivering to 1 recipient\(s\): 451 .*gives up at \S+Z/);
    open = true;
    const result = await o.handle.result();
    assert.equal(result.status, 'delivered');
    assert.equal((await searchAttributes(o.handle)).status, 'delivered');
    assert.equal((await o.handle.query(progressQuery)).status, undefined);
  });

  test('a long wait continues as new, carrying the results so far; tagged deferred once', async () => {
    const r = await runEmail(
      {
        fetch: email({ recipients: [ALICE, BOB] }),
        deliver: (input, round) =>
          input.recipients.map((recipient) =>
            recipient === BOB && round <= 4 ? deferred(recipient) : { recipient, outcome: 'delivered' },
          ),
      },
      { delivery: FAST_ROUNDS, deferral: { roundsPerRun: 2 } },
    );
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(
      r.callsOf('deliverEmail').map((d) => d.recipients),
      [[ALICE, BOB], [BOB], [BOB], [BOB], [BOB]],
      'Alice once, before the first continue-as-new; Bob in each run',
    );
    assert.deepEqual(r.result.recipients, [
      { recipient: ALICE, outcome: 'delivered' },
      { recipient: BOB, outcome: 'delivered' },
    ]);
    assert.equal(r.callsOf('fetchEmail').length, 1, 'the next run goes on delivering; it does not fetch again');
    assert.deepEqual(
      r.callsOf('tagEmail').map((t) => t.record.status),
      ['deferred', 'delivered'],
    );
    // Two waits per run: the email's four waits took three runs; the result is the last one's.
    const history = await r.handle.fetchHistory();
    const startedEvent = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    assert.ok(startedEvent?.continuedExecutionRunId, 'the result came from a run continued as new');
  });
});

describe('lookups read with the fetch (BATCHED_PATCH)', { concurrency: true }, () => {
  const withLookups = (
    fetched: FetchResult,
    lookups: NonNullable<Extract<FetchResult, { kind: 'email' }>['lookups']>,
  ) => ({ ...fetched, lookups }) as FetchResult;

  test('fetchEmail is asked for the lookups; with them an ordinary email is fetch, delivery, tag', async () => {
    const r = await runEmail({ fetch: withLookups(email({ recipients: [ALICE, BOB] }), { blocked: [], rules: [] }) });
    assert.equal(r.result.status, 'delivered');
    assert.deepEqual(r.order, ['fetchEmail', 'deliverEmail', 'tagEmail']);
    assert.equal((r.callsOf('fetchEmail')[0] as { lookups?: boolean }).lookups, true);
    assert.deepEqual(r.callsOf('deliverEmail')[0].recipients, [ALICE, BOB]);
  });

  test('the fetched blocklist and rules decide as lookupRecipients would: blocked recorded, forward made', async () => {
    const r = await runEmail({
      fetch: withLookups(email({ from: OUTSIDE, recipients: [ALICE, BOB] }), {
        blocked: [{ recipient: BOB, pattern: '*@sender.example', sender: OUTSIDE }],
        rules: [{ recipient: ALICE, forwards: [FRANK], outside: [] }],
      }),
    });
    assert.equal(r.result.status, 'partial');
    assert.deepEqual(r.order, ['fetchEmail', 'deliverEmail', 'forwardEmail', 'tagEmail']);
    assert.deepEqual(r.callsOf('deliverEmail')[0].recipients, [ALICE]);
    assert.deepEqual(r.result.forwards, [{ recipient: ALICE, to: FRANK, route: 'internal', sent: true }]);
    assert.deepEqual(r.result.recipients[0], {
      recipient: BOB,
      outcome: 'blocked',
      detail: `${OUTSIDE} matches *@sender.example`,
    });
  });

  test('fetched rules that could not be read: loaded on their own after delivery', async () => {
    const r = await runEmail({
      fetch: withLookups(email(), { blocked: [] }),
      rules: () => [{ recipient: ALICE, forwards: [FRANK], outside: [] }],
    });
    assert.deepEqual(r.order, ['fetchEmail', 'deliverEmail', 'loadRules', 'forwardEmail', 'tagEmail']);
  });

  test('a report matched by the fetch: rewritten without a findOutboundMessage step', async () => {
    const GONE = 'gone@remote.example';
    const r = await runEmail({
      fetch: withLookups(
        email({
          from: 'MAILER-DAEMON@amazonses.com',
          sender: 'MAILER-DAEMON@amazonses.com',
          bounce: {
            fromSes: true,
            recipients: [{ recipient: GONE, action: 'failed', status: '5.1.1' }],
            originalMessageIds: ['<orig-1@example.com>'],
            kind: 'bounce',
          },
          autoReply: { skip: 'bounce' },
        }),
        {
          blocked: [],
          rules: [],
          outbound: { messageId: '<orig-1@example.com>', source: ALICE, subject: 'Our offer', destinations: [GONE] },
        },
      ),
    });
    assert.deepEqual(r.order, ['fetchEmail', 'deliverEmail', 'tagEmail']);
    assert.equal(r.callsOf('deliverEmail')[0].rewrite?.bouncedRecipient, GONE);
    assert.deepEqual(r.result.bounce, { matched: true, bouncedRecipient: GONE, kind: 'bounce', rewritten: true });
  });
});

describe(
  'an email that needs nothing but its delivery: one local activity (FETCH_AND_DELIVER_PATCH)',
  {
    concurrency: true,
  },
  () => {
    const withLookups = (
      fetched: FetchResult,
      lookups: NonNullable<Extract<FetchResult, { kind: 'email' }>['lookups']>,
    ) => ({ ...fetched, lookups }) as FetchResult;
    const localSteps = async (handle: WorkflowHandle) =>
      activitySteps(await handle.fetchHistory()).map((step) => `${step.type}${step.local ? '' : ' (regular)'}`);

    test('fetched with its lookups and nothing else applies: fetch, delivery and tag in fetchAndDeliver', async () => {
      const r = await runEmail({ fetch: withLookups(email({ recipients: [ALICE, BOB] }), { blocked: [], rules: [] }) });
      assert.equal(r.result.status, 'delivered');
      assert.deepEqual(await localSteps(r.handle), ['fetchAndDeliver']);
      assert.deepEqual(r.order, ['fetchEmail', 'deliverEmail', 'tagEmail'], 'each step once, the tag not again');
      assert.deepEqual(r.callsOf('deliverEmail')[0], {
        domain: DOMAIN,
        bucket: BUCKET,
        key: r.callsOf('fetchEmail')[0].key,
        recipients: [ALICE, BOB],
        envelopeFrom: OUTSIDE,
      });
      assert.deepEqual(r.record(), { status: 'delivered', invalidInboxes: [], deliveredCount: 2 });
      assert.deepEqual(r.result.recipients, [
        { recipient: ALICE, outcome: 'delivered' },
        { recipient: BOB, outcome: 'delivered' },
      ]);
      assert.deepEqual(await searchAttributes(r.handle), { domain: DOMAIN, status: 'delivered' });
      assert.equal(await details(r.handle), 'delivered: 2 delivered');
    });

    test('partly blocked, with SES verdicts: the tag records them as the workflow would', async () => {
      const r = await runEmail({
        fetch: withLookups(
          email({ recipients: [ALICE, BOB], verdicts: { spam: 'PASS', virus: 'PASS', source: 'notification' } }),
          {
            blocked: [{ recipient: BOB, pattern: '*@sender.example', sender: OUTSIDE }],
            rules: [],
          },
        ),
      });
      assert.equal(r.result.status, 'partial');
      assert.deepEqual(await localSteps(r.handle), ['fetchAndDeliver']);
      assert.deepEqual(r.callsOf('deliverEmail')[0].recipients, [ALICE]);
      assert.deepEqual(r.result.recipients, [
        { recipient: BOB, outcome: 'blocked', detail: `${OUTSIDE} matches *@sender.example` },
        { recipient: ALICE, outcome: 'delivered' },
      ]);
      const record = r.record();
      assert.equal(record.blockedSender, OUTSIDE);
      assert.deepEqual(record.blockedRecipients, [BOB]);
      assert.equal(record.verdicts, r.result.verdicts);
      assert.ok(r.result.verdicts, 'the verdicts are in the result and the tag');
    });

    test('a delivery that throws there is the delivery step’s: delivered once, by deliverAndTag', async () => {
      const r = await runEmail({
        fetch: withLookups(email(), { blocked: [], rules: [] }),
        deliver: (input, round, attempt) => {
          if (round === 1 && attempt === 1)
            throw ApplicationFailure.create({ type: 'DeliveryUnavailable', message: 'SMTP: connection reset' });
          return input.recipients.map((recipient) => ({ recipient, outcome: 'delivered' as const }));
        },
      });
      assert.equal(r.result.status, 'delivered');
      assert.deepEqual(await localSteps(r.handle), ['fetchAndDeliver', 'deliverAndTag']);
      assert.deepEqual(r.order, ['fetchEmail', 'deliverEmail', 'deliverEmail', 'tagEmail']);
      assert.equal(r.callsOf('fetchEmail').length, 1, 'the fetch is not repeated for the delivery');
      assert.deepEqual(r.record(), { status: 'delivered', invalidInboxes: [], deliveredCount: 1 });
    });

    test('a recipient deferred there: not tagged, the workflow waits and delivers in its own round', async () => {
      const r = await runEmail(
        {
          fetch: withLookups(email({ recipients: [ALICE, BOB] }), { blocked: [], rules: [] }),
          deliver: (input, round) =>
            input.recipients.map((recipient) =>
              round === 1 && recipient === BOB
                ? { recipient, outcome: 'deferred' as const, code: 451, detail: '451 try later' }
                : { recipient, outcome: 'delivered' as const },
            ),
        },
        { deferral: { firstDelaySeconds: 0.05, maxDelaySeconds: 0.05 } },
      );
      assert.equal(r.result.status, 'delivered');
      assert.deepEqual(await localSteps(r.handle), [
        'fetchAndDeliver',
        'tagEmail (regular)', // deferred, while it waits
        'deliverEmail (regular)',
        'tagEmail',
      ]);
      assert.deepEqual(
        r.callsOf('deliverEmail').map((d) => d.recipients),
        [[ALICE, BOB], [BOB]],
      );
      assert.deepEqual(r.record(), { status: 'delivered', invalidInboxes: [], deliveredCount: 2 });
    });

    test('rules, a report or no lookups: fetchAndDeliver only fetches, the steps run as before', async () => {
      const ooo = await runEmail({
        fetch: withLookups(email(), {
          blocked: [],
          rules: [{ recipient: ALICE, forwards: [], outOfOffice: { message: 'Away.', contentType: 'text' } }],
        }),
      });
      assert.deepEqual(ooo.order, ['fetchEmail', 'deliverEmail', 'sendAutoReply', 'tagEmail']);
      assert.deepEqual((await localSteps(ooo.handle)).slice(0, 2), ['fetchAndDeliver', 'deliverEmail']);
      const noLookups = await runEmail({ fetch: email() });
      assert.deepEqual(await localSteps(noLookups.handle), ['fetchAndDeliver', 'lookupRecipients', 'deliverAndTag']);
      const loop = await runEmail({
        fetch: withLookups(email({ loop: 'X-Mailroom-Loop names this worker' }), { blocked: [], rules: [] }),
      });
      assert.equal(loop.result.status, 'loop');
      assert.deepEqual(loop.order, ['fetchEmail', 'tagEmail']);
    });
  },
);
