// The IMAP IDLE watcher's activities (workflows/watchAccount.ts):
//
// watchMailbox  logs in with the shared login/session code, EXAMINEs INBOX, and IDLEs until the
//               server reports a change (EXISTS, EXPUNGE, FETCH flags), then waits a short
//               window (coalesceMs) so a burst of changes is one answer, and returns. Also
//               returns after maxIdleSeconds without a change, when the connection drops, and
//               (budget of one connection) when a sync asks for the connection. With
//               requestSyncs it asks for the syncs itself and idles on; with
//               reconnectInside too, a connection lost after it was up is opened again within
//               the activity and INBOX synced the same way, so a server's restart costs a login
//               and one INBOX sync, not a workflow round. imapflow
//               re-issues IDLE on the connection every reissueIdleSeconds (RFC 2177: < 29 min).
//               Heartbeats all along; cancellation closes the connection.
// requestSync   asks for one incremental sync of the watched folder, the one-sync-at-a-time
//               way (lib/account-sync/sync-now.ts requestFolderSync: signal-with-start on the
//               account's fixed sync id; syncAccount hands it to a Schedule's running sync).
// awaitSyncsDone  with a budget of one connection: waits until no sync of the account runs.
// recordWatcherState  the state account:list shows.
//
// Results are counters and short reasons (which account and server, never credentials).
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { ImapFlow } from 'imapflow';
import type pino from 'pino';
import { ERR_ACCOUNT_NOT_FOUND, ERR_AUTH, ERR_SECRET_KEY } from '../../contracts/sync';
import type { MailboxMark, WatcherState, WatchOutcome } from '../../contracts/watch';
import { closeImap, connectionError, examineFolder, imapErrorText } from '../../lib/imap/client';
import { MARK_STATUS_QUERY, markChanged, statusMark, storeBehind } from '../../lib/imap/mailbox-marks';
import { notifyFolders } from '../../lib/imap/notify';
import { watchedFolderList } from '../../lib/imap/watched-folders';
import { serverText } from '../../lib/imap/server-text';
import { requestFolderSync, runningSyncWorkflows, type SyncRequest } from '../../lib/account-sync';
import type { Store } from '../../lib/sync-store';
import { activityContext, keepAlive } from '../../lib/temporal/heartbeat';
import type { Sessions } from './session';
import type { AccountRef } from './types';

export const WATCHED_FOLDER = 'INBOX';

export interface WatchDeps {
  store: Store;
  sessions: Sessions;
  log: pino.Logger;
  config: {
    taskQueue?: string;
    watchCoalesceMs?: number;
    watchMaxIdleSeconds?: number;
    watchReissueIdleSeconds?: number;
    watchReconnectWithinSeconds?: number;
    watchFolderPollSeconds?: number;
    watchNotify?: boolean;
    connectionsPerAccount?: number;
  };
  /** The Temporal client for sync requests (default: the worker's, from the activity context). */
  temporalClient?: () => Client;
}

export interface WatchMailboxInput extends AccountRef {
  workflowId: string;
  /** The mailbox as last seen; null: compare with what PostgreSQL holds. */
  mark: MailboxMark | null;
  /** Report the mailbox as behind whatever it shows (after a reconnect: nothing may be missed). */
  forceBehind?: boolean;
  coalesceMs?: number;
  maxIdleSeconds?: number;
  reissueIdleSeconds?: number;
  /**
   * Ask for the syncs here and go on idling on the same connection (WATCH_INLINE_PATCH), instead
   * of returning at the first change: no new login, no workflow task per change.
   */
  requestSyncs?: boolean;
  /**
   * With requestSyncs (WATCH_RECONNECT_PATCH): a connection lost after it was up is opened
   * again here for watchReconnectWithinSeconds (attempts about every half second) before the
   * watch returns 'disconnected'; the mailbox is then synced by an inline request (INBOX).
   * Absent: the watch returns at a lost connection, as before.
   */
  reconnectInside?: boolean;
}

/** Waits `ms`, or less when the activity is cancelled (the caller then sees the signal). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

/** Errors a watch does not outlive: the workflow decides (wait for a credential, stop). */
const PERMANENT = [ERR_AUTH, ERR_ACCOUNT_NOT_FOUND, ERR_SECRET_KEY];

