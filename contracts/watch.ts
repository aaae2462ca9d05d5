// The IMAP IDLE watcher's contract (workflows/watchAccount.ts): one long-running workflow per
// enabled account, on the sync task queue, that asks for an incremental sync whenever the
// server reports a change in a watched mailbox. Input, states and results hold ids, counts
// and mailbox counters only. Shared by the workflow, its activities, lib/account-sync and the
// starters; imports nothing but @temporalio/workflow's definition helpers.
import { defineQuery } from '@temporalio/workflow';

/** The workflow's type name, as the server stores it. */
export const WATCH_WORKFLOW_TYPE = 'watchAccount';

export const WATCH_WORKFLOW_PREFIX = 'watch-account-';

/** Workflow id of an account's watcher: fixed, so a second start is refused (a no-op for the reconciler). */
export function watchWorkflowId(accountId: string): string {
  return `${WATCH_WORKFLOW_PREFIX}${accountId}`;
}

/**
 * Task queue of the watchers' long activities (the IDLE watch, the wait for a sync to end),
 * served by the sync worker beside its own: an idle watch holds an activity slot for minutes, so
 * on the sync queue a few watched accounts would take every slot their syncs need.
 */
export function watchTaskQueue(syncTaskQueue: string): string {
  return `${syncTaskQueue}-watch`;
}

/** What account:list shows (table account_watchers, migration 004). */
export type WatcherState =
  'starting' | 'idle' | 'reconnecting' | 'unsupported' | 'needs_attention' | 'released' | 'stopped';

/** Tuning knobs (numbers only); the reconciler passes the worker-independent defaults from lib/config/sync.ts. */
export interface WatchOptions {
  /** After the first change event, wait this long for more before asking for one sync. Default 300. */
  coalesceMs?: number;
  /** Return from IDLE (and re-check the account) after this long without a change. Default 600 (10 min). */
  maxIdleSeconds?: number;
  /** Re-issue IDLE on the connection after this long (RFC 2177: before 29 minutes). Default 1500 (25 min). */
  reissueIdleSeconds?: number;
  /** Reconnect backoff: first wait and cap. Defaults 1 and 300. */
  reconnectInitialSeconds?: number;
  reconnectMaxSeconds?: number;
  /** How often to look again at an account that needs attention (no login meanwhile). Default 300. */
  attentionRecheckSeconds?: number;
  /** Continue-as-new after this many watch activities. Default 200. */
  iterationsPerRun?: number;
  /** Heartbeat timeout of the watch activity. Default 30. */
  heartbeatTimeoutSeconds?: number;
}

/** A mailbox's counters as the watcher last saw them; compared on the next SELECT to catch what happened in between. */
export interface MailboxMark {
  uidValidity: number;
  uidNext: number;
  exists: number;
  /** Decimal string (mod-sequences exceed Number's exact range); null without CONDSTORE. */
  highestModseq: string | null;
}

/** Where a continued-as-new run picks up. */
export interface WatchCarry {
  mark: MailboxMark | null;
  /** Consecutive failed connections (the backoff's exponent). */
  failures: number;
  changes: number;
  syncsRequested: number;
  reconnects: number;
  continuedAsNew: number;
}

export interface WatchAccountInput {
  userId: string;
  accountId: string;
  options?: WatchOptions;
  /** Set only by the workflow itself when it continues as new. */
  carry?: WatchCarry;
}

/** How a watch ended (the workflow runs until cancelled otherwise). */
export interface WatchResult {
  accountId: string;
  state: 'unsupported' | 'stopped';
  reason: string;
  changes: number;
  syncsRequested: number;
}

/**
 * Asked with `requestSyncs` (WATCH_INLINE_PATCH): the watch asked for the syncs itself, on the
 * same connection, and goes on idling; it returns after maxIdleSeconds (or a disconnect, a
 * release, cancellation) with what it did.
 */
export interface InlineRequests {
  /** Syncs asked for during the watch. */
  requested: number;
  /** A request failed and was not made good before the watch ended: the workflow asks again. */
  owed: boolean;
  /** Connections lost and opened again within the watch (WATCH_RECONNECT_PATCH). */
  reconnects?: number;
}

/** What one watch activity saw. */
export type WatchOutcome =
  /** The server reported changes (coalesced); `mark` is the mailbox after them. */
  | ({ outcome: 'changed'; events: number; mark: MailboxMark } & Partial<InlineRequests>)
  /** The mailbox differs from the stored state or from `mark` already at SELECT (mail arrived between two watches, or during an outage). */
  | { outcome: 'behind'; mark: MailboxMark }
  /** No change within maxIdleSeconds. */
  | ({ outcome: 'quiet'; mark: MailboxMark } & Partial<InlineRequests>)
  /** The connection failed or was closed by the server (the reason names the account and server, no secrets). */
  | ({ outcome: 'disconnected'; reason: string } & Partial<InlineRequests>)
  /** A sync asked for the connection (budget of one connection per account). */
  | { outcome: 'released'; mark: MailboxMark | null }
  | { outcome: 'unsupported'; reason: string }
  | { outcome: 'needs_attention'; reason: string }
  | { outcome: 'stopped'; reason: string };

/** The watcher's state and counters, for tests and operators. */
export interface WatchStatus {
  state: WatcherState;
  changes: number;
  syncsRequested: number;
  reconnects: number;
  /** Times the connection was given to a sync (budget of one), in this run. */
  releases: number;
  continuedAsNew: number;
  reason: string | null;
}

export const watchStatusQuery = defineQuery<WatchStatus>('watchStatus');
