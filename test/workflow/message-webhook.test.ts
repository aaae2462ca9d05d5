// deliverMessageWebhook with stubbed activities, on the dev server: delivered (the outcome and
// the accepted attempt recorded), refused (recorded as failed at once, no retry), failing until
// the give-up time (retried, then recorded as failed), the account gone (nothing to record).
// The real POSTs against a receiver are in test/integration/sync-events.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { SyncActivities } from '../../activities/sync';
import {
  ERR_WEBHOOK_GIVEN_UP,
  ERR_WEBHOOK_NO_ACCOUNT,
  ERR_WEBHOOK_REFUSED,
  type MessageWebhookInput,
} from '../../contracts/message-events';
import { deliverMessageWebhook } from '../../workflows/messageWebhook';
import { startTestTemporal } from '../support/temporal';

const TASK_QUEUE = 'message-webhook-workflow-test';

type Post = (attempt: number) => 'ok' | 'retry' | 'refuse' | 'gone';
const scenarios = new Map<number, Post>();
const posts = new Map<number, number>();
const outcomes = new Map<number, Parameters<SyncActivities['recordMessageWebhookOutcome']>[0][]>();

const stubs: Pick<SyncActivities, 'postMessageWebhook' | 'recordMessageWebhookOutcome'> = {
  async postMessageWebhook({ event }) {
    const attempt = Context.current().info.attempt;
    posts.set(event.eventId, attempt);
    switch (scenarios.get(event.eventId)!(attempt)) {
      case 'ok':
        return { eventId: event.eventId, status: 'delivered', httpStatus: 204, attempt };
      case 'refuse':
        throw ApplicationFailure.nonRetryable('refused: HTTP 400', ERR_WEBHOOK_REFUSED);
      case 'gone':
        throw ApplicationFailure.nonRetryable('account gone', ERR_WEBHOOK_NO_ACCOUNT);
      default:
        throw ApplicationFailure.retryable(`attempt ${attempt}: HTTP 503`, 'WebhookNotDelivered');
    }
  },
  async recordMessageWebhookOutcome(input) {
    outcomes.set(input.eventId, [...(outcomes.get(input.eventId) ?? []), input]);
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
  worker?.shutdown();
  await running;
  await env?.teardown();
});

function deliver(post: Post, giveUpSeconds = 600) {
  const eventId = ++counter;
  scenarios.set(eventId, post);
  const input: MessageWebhookInput = {
    event: {
      type: 'messageNew',
      eventId,
      userId: 'user-1',
      accountId: 'account-1',
      messageId: 100 + eventId,
      folder: 'INBOX',
      occurredAt: new Date(0).toISOString(),
    },
    retry: { initialSeconds: 1, maxSeconds: 1, giveUpSeconds, timeoutMs: 1000 },
  };
  const handle = env.client.workflow.execute(deliverMessageWebhook, {
    taskQueue: TASK_QUEUE,
    workflowId: `message-webhook/account-1/${100 + eventId}-${Date.now()}`,
    args: [input],
  });
  return { eventId, handle };
}

async function failureOf(p: Promise<unknown>): Promise<{ type?: string; message: string }> {
  const err = await p.then(
    () => assert.fail('the delivery should have failed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  const cause = err.cause as ApplicationFailure;
  return { type: cause.type ?? undefined, message: cause.message };
}

describe('deliverMessageWebhook', { concurrency: true }, () => {
  test('delivered after two failed attempts: recorded as delivered with the accepted attempt', async () => {
    const { eventId, handle } = deliver((attempt) => (attempt < 3 ? 'retry' : 'ok'));
    assert.deepEqual(await handle, { eventId, status: 'delivered', httpStatus: 204, attempt: 3 });
    assert.deepEqual(outcomes.get(eventId), [
      { userId: 'user-1', eventId, status: 'delivered', attempts: 3, error: null },
    ]);
  });

  test('refused: not retried, recorded as failed, the workflow fails', async () => {
    const { eventId, handle } = deliver(() => 'refuse');
    const failure = await failureOf(handle);
    assert.equal(failure.type, ERR_WEBHOOK_GIVEN_UP);
    assert.match(failure.message, /refused: HTTP 400/);
    assert.equal(posts.get(eventId), 1);
    assert.deepEqual(
      outcomes.get(eventId)?.map((o) => [o.status, o.error]),
      [['failed', 'refused: HTTP 400']],
    );
  });

  test('failing past the give-up time: retried, then recorded as failed with the last failure', async () => {
    const { eventId, handle } = deliver(() => 'retry', 3);
    const failure = await failureOf(handle);
    assert.equal(failure.type, ERR_WEBHOOK_GIVEN_UP);
    assert.ok(posts.get(eventId)! >= 2, `attempts: ${posts.get(eventId)}`);
    const [outcome] = outcomes.get(eventId)!;
    assert.equal(outcome.status, 'failed');
    assert.match(outcome.error ?? '', /not delivered within 3 s, given up \(last failure: attempt \d+: HTTP 503\)/);
  });

  test('the account is gone: the workflow fails, nothing to record', async () => {
    const { eventId, handle } = deliver(() => 'gone');
    assert.equal((await failureOf(handle)).type, ERR_WEBHOOK_NO_ACCOUNT);
    assert.equal(outcomes.get(eventId), undefined);
  });
});
