// watchAccount: the IMAP IDLE watcher of one account (contract: contracts/watch.ts). Runs
// while the account is enabled and watchers are on; started and cancelled by the reconciler
// (lib/account-sync/reconcile.ts) beside the account's Schedule, which stays as the safety net.
//
// Loop: watchMailbox (log in, EXAMINE INBOX, IDLE until a change, coalesced over a short window,
// or until maxIdleSeconds) → on a change, requestSync (signal-with-start of an INBOX sync under
// the account's fixed sync id: a running one makes one more pass, a Schedule's running sync is
// handed the request; never two syncs of one account, a burst gives one sync) → watch again, comparing the mailbox with what the last watch
// saw so a change between two watches is not missed. A connection lost after it was up is
// opened again inside the watch for a few seconds (WATCH_RECONNECT_PATCH); after that, or when a
// watch cannot connect at all: back off (capped), then one sync of INBOX after the reconnect. A server without IDLE: state 'unsupported', the
// workflow ends and the Schedule alone syncs the account. Continue-as-new every
// iterationsPerRun watches. Ids, counters and short reasons only in history.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities/sync';
import { ACCOUNT_ID } from '../contracts/search-attributes';
import {
  credentialsUpdatedSignal,
  ERR_ACCOUNT_NOT_FOUND,
  ERR_AUTH,
  ERR_SECRET_KEY,
  passwordUpdatedSignal,
} from '../contracts/sync';
import {
  watchStatusQuery,
  watchTaskQueue,
  type MailboxMark,
  type WatchAccountInput,
  type WatcherState,
  type WatchOutcome,
  type WatchResult,
  type WatchStatus,
} from '../contracts/watch';

type Activities = ReturnType<typeof activities.createSyncActivities>;

/**
 * Waiting for a new credential: the flag is cleared before the state is recorded, not after, so
 * a credentialsUpdated signal that arrives meanwhile is not lost (it was: the watcher then waited
 * attentionRecheckSeconds).
 */
export const CREDENTIAL_SIGNAL_PATCH = 'watch-credential-signal-kept';

/**
 * The watch activity asks for the syncs itself and stays in IDLE on its connection: a change
 * costs one request, not a new login, a requestSync activity and two workflow tasks. It returns
 * after maxIdleSeconds with its counts; a request it still owes is asked for here.
 */
export const WATCH_INLINE_PATCH = 'watch-requests-in-activity';

/**
 * The watch activity also reconnects itself after a lost connection (for
 * SYNC_WATCH_RECONNECT_WITHIN_SECONDS) and asks for the INBOX sync that needs: a server's
 * restart costs a login and one INBOX sync, not a workflow round of record, timer, watch,
 * request and watch again. Its reconnects are counted from its result. After a reconnect by the
 * workflow (a longer outage), the sync is of INBOX too; only the first look syncs every folder.
 */
export const WATCH_RECONNECT_PATCH = 'watch-reconnects-in-activity';

/**
 * Cancelled (account disabled or removed): 'stopped' is recorded once the watch activity has
 * ended, not beside it. The activity learns of the cancel at its next heartbeat; meanwhile it
 * could record 'idle' (a connection it was opening), and that overwrote 'stopped' for good.
 */
export const WATCH_STOP_AFTER_WATCH_PATCH = 'watch-stopped-after-its-watch';

/** Seconds to wait before reconnect number `failures` (1, 2, ...): doubling from `initial`, capped at `max`. */
export function reconnectDelaySeconds(failures: number, initial: number, max: number): number {
  return Math.min(max, initial * 2 ** Math.min(30, Math.max(0, failures - 1)));
}

function failureType(err: unknown): string | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.type ?? undefined;
  return undefined;
}

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

