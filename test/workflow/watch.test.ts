// watchAccount with stubbed activities: the watcher's loop (a change asks for one sync, a quiet
// period asks for none, the mailbox mark is carried from one watch to the next, a lost
// connection backs off and forces one sync after the reconnect, a refused credential waits for
// a new one, a server without IDLE ends the watcher, the connection is given to a sync with a
// budget of one, continue-as-new carries the counters, cancellation records 'stopped'). The
// activities against real Dovecot and PostgreSQL: test/integration/sync-watch.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CancelledFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { SyncActivities } from '../../activities/sync';
import { ACCOUNT_ID } from '../../contracts/search-attributes';
import { credentialsUpdatedSignal, ERR_AUTH } from '../../contracts/sync';
import {
  watchStatusQuery,
  watchTaskQueue,
  type MailboxMark,
  type WatchAccountInput,
  type WatchOptions,
  type WatchOutcome,
} from '../../contracts/watch';
import { reconnectDelaySeconds, watchAccount } from '../../workflows/watchAccount';
import { startTestTemporal } from '../support/temporal';

const TASK_QUEUE = 'watch-workflow-test';
const USER = 'user-1';

type WatchActivities = Pick<SyncActivities, 'watchMailbox' | 'requestSync' | 'awaitSyncsDone' | 'recordWatcherState'>;
type In<K extends keyof WatchActivities> = Parameters<WatchActivities[K]>[0];

/** One scripted watch: an outcome, or a failure to throw. */
type Step = WatchOutcome | { throw: ApplicationFailure };

interface Run {
  steps: Step[];
  calls: { name: keyof WatchActivities; input: unknown }[];
  /** requestSync fails this many times first. */
  requestFailures: number;
  /** awaitSyncsDone answers false this many times first. */
  busy: number;
  /** A watch is idling (the scripted steps are done) and has not yet seen its cancellation. */
  idling?: boolean;
}

const runs = new Map<string, Run>();

function current(name: keyof WatchActivities, input: unknown): Run {
  const id = Context.current().info.workflowExecution?.workflowId ?? '(none)';
  const run = runs.get(id);
  if (!run) throw ApplicationFailure.nonRetryable(`no scenario for workflow ${id}`, 'TestSetup');
  run.calls.push({ name, input });
  return run;
}

const stubs: WatchActivities = {
  async watchMailbox(input) {
    const run = current('watchMailbox', input);
    const step = run.steps.shift();
    if (!step) {
      // Script done: IDLE until cancelled, heartbeating like the real one.
      const ctx = Context.current();
      run.idling = true;
      for (;;) {
        ctx.heartbeat();
        if (ctx.cancellationSignal.aborted) {
          // Like the real one, which may still record a state while it winds down.
          await new Promise((r) => setTimeout(r, 200));
          run.idling = false;
          throw new CancelledFailure('cancelled');
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if ('throw' in step) throw step.throw;
    return step;
  },
  async requestSync(input) {
    const run = current('requestSync', input);
    if (run.requestFailures > 0) {
      run.requestFailures--;
      throw ApplicationFailure.nonRetryable('Temporal unavailable (test)', 'TestUnavailable');
    }
    return 'triggered';
  },
  async awaitSyncsDone(input) {
    const run = current('awaitSyncsDone', input);
    if (run.busy > 0) {
      run.busy--;
      return false;
    }
    return true;
  },
  async recordWatcherState(input) {
    const run = current('recordWatcherState', input);
    (run.calls.at(-1)!.input as { whileWatching?: boolean }).whileWatching = run.idling === true;
    return true;
  },
};

let env: TestWorkflowEnvironment;
let worker: Worker;
let watchWorker: Worker;
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
  // The watch activities go to their own queue (contracts/watch.ts), as on the sync worker.
  watchWorker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: watchTaskQueue(TASK_QUEUE),
    activities: stubs,
  });
  running = Promise.all([worker.run(), watchWorker.run()]).then(() => undefined);
});

after(async () => {
  if (worker) {
    worker.shutdown();
    watchWorker?.shutdown();
    await running;
  }
  await env?.teardown();
});

const mark = (uidNext: number, exists = uidNext - 1): MailboxMark => ({
  uidValidity: 7,
  uidNext,
  exists,
  highestModseq: String(100 + uidNext),
});

async function start(steps: Step[], options: WatchOptions = {}, extra: Partial<Run> = {}) {
  const accountId = `acct-${++counter}-${Date.now()}`;
  const workflowId = `watch-account-${accountId}`;
  const run: Run = { steps, calls: [], requestFailures: 0, busy: 0, ...extra };
  runs.set(workflowId, run);
  const input: WatchAccountInput = {
    userId: USER,
    accountId,
    options: { reconnectInitialSeconds: 0.05, reconnectMaxSeconds: 0.2, ...options },
  };
  const handle = await env.client.workflow.start(watchAccount, { taskQueue: TASK_QUEUE, workflowId, args: [input] });
  const callsOf = <K extends keyof WatchActivities>(name: K) =>
    run.calls.filter((c) => c.name === name).map((c) => c.input as In<K>);
  return { handle, accountId, run, callsOf };
}

