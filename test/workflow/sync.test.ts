// syncAccount with stubbed activities: the orchestration (folders in order, continue-as-new
// with the plan carried over, a failing folder recorded while the others sync, a refused
// credential waiting for a new one, a missing account, a run that fails) in seconds, on the
// dev server. The activities against real IMAP and PostgreSQL are tested in test/integration/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import {
  WorkflowFailedError,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { SyncActivities } from '../../activities/sync';
import { ACCOUNT_ID, SYNC_STATUS } from '../../contracts/search-attributes';
import {
  credentialsUpdatedSignal,
  ERR_AUTH,
  progressQuery,
  syncNowSignal,
  type SyncAccountInput,
  type SyncOptions,
} from '../../contracts/sync';
import { syncAccount } from '../../workflows/syncAccount';
import { startTestTemporal } from '../support/temporal';

const TASK_QUEUE = 'sync-workflow-test';
const USER = 'user-1';

type In<K extends keyof SyncActivities> = Parameters<SyncActivities[K]>[0];
type Out<K extends keyof SyncActivities> = Awaited<ReturnType<SyncActivities[K]>>;

interface Call {
  name: keyof SyncActivities;
  input: unknown;
}

interface Scenario {
  begin?: (input: In<'beginSync'>, call: number) => Out<'beginSync'>;
  /** Batches of new messages per folder, fetched one batch per fetchNewMessages call. */
  folders: Record<string, number[]>;
  /** Throw to fail prepareFolders; `call` counts from 1. */
  prepare?: (call: number) => void;
  /** Throw to fail one folder's fetch; a promise holds the fetch until it settles. */
  fetch?: (input: In<'fetchNewMessages'>) => void | Promise<void>;
  /** A promise holds finishSync until it settles. */
  finish?: (call: number) => void | Promise<void>;
}

interface Run {
  scenario: Scenario;
  /** What each prepareFolders was asked for: its `only`, or 'all'. */
  prepared: (string[] | 'all')[];
  calls: Call[];
  batches: Record<string, number[]>;
  added: number;
}

const runs = new Map<string, Run>();

function current(name: keyof SyncActivities, input: unknown): Run {
  const id = Context.current().info.workflowExecution?.workflowId ?? '(none)';
  const run = runs.get(id);
  if (!run) throw ApplicationFailure.nonRetryable(`no scenario for workflow ${id}`, 'TestSetup');
  run.calls.push({ name, input });
  return run;
}

// The sync's activities (the IDLE watcher's are stubbed in test/workflow/watch.test.ts).
const stubs: Omit<SyncActivities, 'watchMailbox' | 'requestSync' | 'awaitSyncsDone' | 'recordWatcherState'> = {
  async beginSync(input) {
    const run = current('beginSync', input);
    return (
      run.scenario.begin?.(input, run.calls.filter((c) => c.name === 'beginSync').length) ?? {
        syncRunId: 42,
        state: 'ready',
        reason: null,
        authMethod: 'password',
      }
    );
  },
  async prepareFolders(input) {
    const run = current('prepareFolders', input);
    run.scenario.prepare?.(run.calls.filter((c) => c.name === 'prepareFolders').length);
    const paths = Object.keys(run.batches).filter((p) => !input.only || input.only.includes(p));
    run.prepared.push(input.only ?? 'all');
    return {
      folders: paths.map((path) => ({ path, uidValidity: 7, pending: run.batches[path].reduce((a, b) => a + b, 0) })),
      condstore: true,
      flagsUpdated: 0,
      messagesDeleted: 0,
      foldersReset: [],
      foldersRemoved: [],
    };
  },
  async fetchNewMessages(input) {
    const run = current('fetchNewMessages', input);
    await run.scenario.fetch?.(input);
    const stored = run.batches[input.folder].shift() ?? 0;
    run.added += stored;
    const remaining = run.batches[input.folder].reduce((a, b) => a + b, 0);
    return { stored, lastUid: run.added, remaining, done: remaining === 0, uidValidityChanged: false };
  },
  async recordFolderError(input) {
    current('recordFolderError', input);
  },
  async finishSync(input) {
    const run = current('finishSync', input);
    await run.scenario.finish?.(run.calls.filter((c) => c.name === 'finishSync').length);
    return {
      messagesAdded: run.added,
      messagesUpdated: 0,
      messagesDeleted: 0,
      messagesSkipped: 0,
      folders: input.folders ?? 0,
    };
  },
  // The webhook delivery's (workflows/messageWebhook.ts), not called by syncAccount.
  async postMessageWebhook() {
    throw ApplicationFailure.nonRetryable('not part of syncAccount', 'TestSetup');
  },
  async recordMessageWebhookOutcome() {
    throw ApplicationFailure.nonRetryable('not part of syncAccount', 'TestSetup');
  },
};

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let started = 0;
let counter = 0;