export async function watchAccount(input: WatchAccountInput): Promise<WatchResult> {
  const { userId, accountId } = input;
  const options = input.options ?? {};
  const maxIdleSeconds = options.maxIdleSeconds ?? 600;
  const reconnectInitial = options.reconnectInitialSeconds ?? 1;
  const reconnectMax = options.reconnectMaxSeconds ?? 300;
  const attentionMs = (options.attentionRecheckSeconds ?? 300) * 1000;
  const iterationsPerRun = options.iterationsPerRun ?? 200;
  const { workflowId, taskQueue } = workflowInfo();
  const ref = { userId, accountId };
  // The long activities go to the watch queue (contracts/watch.ts: never the syncs' slots).
  const longQueue = watchTaskQueue(taskQueue);

  const waiter = proxyActivities<Activities>({
    taskQueue: longQueue,
    startToCloseTimeout: '10m',
    heartbeatTimeout: `${options.heartbeatTimeoutSeconds ?? 30}s`,
    retry: { initialInterval: '1s', maximumInterval: '1m', maximumAttempts: 20 },
  });
  const db = proxyActivities<Activities>({
    startToCloseTimeout: '1m',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 10 },
  });

  const carry = input.carry;
  const status: WatchStatus = {
    state: 'starting',
    changes: carry?.changes ?? 0,
    syncsRequested: carry?.syncsRequested ?? 0,
    reconnects: carry?.reconnects ?? 0,
    releases: 0,
    continuedAsNew: carry?.continuedAsNew ?? 0,
    reason: null,
  };
  let mark: MailboxMark | null = carry?.mark ?? null;
  let failures = carry?.failures ?? 0;
  // After a lost connection nothing may be missed: one sync once connected again.
  let forceBehind = failures > 0;
  let credentialsChanged = false;
  setHandler(watchStatusQuery, () => status);
  // account:password / account:token signal running syncs; a watcher waiting for a credential
  // can be woken the same way (otherwise it looks again every attentionRecheckSeconds).
  setHandler(credentialsUpdatedSignal, () => {
    credentialsChanged = true;
  });
  setHandler(passwordUpdatedSignal, () => {
    credentialsChanged = true;
  });
  upsertSearchAttributes([{ key: ACCOUNT_ID, value: accountId }]);
  // Decided once per run; runs begun by older code keep returning at each change.
  const inline = patched(WATCH_INLINE_PATCH);
  const reconnectInside = inline && patched(WATCH_RECONNECT_PATCH);
  const stopAfterWatch = patched(WATCH_STOP_AFTER_WATCH_PATCH);
  // One attempt per watch: the workflow itself decides about reconnecting (with its backoff,
  // visible as state 'reconnecting'), whatever ended the attempt (server, network, worker).
  const watcher = proxyActivities<Activities>({
    taskQueue: longQueue,
    startToCloseTimeout: `${maxIdleSeconds + 600}s`,
    heartbeatTimeout: `${options.heartbeatTimeoutSeconds ?? 30}s`,
    retry: { maximumAttempts: 1 },
    ...(stopAfterWatch ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
  });

  const details = () =>
    setCurrentDetails(
      `account ${accountId}: ${status.state}, ${status.changes} change(s), ${status.syncsRequested} sync request(s), ${status.reconnects} reconnect(s)`,
    );
  const record = async (state: WatcherState, reason: string | null) => {
    status.state = state;
    status.reason = reason;
    details();
    await db.recordWatcherState({ ...ref, workflowId, state, detail: reason });
  };
  const ended = (state: WatchResult['state'], reason: string): WatchResult => ({
    accountId,
    state,
    reason,
    changes: status.changes,
    syncsRequested: status.syncsRequested,
  });
  // `watched`: a sync of INBOX alone, else of every folder.
  const askForSync = async (watched: boolean) => {
    try {
      await db.requestSync(watched ? { ...ref, watched } : ref);
      status.syncsRequested++;
      forceBehind = false;
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Temporal refused for a while: ask again after the next watch (the Schedule is still there).
      forceBehind = true;
      status.reason = `sync request failed: ${failureMessage(err)}`;
    }
  };
  details();

  try {
    for (let iteration = 0; iteration < iterationsPerRun; iteration++) {
      if (iteration > 0 && workflowInfo().continueAsNewSuggested) break;
      let r: WatchOutcome;
      try {
        r = await watcher.watchMailbox({
          ...ref,
          workflowId,
          mark,
          forceBehind,
          coalesceMs: options.coalesceMs,
          maxIdleSeconds,
          reissueIdleSeconds: options.reissueIdleSeconds,
          ...(inline ? { requestSyncs: true } : {}),
          ...(reconnectInside ? { reconnectInside } : {}),
        });
      } catch (err) {
        if (isCancellation(err)) throw err;
        const type = failureType(err);
        if (type === ERR_AUTH || type === ERR_SECRET_KEY)
          r = { outcome: 'needs_attention', reason: failureMessage(err) };
        else if (type === ERR_ACCOUNT_NOT_FOUND) r = { outcome: 'stopped', reason: failureMessage(err) };
        // The worker died, the attempt timed out: like a lost connection.
        else r = { outcome: 'disconnected', reason: failureMessage(err) };
      }
      if (inline && (r.outcome === 'changed' || r.outcome === 'quiet') && r.requested !== undefined) {
        // The watch asked for its syncs itself, the one after a reconnect too (before
        // WATCH_RECONNECT_PATCH, forceBehind made it return 'behind' at its start instead).
        if (r.outcome === 'changed') status.changes += r.events;
        status.syncsRequested += r.requested;
        status.reconnects += r.reconnects ?? 0;
        mark = r.mark;
        failures = 0;
        forceBehind = false;
        status.state = 'idle';
        status.reason = null;
        if (r.owed) await askForSync(true);
        details();
        continue;
      }
      switch (r.outcome) {
        case 'changed':
        case 'behind': {
          if (r.outcome === 'changed') status.changes += r.events;
          // Every folder at the first look (no mark yet); after a change or a reconnect, INBOX
          // (before WATCH_RECONNECT_PATCH a reconnect asked for every folder too).
          const watchedOnly = reconnectInside ? mark !== null : r.outcome === 'changed' && !forceBehind;
          mark = r.mark;
          failures = 0;
          status.state = 'idle';
          status.reason = null;
          await askForSync(watchedOnly);
          details();
          break;
        }
        case 'quiet':
          mark = r.mark;
          failures = 0;
          status.state = 'idle';
          details();
          break;
        case 'disconnected': {
          // What the watch did before it gave up (WATCH_RECONNECT_PATCH); counters only.
          status.syncsRequested += r.requested ?? 0;
          status.reconnects += r.reconnects ?? 0;
          failures++;
          status.reconnects++;
          forceBehind = true;
          await record('reconnecting', r.reason);
          await sleep(reconnectDelaySeconds(failures, reconnectInitial, reconnectMax) * 1000);
          break;
        }
        case 'released':
          // SYNC_IMAP_CONNECTIONS_PER_ACCOUNT=1: a sync has the connection; watch again once it is done.
          mark = r.mark ?? mark;
          status.releases++;
          await record('released', 'a sync of the account has its one IMAP connection');
          while (!(await waiter.awaitSyncsDone({ ...ref, maxSeconds: 300 }))) {
            /* still syncing */
          }
          break;
        case 'needs_attention':
          if (patched(CREDENTIAL_SIGNAL_PATCH)) {
            // A credential signalled while the state is being recorded counts.
            credentialsChanged = false;
            await record('needs_attention', r.reason);
          } else {
            await record('needs_attention', r.reason);
            credentialsChanged = false;
          }
          await condition(() => credentialsChanged, attentionMs);
          forceBehind = true;
          break;
        case 'unsupported':
          await record('unsupported', r.reason);
          return ended('unsupported', r.reason);
        case 'stopped':
          await record('stopped', r.reason);
          return ended('stopped', r.reason);
      }
    }
  } catch (err) {
    if (isCancellation(err)) {
      // Cancelled by the reconciler (account disabled or removed, watchers switched off).
      await CancellationScope.nonCancellable(() =>
        record('stopped', 'watcher stopped (account disabled or removed, or SYNC_WATCH=false)'),
      );
    }
    throw err;
  }
  // Outside the try: continueAsNew works by throwing.
  return await continueAsNew<typeof watchAccount>({
    userId,
    accountId,
    options,
    carry: {
      mark,
      failures,
      changes: status.changes,
      syncsRequested: status.syncsRequested,
      reconnects: status.reconnects,
      continuedAsNew: status.continuedAsNew + 1,
    },
  });
}