async function waitFor(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const stopped: WatchOutcome = { outcome: 'stopped', reason: 'account acct is disabled' };

describe('watchAccount', { concurrency: true }, () => {
  test('a change asks for one sync, a quiet period for none; each watch compares with the mark the last one saw', async () => {
    const s = await start([
      { outcome: 'behind', mark: mark(5) },
      { outcome: 'changed', events: 20, mark: mark(25) },
      { outcome: 'quiet', mark: mark(25) },
      { outcome: 'changed', events: 1, mark: mark(25, 23) },
      stopped,
    ]);
    const result = await s.handle.result();
    assert.deepEqual(result, {
      accountId: s.accountId,
      state: 'stopped',
      reason: 'account acct is disabled',
      changes: 21,
      syncsRequested: 3,
    });
    assert.deepEqual(
      s.run.calls.map((c) => c.name),
      [
        'watchMailbox',
        'requestSync',
        'watchMailbox',
        'requestSync',
        'watchMailbox',
        'watchMailbox',
        'requestSync',
        'watchMailbox',
        'recordWatcherState',
      ],
      'a burst of 20 events is one sync request',
    );
    assert.deepEqual(
      s.callsOf('watchMailbox').map((w) => w.mark),
      [null, mark(5), mark(25), mark(25), mark(25, 23)],
    );
    assert.ok(s.callsOf('watchMailbox').every((w) => !w.forceBehind));
    assert.deepEqual(
      s.callsOf('requestSync').map((r) => r.watched ?? false),
      [false, true, true],
      'the first look asks for every folder; a change in INBOX for INBOX alone',
    );
    assert.deepEqual(
      s.callsOf('recordWatcherState').map((r) => [r.state, r.detail]),
      [['stopped', 'account acct is disabled']],
    );
    const { typedSearchAttributes } = await s.handle.describe();
    assert.equal(typedSearchAttributes.get(ACCOUNT_ID), s.accountId);
  });

  test('a watch that asked for its syncs itself: its counts are taken, only an owed request is asked again', async () => {
    const s = await start([
      { outcome: 'behind', mark: mark(5) },
      { outcome: 'changed', events: 7, mark: mark(12), requested: 3, owed: false },
      { outcome: 'quiet', mark: mark(12), requested: 0, owed: false },
      { outcome: 'changed', events: 2, mark: mark(14), requested: 0, owed: true },
      stopped,
    ]);
    const result = await s.handle.result();
    assert.equal(result.changes, 9);
    assert.equal(result.syncsRequested, 1 + 3 + 1, "the first look's request, the watch's own three, the owed one");
    assert.deepEqual(
      s.callsOf('requestSync').map((r) => r.watched ?? false),
      [false, true],
      'asked by the workflow: the first look (every folder) and the owed INBOX request',
    );
    assert.ok(
      s.callsOf('watchMailbox').every((w) => w.requestSyncs === true),
      'a new run asks its watches to request syncs themselves',
    );
    assert.deepEqual(
      s.callsOf('watchMailbox').map((w) => w.mark),
      [null, mark(5), mark(12), mark(12), mark(14)],
    );
  });

  test('a lost connection: reconnecting with backoff, then one sync after the reconnect', async () => {
    const s = await start([
      { outcome: 'quiet', mark: mark(3) },
      { outcome: 'disconnected', reason: 'IMAP server closed the connection' },
      { outcome: 'disconnected', reason: 'connection refused' },
      { outcome: 'behind', mark: mark(4) },
      { outcome: 'quiet', mark: mark(4) },
      stopped,
    ]);
    await s.handle.result();
    const watches = s.callsOf('watchMailbox');
    assert.deepEqual(
      watches.map((w) => w.forceBehind),
      [false, false, true, true, false, false],
      'after a disconnect the next watches report the mailbox as behind until a sync was asked for',
    );
    assert.deepEqual(
      s.callsOf('requestSync').map((r) => r.watched ?? false),
      [true],
      'after a reconnect: one sync of INBOX, the folder watched (every folder before WATCH_RECONNECT_PATCH)',
    );
    assert.deepEqual(
      s.callsOf('recordWatcherState').map((r) => r.state),
      ['reconnecting', 'reconnecting', 'stopped'],
    );
    assert.equal((await s.handle.query(watchStatusQuery)).reconnects, 2);
  });

  test('a watch that reconnects itself: its reconnects count; after a longer outage, one INBOX sync', async () => {
    const s = await start([
      { outcome: 'behind', mark: mark(2) },
      { outcome: 'quiet', mark: mark(3), requested: 1, owed: false, reconnects: 2 },
      { outcome: 'disconnected', reason: 'connection refused', requested: 1, reconnects: 1 },
      { outcome: 'behind', mark: mark(4) },
      { outcome: 'quiet', mark: mark(4), requested: 0, owed: false },
      stopped,
    ]);
    const result = await s.handle.result();
    const watches = s.callsOf('watchMailbox');
    assert.ok(
      watches.every((w) => w.reconnectInside === true),
      'a new run asks its watches to reconnect themselves',
    );
    assert.deepEqual(
      watches.map((w) => w.forceBehind),
      [false, false, false, true, false, false],
      'after the disconnect the next watch reports the mailbox behind; the sync asked for clears it',
    );
    assert.deepEqual(
      s.callsOf('requestSync').map((r) => r.watched ?? false),
      [false, true],
      'the first look syncs every folder; after the outage, INBOX alone',
    );
    assert.equal(result.syncsRequested, 1 + 1 + 1 + 1);
    assert.deepEqual(
      s.callsOf('recordWatcherState').map((r) => r.state),
      ['reconnecting', 'stopped'],
    );
    assert.equal(
      (await s.handle.query(watchStatusQuery)).reconnects,
      2 + 1 + 1,
      'two inside the first watch, one inside the second, and its disconnect',
    );
  });

  test('a failed sync request is asked again after the next watch', async () => {
    const s = await start(
      // With forceBehind the real activity answers 'behind' at once.
      [{ outcome: 'changed', events: 1, mark: mark(2) }, { outcome: 'behind', mark: mark(2) }, stopped],
      {},
      { requestFailures: 1 },
    );
    await s.handle.result();
    assert.deepEqual(
      s.callsOf('watchMailbox').map((w) => w.forceBehind),
      [false, true, false],
    );
  });

  test('a server without IDLE: recorded as unsupported, the watcher ends', async () => {
    const reason = 'IMAP server imap.example does not offer IDLE (RFC 2177)';
    const s = await start([{ outcome: 'unsupported', reason }]);
    const result = await s.handle.result();
    assert.equal(result.state, 'unsupported');
    assert.deepEqual(
      s.callsOf('recordWatcherState').map((r) => [r.state, r.detail]),
      [['unsupported', reason]],
    );
    assert.equal(s.callsOf('requestSync').length, 0);
  });

  test('a refused credential: needs_attention, no login until a new credential is signalled', async () => {
    const s = await start(
      [
        { throw: ApplicationFailure.create({ message: 'login refused', type: ERR_AUTH, nonRetryable: true }) },
        { outcome: 'behind', mark: mark(9) },
        stopped,
      ],
      { attentionRecheckSeconds: 3600 },
    );
    await waitFor('needs_attention recorded', () => s.callsOf('recordWatcherState').length > 0);
    assert.equal(s.callsOf('recordWatcherState')[0].state, 'needs_attention');
    assert.equal(s.callsOf('watchMailbox').length, 1, 'waits; does not log in again');
    await s.handle.signal(credentialsUpdatedSignal);
    await s.handle.result();
    assert.equal(s.callsOf('watchMailbox').length, 3);
    assert.equal(s.callsOf('watchMailbox')[1].forceBehind, true);
  });

  test('budget of one connection: released to a sync, watches again once no sync runs', async () => {
    const s = await start([{ outcome: 'released', mark: mark(6) }, stopped], {}, { busy: 2 });
    await s.handle.result();
    assert.deepEqual(
      s.run.calls.map((c) => c.name),
      [
        'watchMailbox',
        'recordWatcherState',
        'awaitSyncsDone',
        'awaitSyncsDone',
        'awaitSyncsDone',
        'watchMailbox',
        'recordWatcherState',
      ],
    );
    assert.deepEqual(s.callsOf('watchMailbox')[1].mark, mark(6));
  });

  test('continues as new after iterationsPerRun watches, carrying the mark and counters', async () => {
    const s = await start(
      [
        { outcome: 'changed', events: 2, mark: mark(3) },
        { outcome: 'quiet', mark: mark(3) },
        { outcome: 'changed', events: 1, mark: mark(4) },
        stopped,
      ],
      { iterationsPerRun: 2 },
    );
    const result = await s.handle.result();
    assert.equal(result.changes, 3);
    assert.equal(result.syncsRequested, 2);
    assert.deepEqual(s.callsOf('watchMailbox')[2].mark, mark(3), 'the new run starts from the carried mark');
    assert.equal((await s.handle.query(watchStatusQuery)).continuedAsNew, 1);
  });

  test('cancelled (account disabled or removed): records stopped and ends cancelled', async () => {
    const s = await start([{ outcome: 'quiet', mark: mark(2) }]);
    await waitFor('second watch running', () => s.callsOf('watchMailbox').length === 2);
    await s.handle.cancel();
    await assert.rejects(s.handle.result(), (err: unknown) => err instanceof WorkflowFailedError);
    const last = s.callsOf('recordWatcherState').at(-1) as { state?: string; whileWatching?: boolean };
    assert.equal(last?.state, 'stopped');
    // After the watch has ended (WATCH_STOP_AFTER_WATCH_PATCH): nothing it records can follow it.
    assert.equal(last.whileWatching, false, 'stopped was recorded while the watch activity still ran');
  });

  test('reconnect backoff doubles and is capped', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 12, 1000].map((n) => reconnectDelaySeconds(n, 1, 30)),
      [1, 2, 4, 8, 16, 30, 30],
    );
  });
});
