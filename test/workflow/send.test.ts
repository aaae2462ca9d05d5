// sendMessage with stubbed activities: the undo window (timer until send_at, cancel, reschedule),
// a 5xx ending one recipient (partial), 4xx retried until accepted or until maxAge, a message
// that cannot be built, on the dev server in seconds. The activities against real SMTP, IMAP
// and PostgreSQL are tested in test/integration/send.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { SendActivities, SubmitResult } from '../../activities/send';
import { ACCOUNT_ID, SEND_STATUS } from '../../contracts/search-attributes';
import {
  cancelSendSignal,
  rescheduleSendSignal,
  SEND_ERRORS,
  sendStatusQuery,
  sendWorkflowId,
  type OutboxStatus,
  type SendOptions,
} from '../../contracts/send';
import { sendMessage } from '../../workflows/sendMessage';
import { startTestTemporal } from '../support/temporal';

const TASK_QUEUE = 'send-workflow-test';
const USER = 'user-1';

interface Scenario {
  /** send_at relative to the start, in ms. */
  sendInMs: number;
  recipients: number;
  /** One answer per submitMessage call (the last one repeats). */
  submits: Partial<SubmitResult>[];
  build?: () => void;
  /** The worker's SEND_MAX_AGE as beginSend reports it (default 1 h). */
  workerMaxAgeSeconds?: number;
}

interface Row {
  scenario: Scenario;
  status: OutboxStatus;
  sendAt: number;
  calls: { name: keyof SendActivities; at: number; args: unknown[] }[];
  last: SubmitResult | null;
}

const rows = new Map<string, Row>();

function row(name: keyof SendActivities, args: unknown[]): Row {
  const id = Context.current().info.workflowExecution?.workflowId ?? '(none)';
  const r = rows.get(id);
  if (!r) throw ApplicationFailure.nonRetryable(`no scenario for ${id}`, 'TestSetup');
  r.calls.push({ name, at: Date.now(), args });
  return r;
}

const state = (r: Row) => ({ status: r.status, sendAt: r.sendAt, recipients: r.scenario.recipients, reason: null });

const stubs: SendActivities = {
  async beginSend(ref) {
    const r = row('beginSend', [ref]);
    return {
      ...state(r),
      limits: { maxAgeSeconds: r.scenario.workerMaxAgeSeconds ?? 3600, maxRetryIntervalSeconds: 2 },
    };
  },
  async cancelSend(ref, reason) {
    const r = row('cancelSend', [ref, reason]);
    const cancelled = r.status === 'scheduled';
    if (cancelled) r.status = 'cancelled';
    return { ...state(r), cancelled, reason: cancelled ? (reason ?? 'cancelled') : null };
  },
  async rescheduleSend(ref, sendAt) {
    const r = row('rescheduleSend', [ref, sendAt]);
    const rescheduled = r.status === 'scheduled';
    if (rescheduled) r.sendAt = sendAt;
    return { ...state(r), rescheduled };
  },
  async startSending(ref) {
    const r = row('startSending', [ref]);
    if (r.status === 'scheduled') r.status = 'sending';
    return state(r);
  },
  async buildMessage(ref) {
    const r = row('buildMessage', [ref]);
    r.scenario.build?.();
    return { bytes: 100, attachments: 0 };
  },
  async submitMessage(ref) {
    const r = row('submitMessage', [ref]);
    const n = r.calls.filter((c) => c.name === 'submitMessage').length;
    const s = r.scenario.submits[Math.min(n, r.scenario.submits.length) - 1];
    r.last = {
      accepted: 0,
      failed: 0,
      pending: 0,
      retryReason: null,
      retryAfterMs: null,
      recovery: null,
      acceptedNow: false,
      ...s,
    };
    return r.last;
  },
  async saveSentCopy(ref) {
    row('saveSentCopy', [ref]);
    return { folder: 'Sent', appended: true };
  },
  async finishSend(ref, giveUp) {
    const r = row('finishSend', [ref, giveUp]);
    const l = r.last ?? { accepted: 0, failed: 0, pending: r.scenario.recipients };
    const failed = l.failed + l.pending;
    r.status = failed === 0 ? 'sent' : l.accepted > 0 ? 'partial' : 'failed';
    return {
      ...state(r),
      accepted: l.accepted,
      failed,
      sentFolder: l.accepted ? 'Sent' : null,
      reason: giveUp ?? (failed ? `${failed} refused` : null),
    };
  },
};

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let counter = 0;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  env = await startTestTemporal({ backend: 'dev' });
  worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: TASK_QUEUE,
    workflowsPath: require.resolve('../../workflows/sync'),
    activities: stubs,
  });
  running = worker.run();
});