export function createWatchActivities(deps: WatchDeps) {
  const { store, sessions, log, config } = deps;
  const budget = config.connectionsPerAccount ?? 2;
  const client = () => deps.temporalClient?.() ?? Context.current().client;

  async function currentMark(imap: ImapFlow, fallback: MailboxMark): Promise<MailboxMark> {
    // STATUS of the selected mailbox: what the next EXAMINE will be compared with.
    const s = await imap.status(WATCHED_FOLDER, MARK_STATUS_QUERY);
    return s ? (statusMark(s, fallback) ?? fallback) : fallback;
  }

  /** A watched folder's counters (STATUS); null when the server has no such folder or refuses it. */
  async function folderStatus(imap: ImapFlow, folder: string): Promise<MailboxMark | null> {
    try {
      const s = await imap.status(folder, MARK_STATUS_QUERY);
      return s ? statusMark(s) : null;
    } catch (err) {
      // A NO for this folder leaves the connection usable; anything else is the connection's.
      if (!imap.usable) throw err;
      return null;
    }
  }

  async function watch(input: WatchMailboxInput): Promise<WatchOutcome> {
    const ref = { userId: input.userId, accountId: input.accountId };
    const account = await store.getAccount(ref.userId, ref.accountId);
    if (!account) return { outcome: 'stopped', reason: `account ${ref.accountId} was removed` };
    if (!account.enabled) return { outcome: 'stopped', reason: `account ${ref.accountId} is disabled` };
    // No login with a credential the server refused (the sync waits for a new one, and so do we).
    if (account.status === 'needs_attention')
      return { outcome: 'needs_attention', reason: account.statusReason ?? 'its credential was refused' };
    const who = `account ${account.id} (${account.imapUser}@${account.imapHost})`;
    const state = (s: WatcherState, connected: boolean, detail?: string) =>
      store.setWatcherState(ref.userId, ref.accountId, { workflowId: input.workflowId, state: s, connected, detail });

    // Inline requests (requestSyncs): one at a time; changes while one is under way, one more.
    const temporal = input.requestSyncs ? client() : undefined;
    const taskQueue = input.requestSyncs ? (config.taskQueue ?? Context.current().info.taskQueue) : '';
    // The folders watched besides INBOX (account:set --watch-folders), polled with STATUS on this
    // connection; with inline requests only (the runs that ask for their syncs themselves).
    const extras = input.requestSyncs ? watchedFolderList(account.watchedFolders) : [];
    const extrasKey = JSON.stringify(extras);
    const inline = { requested: 0, owed: false, busy: false, done: false, pending: new Set<string>() };
    let retryTimer: NodeJS.Timeout | undefined;
    /** Asks for one sync of `folders` (and of whatever is pending); one request at a time. */
    const askInline = (folders: string[] = [WATCHED_FOLDER]): void => {
      for (const f of folders) inline.pending.add(f);
      // After the watch returned, what is left is owed to the workflow (counts()), not asked here.
      if (inline.done || inline.busy || inline.pending.size === 0) return;
      const asked = [...inline.pending];
      inline.pending.clear();
      inline.busy = true;
      requestFolderSync(temporal!, { userId: ref.userId, id: ref.accountId }, taskQueue, asked).then(
        () => {
          inline.requested++;
          inline.owed = false;
          inline.busy = false;
          askInline([]);
        },
        (err: unknown) => {
          // Temporal refused for now: owed, tried again in a few seconds (and by the workflow if the watch ends first).
          for (const f of asked) inline.pending.add(f);
          inline.owed = true;
          inline.busy = false;
          log.warn(
            { accountId: ref.accountId, err: serverText(err, 300) },
            'watcher sync request failed; asking again',
          );
          clearTimeout(retryTimer);
          if (!inline.done) retryTimer = setTimeout(() => askInline([]), 5000);
        },
      );
    };
    const counts = () => {
      // A request still under way when the watch ends is owed unless it lands.
      if (inline.busy || inline.pending.size) inline.owed = true;
      return temporal ? { requested: inline.requested, owed: inline.owed, reconnects } : {};
    };

    // Reconnecting here (WATCH_RECONNECT_PATCH): a connection lost after it was up is tried
    // again every half second or so for watchReconnectWithinSeconds, then the workflow's backoff.
    const reconnectWithinMs =
      input.requestSyncs && input.reconnectInside ? (config.watchReconnectWithinSeconds ?? 10) * 1000 : 0;
    const signal = activityContext()?.cancellationSignal;
    const started = Date.now();
    let reconnects = 0;
    let lostAt: number | undefined;
    let connectedAt = 0;
    let mark = input.mark;
    let events = 0;
    let lastReason = '';
    try {
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0) {
          // Jitter, so that a server's restart is not met by every watcher in the same millisecond.
          await pause(250 + Math.random() * 500, signal);
          if (signal?.aborted) throw new CancelledFailure('watch cancelled');
          if (Date.now() - lostAt! > reconnectWithinMs)
            return { outcome: 'disconnected', reason: lastReason, ...counts() };
        }
        const one = await watchOnce({
          first: attempt === 0,
          behindFirst: attempt === 0 ? !!input.forceBehind : true,
          mark,
        });
        if (one.outcome !== 'lost') {
          if (one.outcome === 'changed' || one.outcome === 'quiet') {
            if (one.outcome === 'changed') one.events += events;
            else if (events) return { ...one, outcome: 'changed', events, ...counts() };
            return { ...one, ...counts() };
          }
          return one;
        }
        lastReason = one.reason;
        events += one.events;
        if (one.mark) mark = one.mark;
        if (!reconnectWithinMs) return { outcome: 'disconnected', reason: one.reason };
        if (one.connected) {
          // A connection that stayed up a while starts a new window; one that keeps dropping
          // soon after the login does not.
          if (lostAt === undefined || Date.now() - connectedAt > 60_000) lostAt = Date.now();
          reconnects++;
          await state('reconnecting', false, one.reason).catch(() => {});
        }
        // Not even the first connection of this watch: the workflow's backoff decides.
        if (lostAt === undefined) return { outcome: 'disconnected', reason: one.reason, ...counts() };
      }
    } finally {
      inline.done = true;
      clearTimeout(retryTimer);
    }

    /**
     * One connection: claim, log in, EXAMINE, IDLE until something ends it. 'lost': the
     * connection failed or closed (`connected`: it had been up and idle).
     */
    async function watchOnce(at: {
      first: boolean;
      behindFirst: boolean;
      mark: MailboxMark | null;
    }): Promise<
      WatchOutcome | { outcome: 'lost'; reason: string; connected: boolean; events: number; mark?: MailboxMark }
    > {
      // Claim the connection before opening it; a sync that asked first keeps it (budget of one).
      // The token names this claim, so closing clears it and never a replacement watcher's.
      const token = randomUUID();
      const claim = await store.claimWatcherConnection(ref.userId, ref.accountId, input.workflowId, token);
      if (!claim) return { outcome: 'stopped', reason: `account ${ref.accountId} was removed` };
      if (budget < 2 && claim.releaseRequested) {
        await state('released', false);
        return { outcome: 'released', mark: at.mark };
      }

      let session;
      try {
        session = await sessions.open(ref, undefined, true);
      } catch (err) {
        await state('reconnecting', false, (err as Error).message);
        if (err instanceof ApplicationFailure && PERMANENT.includes(err.type ?? '')) throw err;
        return { outcome: 'lost', reason: serverText(err, 500), connected: false, events: 0 };
      }
      const imap = session.client;
      let onEvent: (() => void) | undefined;
      let onClose: (() => void) | undefined;
      let seen = 0;
      let box: MailboxMark | undefined;
      try {
        if (!imap.capabilities.has('IDLE')) {
          return {
            outcome: 'unsupported',
            reason: `IMAP server ${account!.imapHost} does not offer IDLE (RFC 2177); ${who} is synced by its Schedule only`,
          };
        }
        // imapflow breaks and re-issues IDLE on this connection every reissueIdleSeconds.
        imap.maxIdleTime = (input.reissueIdleSeconds ?? config.watchReissueIdleSeconds ?? 1500) * 1000;
        box = await examineFolder(imap, WATCHED_FOLDER);
        const behind =
          at.behindFirst ||
          (at.mark
            ? markChanged(at.mark, box)
            : storeBehind(
                await store.getFolderState(ref.userId, ref.accountId, WATCHED_FOLDER),
                await store.countFolderMessages(ref.userId, ref.accountId, WATCHED_FOLDER, box.uidValidity),
                box,
              ));
        // Mail arrived between two watches or during an outage. At the watch's start the
        // workflow asks (and shows the watcher idle again); after a reconnect within the watch,
        // the watch asks, for the watched folders, and goes on.
        if (behind && at.first) return { outcome: 'behind', mark: box };
        const ask = behind ? [WATCHED_FOLDER] : [];
        // The other watched folders: compared with PostgreSQL at the watch's start, synced
        // after a reconnect whatever they show.
        const folderMarks = new Map<string, MailboxMark>();
        const missing: string[] = [];
        for (const folder of extras) {
          const m = await folderStatus(imap, folder);
          if (!m) {
            missing.push(folder);
            continue;
          }
          folderMarks.set(folder, m);
          const folderBehind =
            !at.first ||
            storeBehind(
              await store.getFolderState(ref.userId, ref.accountId, folder),
              await store.countFolderMessages(ref.userId, ref.accountId, folder, m.uidValidity),
              m,
            );
          if (folderBehind) ask.push(folder);
        }
        if (ask.length) askInline(ask);

        // A change in one of them: asked for at once (the next ones while it is under way, once more).
        const folderChanged = (folders: string[]) => {
          seen += folders.length;
          store.recordWatcherEvent(ref.userId, ref.accountId).catch(() => {});
          if (temporal) askInline(folders);
        };
        // Pushed by the server where it offers NOTIFY (RFC 5465), else polled below.
        const pushed =
          folderMarks.size > 0 &&
          config.watchNotify !== false &&
          (await notifyFolders(imap, [...folderMarks.keys()], (folder) => folderChanged([folder])));

        await state(
          'idle',
          true,
          missing.length
            ? `watched folder(s) not on the server (or not readable): ${missing.map((f) => JSON.stringify(f)).join(', ')}`
            : undefined,
        );
        connectedAt = Date.now();
        const folderPollMs = (config.watchFolderPollSeconds ?? 30) * 1000;
        const coalesceMs = input.coalesceMs ?? config.watchCoalesceMs ?? 300;
        const maxIdleMs = (input.maxIdleSeconds ?? config.watchMaxIdleSeconds ?? 600) * 1000;
        const pollMs = budget < 2 ? 1000 : 15_000;

        const ended = await new Promise<'changed' | 'quiet' | 'closed' | 'released' | 'cancelled'>((resolve) => {
          const timers: NodeJS.Timeout[] = [];
          const finish = (why: 'changed' | 'quiet' | 'closed' | 'released' | 'cancelled') => {
            for (const t of timers) clearTimeout(t);
            clearInterval(poll);
            clearInterval(folderPoll);
            resolve(why);
          };
          let burst: NodeJS.Timeout | undefined;
          onEvent = () => {
            seen++;
            if (temporal) {
              // The rest of a burst arrives within the window: one request for all of it.
              if (burst) return;
              store.recordWatcherEvent(ref.userId, ref.accountId).catch(() => {});
              burst = setTimeout(() => {
                burst = undefined;
                askInline();
              }, coalesceMs);
              timers.push(burst);
              return;
            }
            if (seen === 1) {
              store.recordWatcherEvent(ref.userId, ref.accountId).catch(() => {});
              // The rest of a burst arrives within the window: one answer for all of it.
              timers.push(setTimeout(() => finish('changed'), coalesceMs));
            }
          };
          onClose = () => finish('closed');
          imap.on('exists', onEvent);
          imap.on('expunge', onEvent);
          imap.on('flags', onEvent);
          imap.on('close', onClose);
          timers.push(setTimeout(() => finish('quiet'), Math.max(1000, maxIdleMs - (Date.now() - started))));
          signal?.addEventListener('abort', () => finish('cancelled'), { once: true });
          // Keeps the row fresh (a dead watcher is recognised by its age) and, with a budget of
          // one connection, notices a sync that asks for it.
          const poll = setInterval(() => {
            store.watcherHeartbeat(ref.userId, ref.accountId).then(
              (h) => {
                if (budget < 2 && h.releaseRequested) finish('released');
                // The watched folders changed (account:set --watch-folders): the next watch takes them.
                else if (
                  input.requestSyncs &&
                  h.watchedFolders &&
                  JSON.stringify(watchedFolderList(h.watchedFolders)) !== extrasKey
                )
                  finish('quiet');
              },
              () => {},
            );
          }, pollMs);
          // Without NOTIFY, the other watched folders' counters, on this connection: STATUS ends
          // IDLE for a round trip per folder, then IDLE resumes (a change to INBOX meanwhile is
          // reported when it does).
          let polling = false;
          const folderPoll =
            folderMarks.size && !pushed
              ? setInterval(() => {
                  if (polling || !imap.usable) return;
                  polling = true;
                  void (async () => {
                    const changed: string[] = [];
                    try {
                      for (const [folder, before] of folderMarks) {
                        const now = await folderStatus(imap, folder);
                        if (now && markChanged(before, now)) {
                          folderMarks.set(folder, now);
                          changed.push(folder);
                        }
                      }
                    } catch {
                      /* the connection failed: the 'close' listener answers */
                    } finally {
                      polling = false;
                      if (imap.usable)
                        imap.idle().catch(() => {
                          /* as above */
                        });
                    }
                    if (changed.length) folderChanged(changed);
                  })();
                }, folderPollMs)
              : undefined;
          // A cancel that came while connecting: the listener above never fires for it.
          if (signal?.aborted) return finish('cancelled');
          imap.idle().catch(() => {
            /* a broken IDLE closes the connection: the 'close' listener answers */
          });
        });

        if (ended === 'cancelled') throw new CancelledFailure('watch cancelled');
        if (ended === 'closed') {
          const cause = connectionError(imap);
          return {
            outcome: 'lost',
            reason: `IMAP server ${account!.imapHost} closed the connection of ${who}${cause ? `: ${imapErrorText(cause)}` : ''}`,
            connected: true,
            events: seen,
            mark: box,
          };
        }
        const now = imap.usable ? await currentMark(imap, box) : box;
        if (ended === 'released') return { outcome: 'released', mark: now };
        if (temporal) return seen ? { outcome: 'changed', events: seen, mark: now } : { outcome: 'quiet', mark: now };
        if (ended === 'quiet') return { outcome: 'quiet', mark: now };
        return { outcome: 'changed', events: seen, mark: now };
      } catch (err) {
        if (err instanceof CancelledFailure || err instanceof ApplicationFailure) throw err;
        return {
          outcome: 'lost',
          reason: `IMAP error for ${who}: ${imapErrorText(err)}`,
          connected: box !== undefined,
          events: seen,
          ...(box ? { mark: box } : {}),
        };
      } finally {
        if (onEvent) {
          imap.off('exists', onEvent);
          imap.off('expunge', onEvent);
          imap.off('flags', onEvent);
        }
        if (onClose) imap.off('close', onClose);
        session.unguard();
        await closeImap(imap);
        await store
          .releaseWatcherConnection(ref.userId, ref.accountId, token)
          .catch((err: unknown) =>
            log.warn({ accountId: ref.accountId, err: serverText(err, 300) }, 'watcher state not recorded'),
          );
      }
    }
  }

  return {
    /** One watch: returns on a (coalesced) change, after maxIdleSeconds, on a disconnect, or when a sync needs the connection. */
    async watchMailbox(input: WatchMailboxInput): Promise<WatchOutcome> {
      return keepAlive(() => watch(input));
    },

    /**
     * Asks for one incremental sync (never a second sync beside a running one): of the watched
     * folder after a change in it (`watched`), else (the first watch, after a reconnect) of every folder.
     */
    async requestSync(input: AccountRef & { watched?: boolean }): Promise<SyncRequest['how']> {
      const got = await requestFolderSync(
        client(),
        { userId: input.userId, id: input.accountId },
        config.taskQueue ?? Context.current().info.taskQueue,
        input.watched ? [WATCHED_FOLDER] : undefined,
      );
      log.debug({ accountId: input.accountId, how: got.how }, 'watcher requested a sync');
      return got.how;
    },

    /** Budget of one connection: returns once no sync of the account runs (or after maxSeconds, to be called again). */
    async awaitSyncsDone(input: AccountRef & { maxSeconds: number }): Promise<boolean> {
      return keepAlive(async () => {
        const deadline = Date.now() + input.maxSeconds * 1000;
        const signal = activityContext()?.cancellationSignal;
        for (;;) {
          if (signal?.aborted) throw new CancelledFailure('cancelled');
          if (!(await runningSyncWorkflows(client(), input.accountId)).length) {
            await store.clearWatcherRelease(input.userId, input.accountId);
            return true;
          }
          if (Date.now() > deadline) return false;
          await new Promise((r) => setTimeout(r, 2000));
        }
      });
    },

    /** Records the watcher's state for account:list (false: the account is gone). */
    async recordWatcherState(
      input: AccountRef & { workflowId: string; state: WatcherState; detail?: string | null },
    ): Promise<boolean> {
      return store.setWatcherState(input.userId, input.accountId, {
        workflowId: input.workflowId,
        state: input.state,
        connected: false,
        detail: input.detail ?? null,
      });
    },
  };
}