before(async () => {
  started = Date.now();
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
  console.log(`# sync workflow tests: ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
});

async function start(
  scenario: Scenario,
  options: SyncOptions = {},
  how: { folders?: string[]; signalWithStart?: boolean; workflowId?: string } = {},
) {
  const accountId = `acct-${++counter}-${Date.now()}`;
  const workflowId = how.workflowId ?? `sync-account-${accountId}`;
  const run: Run = { scenario, calls: [], prepared: [], batches: structuredClone(scenario.folders), added: 0 };
  runs.set(workflowId, run);
  const input: SyncAccountInput = {
    userId: USER,
    accountId,
    options: { imapMaxAttempts: 1, ...options },
    ...(how.folders ? { folders: how.folders } : {}),
  };
  const handle: WorkflowHandleWithFirstExecutionRunId<typeof syncAccount> = how.signalWithStart
    ? await env.client.workflow
        .signalWithStart(syncAccount, {
          taskQueue: TASK_QUEUE,
          workflowId,
          args: [input],
          signal: syncNowSignal,
          signalArgs: [{ folders: how.folders }],
        })
        .then((h) => Object.assign(h, { firstExecutionRunId: h.signaledRunId }))
    : await env.client.workflow.start(syncAccount, { taskQueue: TASK_QUEUE, workflowId, args: [input] });
  const callsOf = <K extends keyof SyncActivities>(name: K) =>
    run.calls.filter((c) => c.name === name).map((c) => c.input as In<K>);
  return { handle, accountId, run, callsOf };
}

async function searchAttributes(handle: WorkflowHandle) {
  const { typedSearchAttributes } = await handle.describe();
  return { account: typedSearchAttributes.get(ACCOUNT_ID), status: typedSearchAttributes.get(SYNC_STATUS) };
}

describe('syncAccount', { concurrency: true }, () => {
  test('folders synced in order across continue-as-new; one sync run opened and closed', async () => {
    const s = await start({ folders: { INBOX: [3, 2], Archive: [1] } }, { fetchCallsPerRun: 1 });
    const result = await s.handle.result();
    assert.deepEqual(result, {
      accountId: s.accountId,
      syncRunId: 42,
      status: 'succeeded',
      reason: null,
      folders: 2,
      messagesAdded: 6,
      messagesUpdated: 0,
      messagesDeleted: 0,
      messagesSkipped: 0,
      foldersFailed: 0,
    });
    assert.deepEqual(
      s.run.calls.map((c) => c.name),
      ['beginSync', 'prepareFolders', 'fetchNewMessages', 'fetchNewMessages', 'fetchNewMessages', 'finishSync'],
      'a continued run resumes the plan: no second beginSync or prepareFolders',
    );
    assert.deepEqual(
      s.callsOf('fetchNewMessages').map((f) => [f.folder, f.syncRunId, f.uidValidity]),
      [
        ['INBOX', 42, 7],
        ['INBOX', 42, 7],
        ['Archive', 42, 7],
      ],
    );
    assert.deepEqual(s.callsOf('finishSync'), [
      { userId: USER, accountId: s.accountId, syncRunId: 42, status: 'succeeded', folders: 2, error: null },
    ]);
    const latest = await s.handle.describe();
    assert.notEqual(latest.runId, s.handle.firstExecutionRunId, 'the sync continued as new');
    assert.deepEqual(await searchAttributes(s.handle), { account: s.accountId, status: 'succeeded' });
    const progress = await s.handle.query(progressQuery);
    assert.equal(progress.continuedAsNew, 2);
    assert.equal(progress.messagesStored, 6);
  });

  test('a folder whose fetch keeps failing is recorded and skipped; the others sync: partial', async () => {
    const s = await start({
      folders: { INBOX: [2], Stalled: [5], Sent: [1] },
      fetch: (input) => {
        if (input.folder === 'Stalled')
          throw ApplicationFailure.create({ type: 'ImapStalled', message: 'server sent nothing for 60 s in Stalled' });
      },
    });
    const result = await s.handle.result();
    assert.equal(result.status, 'partial');
    assert.equal(result.foldersFailed, 1);
    assert.equal(result.messagesAdded, 3);
    assert.match(result.reason ?? '', /1 folder\(s\) could not be synced this run: Stalled/);
    assert.deepEqual(s.callsOf('recordFolderError'), [
      {
        userId: USER,
        accountId: s.accountId,
        syncRunId: 42,
        folder: 'Stalled',
        reason: 'server sent nothing for 60 s in Stalled',
      },
    ]);
    assert.deepEqual(
      s.callsOf('fetchNewMessages').map((f) => f.folder),
      ['INBOX', 'Stalled', 'Sent'],
    );
    assert.equal(s.callsOf('finishSync')[0].status, 'partial');
    assert.equal((await searchAttributes(s.handle)).status, 'partial');
  });

  test('a refused credential waits for a new one (credentialsUpdated), then the sync goes on', async () => {
    const s = await start({
      folders: { INBOX: [4] },
      prepare: (call) => {
        if (call === 1)
          throw ApplicationFailure.create({
            type: ERR_AUTH,
            message: 'AUTHENTICATE failed: invalid_grant',
            nonRetryable: true,
            details: [{ authMethod: 'oauth2' }],
          });
      },
    });
    let progress = await s.handle.query(progressQuery);
    for (let i = 0; i < 100 && progress.phase !== 'waiting_for_token'; i++) {
      await delay(50);
      progress = await s.handle.query(progressQuery);
    }
    assert.equal(progress.phase, 'waiting_for_token', 'an OAuth2 account waits for a token, not a password');
    assert.equal(progress.status, 'needs_attention');
    assert.equal(progress.reason, 'AUTHENTICATE failed: invalid_grant');
    assert.equal((await searchAttributes(s.handle)).status, 'needs_attention');
    assert.equal(s.callsOf('finishSync').length, 0, 'the run stays open while it waits');
    await s.handle.signal(credentialsUpdatedSignal);
    const result = await s.handle.result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesAdded, 4);
    assert.equal(s.callsOf('prepareFolders').length, 2);
  });

  test('no new credential within authWaitSeconds: ends needs_attention with the reason', async () => {
    const s = await start(
      {
        folders: { INBOX: [1] },
        prepare: () => {
          throw ApplicationFailure.create({
            type: ERR_AUTH,
            message: 'LOGIN failed',
            nonRetryable: true,
            details: [{ authMethod: 'password' }],
          });
        },
      },
      { authWaitSeconds: 0.2 },
    );
    const result = await s.handle.result();
    assert.equal(result.status, 'needs_attention');
    assert.equal(result.reason, 'LOGIN failed');
    assert.deepEqual(
      s.callsOf('finishSync').map((f) => [f.status, f.error]),
      [['needs_attention', 'LOGIN failed']],
    );
    assert.equal(s.callsOf('fetchNewMessages').length, 0);
  });

  test('an account that no longer exists is skipped without opening a sync run', async () => {
    const s = await start({
      folders: {},
      begin: () => ({ syncRunId: null, state: 'missing', reason: 'account gone does not exist' }),
    });
    const result = await s.handle.result();
    assert.equal(result.status, 'skipped');
    assert.equal(result.reason, 'account gone does not exist');
    assert.deepEqual(
      s.run.calls.map((c) => c.name),
      ['beginSync'],
    );
    assert.equal((await searchAttributes(s.handle)).status, 'skipped');
  });

  test('a server that cannot be reached fails the run: recorded failed, SyncFailed says how to retry', async () => {
    const s = await start({
      folders: { INBOX: [1] },
      prepare: () => {
        throw ApplicationFailure.create({ type: 'ImapConnectionError', message: 'connect ECONNREFUSED 127.0.0.1:993' });
      },
    });
    const err = await s.handle.result().then(
      () => assert.fail('the run completed'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'SyncFailed');
    assert.match(
      err.cause.message,
      new RegExp(`Sync of account ${s.accountId} failed: connect ECONNREFUSED.*npm run sync:now`),
    );
    assert.deepEqual(
      s.callsOf('finishSync').map((f) => [f.status, f.error]),
      [['failed', 'connect ECONNREFUSED 127.0.0.1:993']],
    );
    assert.equal((await searchAttributes(s.handle)).status, 'failed');
  });

  // SYNC_EXCLUSIVE_PATCH: the IDLE watcher's requests, one sync of an account at a time.
  test("the watcher's signal-with-start syncs INBOX alone, in one pass", async () => {
    const s = await start({ folders: { INBOX: [2], Archive: [5] } }, {}, { folders: ['INBOX'], signalWithStart: true });
    const result = await s.handle.result();
    assert.equal(result.status, 'succeeded');
    assert.equal(result.messagesAdded, 2);
    assert.deepEqual(s.run.prepared, [['INBOX']], 'the signal sent with the start is this pass, not a second one');
    assert.deepEqual(
      s.callsOf('fetchNewMessages').map((f) => f.folder),
      ['INBOX'],
    );
    assert.equal(s.callsOf('beginSync')[0].exclusive, true);
  });

  test('a sync that finds another running hands it the request and ends skipped; that one makes one more pass', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let fetching!: () => void;
    const inFetch = new Promise<void>((r) => (fetching = r));
    const holder = await start({
      folders: { INBOX: [1], Archive: [1] },
      fetch: async (input) => {
        if (input.folder === 'INBOX' && input.syncRunId === 42) {
          fetching();
          await held;
        }
      },
    });
    await inFetch;
    const holderId = holder.handle.workflowId;
    const joiner = await start(
      {
        folders: { INBOX: [] },
        begin: () => ({
          syncRunId: null,
          state: 'busy',
          reason: `sync ${holderId} is running`,
          running: { workflowId: holderId, syncRunId: 42 },
        }),
      },
      {},
      { folders: ['INBOX'], signalWithStart: true },
    );
    const skipped = await joiner.handle.result();
    assert.equal(skipped.status, 'skipped');
    assert.match(skipped.reason ?? '', new RegExp(`joined sync ${holderId}`));
    assert.deepEqual(
      joiner.run.calls.map((c) => c.name),
      ['beginSync'],
      'the joiner opens no IMAP session',
    );
    release();
    const result = await holder.handle.result();
    assert.equal(result.status, 'succeeded');
    assert.deepEqual(
      holder.run.prepared,
      ['all', ['INBOX']],
      'one more pass, over the folder the joiner was asked for',
    );
    assert.equal(holder.callsOf('finishSync').length, 1);
  });

  test('a running record whose workflow is gone is superseded; one under its own id is taken over at once', async () => {
    const gone = await start({
      folders: { INBOX: [1] },
      begin: (input, call) =>
        call === 1
          ? { syncRunId: null, state: 'busy', reason: 'stale', running: { workflowId: 'no-such-sync', syncRunId: 7 } }
          : { syncRunId: 43, state: 'ready', reason: null, authMethod: 'password' },
    });
    assert.equal((await gone.handle.result()).status, 'succeeded');
    assert.deepEqual(
      gone.callsOf('beginSync').map((b) => b.supersede),
      [undefined, 7],
    );
    const self = await start({
      folders: { INBOX: [1] },
      begin: (input, call) =>
        call === 1
          ? { syncRunId: null, state: 'busy', reason: 'stale', running: { workflowId: input.workflowId, syncRunId: 8 } }
          : { syncRunId: 44, state: 'ready', reason: null, authMethod: 'password' },
    });
    assert.equal((await self.handle.result()).status, 'succeeded');
    assert.deepEqual(
      self.callsOf('beginSync').map((b) => b.supersede),
      [undefined, 8],
    );
  });

  test('a syncNow that arrives while the run finishes is not lost: one more pass', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let finishing!: () => void;
    const inFinish = new Promise<void>((r) => (finishing = r));
    const s = await start({
      folders: { INBOX: [1], Sent: [1] },
      finish: async (call) => {
        if (call === 1) {
          finishing();
          await held;
        }
      },
    });
    await inFinish;
    await s.handle.signal(syncNowSignal, { folders: ['Sent'] });
    release();
    const result = await s.handle.result();
    assert.equal(result.status, 'succeeded');
    assert.deepEqual(s.run.prepared, ['all', ['Sent']]);
    // finishSync is a local activity: the signal makes the workflow task that ran it fail
    // (unhandled command) and the pass is replayed with the signal before finishSync, so the
    // second pass runs in the same run; with a regular activity the run continues as new. Either
    // way the request is done and the record is closed last with the outcome.
    const finishes = s.callsOf('finishSync');
    assert.equal(finishes[finishes.length - 1].status, 'succeeded');
    assert.ok(
      s.callsOf('fetchNewMessages').some((f, i) => i >= 2 && f.folder === 'Sent'),
      'Sent fetched again',
    );
  });
});