after(async () => {
  if (worker) {
    worker.shutdown();
    await running;
  }
  await env?.teardown();
});

async function start(scenario: Scenario, options: SendOptions = {}) {
  const accountId = `acct-${++counter}`;
  const outboxId = `outbox-${counter}-${Date.now()}`;
  const workflowId = sendWorkflowId(accountId, outboxId);
  const r: Row = { scenario, status: 'scheduled', sendAt: Date.now() + scenario.sendInMs, calls: [], last: null };
  rows.set(workflowId, r);
  const handle = await env.client.workflow.start(sendMessage, {
    taskQueue: TASK_QUEUE,
    workflowId,
    args: [{ userId: USER, accountId, outboxId, options: { initialRetryIntervalSeconds: 1, ...options } }],
  });
  const names = () => r.calls.map((c) => c.name);
  return { handle, row: r, names, accountId };
}

async function attributes(handle: WorkflowHandle) {
  const { typedSearchAttributes } = await handle.describe();
  return { account: typedSearchAttributes.get(ACCOUNT_ID), status: typedSearchAttributes.get(SEND_STATUS) };
}

/** Polls until `check` holds (generous deadline: the machine is shared). */
async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('sendMessage', { concurrency: true }, () => {
  test('waits for send_at, then builds, submits, saves the Sent copy and records sent', async () => {
    const s = await start({ sendInMs: 2000, recipients: 2, submits: [{ accepted: 2, acceptedNow: true }] });
    const result = await s.handle.result();
    assert.deepEqual(result, {
      outboxId: result.outboxId,
      status: 'sent',
      recipientsAccepted: 2,
      recipientsFailed: 0,
      sentFolder: 'Sent',
      reason: null,
    });
    assert.deepEqual(s.names(), [
      'beginSend',
      'startSending',
      'buildMessage',
      'submitMessage',
      'saveSentCopy',
      'finishSend',
    ]);
    const fired = s.row.calls.find((c) => c.name === 'startSending')!.at;
    assert.ok(fired >= s.row.sendAt, 'not before send_at');
    assert.deepEqual(await attributes(s.handle), { account: s.accountId, status: 'sent' });
  });

  test('cancel before send_at is undo send: nothing built or submitted, cancelled', async () => {
    const s = await start({ sendInMs: 600_000, recipients: 1, submits: [{ accepted: 1 }] });
    await until('the workflow waits', async () => (await attributes(s.handle)).status === 'scheduled');
    await s.handle.signal(cancelSendSignal, { reason: 'changed my mind' });
    const result = await s.handle.result();
    assert.equal(result.status, 'cancelled');
    assert.equal(result.reason, 'changed my mind');
    assert.deepEqual(s.names(), ['beginSend', 'cancelSend']);
    assert.equal((await attributes(s.handle)).status, 'cancelled');
  });

  test('reschedule moves the timer (here: from 10 minutes to now)', async () => {
    const s = await start({ sendInMs: 600_000, recipients: 1, submits: [{ accepted: 1, acceptedNow: true }] });
    await until('the workflow waits', async () => (await s.handle.query(sendStatusQuery)).phase === 'waiting');
    const to = Date.now() + 500;
    await s.handle.signal(rescheduleSendSignal, { sendAt: to });
    const result = await s.handle.result();
    assert.equal(result.status, 'sent');
    assert.deepEqual(s.row.calls.find((c) => c.name === 'rescheduleSend')!.args[1], to);
    assert.ok(s.row.calls.find((c) => c.name === 'startSending')!.at >= to);
  });

  test('a recipient refused with 5xx ends failed, the others are sent: partial', async () => {
    const s = await start({ sendInMs: 0, recipients: 3, submits: [{ accepted: 2, failed: 1, acceptedNow: true }] });
    const result = await s.handle.result();
    assert.equal(result.status, 'partial');
    assert.equal(result.recipientsFailed, 1);
    assert.equal(s.names().filter((n) => n === 'submitMessage').length, 1, 'a 5xx is not retried');
    assert.equal((await attributes(s.handle)).status, 'partial');
  });

  test('4xx (deferred) is retried with backoff until accepted; the Sent copy once, after the first acceptance', async () => {
    const s = await start({
      sendInMs: 0,
      recipients: 2,
      submits: [
        { pending: 2, retryReason: '451 4.3.0 try later' },
        { accepted: 1, pending: 1, retryReason: '452 mailbox busy', acceptedNow: true },
        { accepted: 2, acceptedNow: true },
      ],
    });
    const result = await s.handle.result();
    assert.equal(result.status, 'sent');
    assert.deepEqual(
      s.names().filter((n) => n === 'submitMessage' || n === 'saveSentCopy'),
      ['submitMessage', 'submitMessage', 'saveSentCopy', 'submitMessage'],
    );
    const status = await s.handle.query(sendStatusQuery);
    assert.equal(status.attempts, 3);
  });

  test('temporary failures past maxAge end failed, saying why', async () => {
    const s = await start(
      { sendInMs: 0, recipients: 1, submits: [{ pending: 1, retryReason: '421 4.7.0 too many connections' }] },
      { maxAgeSeconds: 3 },
    );
    const result = await s.handle.result();
    assert.equal(result.status, 'failed');
    assert.match(result.reason ?? '', /SEND_MAX_AGE.*421 4\.7\.0 too many connections/);
    assert.ok(s.names().filter((n) => n === 'submitMessage').length >= 2, 'retried before giving up');
    assert.equal((await attributes(s.handle)).status, 'failed');
  });

  test("without options the worker's SEND_MAX_AGE applies", async () => {
    const s = await start({
      sendInMs: 0,
      recipients: 1,
      submits: [{ pending: 1, retryReason: '451 later' }],
      workerMaxAgeSeconds: 2,
    });
    const result = await s.handle.result();
    assert.equal(result.status, 'failed');
    assert.match(result.reason ?? '', /gave up after 2 s of temporary failures \(SEND_MAX_AGE\): 451 later/);
  });

  test('the account send rate delays the next attempt by the wait it names', async () => {
    const s = await start({
      sendInMs: 0,
      recipients: 1,
      submits: [
        { pending: 1, retryAfterMs: 1500, retryReason: 'send rate' },
        { accepted: 1, acceptedNow: true },
      ],
    });
    const result = await s.handle.result();
    assert.equal(result.status, 'sent');
    const submits = s.row.calls.filter((c) => c.name === 'submitMessage');
    assert.ok(submits[1].at - submits[0].at >= 1500, 'the second attempt waited for the rate');
  });

  test('a message that cannot be built (attachment over the cap) fails without a submission', async () => {
    const s = await start({
      sendInMs: 0,
      recipients: 1,
      submits: [{ accepted: 1 }],
      build: () => {
        throw ApplicationFailure.nonRetryable('attachment big.iso is 30 MiB, over the limit', SEND_ERRORS.NotSendable);
      },
    });
    const result = await s.handle.result();
    assert.equal(result.status, 'failed');
    assert.match(result.reason ?? '', /big\.iso/);
    assert.ok(!s.names().includes('submitMessage'));
  });

  test('a cancel after sending began is too late and ignored', async () => {
    const s = await start({ sendInMs: 0, recipients: 1, submits: [{ accepted: 1, acceptedNow: true }] });
    await until('sending began', () => s.row.status !== 'scheduled');
    await s.handle.signal(cancelSendSignal, {}).catch(() => undefined);
    const result = await s.handle.result();
    assert.equal(result.status, 'sent');
    assert.ok(!s.names().includes('cancelSend'));
  });
});
