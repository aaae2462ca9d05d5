// An activity's IMAP session on an account: logs in (activities/sync/login.ts), connects with
// our limits, follows cancellation and the progress watch, and names what went wrong with the
// account and folder so the operator sees where. Reconnects on request (reopen).
import { ApplicationFailure } from '@temporalio/activity';
import type { ImapFlow } from 'imapflow';
import type pino from 'pino';
import { folderLabel } from '../../lib/imap/server-text';
import { folderDataProblem, isImapLimitError, SyncStalledError } from '../../lib/imap/sync-errors';
import { ERR_CONNECTION } from '../../contracts/sync';
import {
  closeImap,
  connectImap,
  describeEndpoint,
  ImapProtocolError,
  imapErrorText,
  isAuthenticationFailure,
  isTransientImapError,
  type ImapAuth,
} from '../../lib/imap/client';
import { UidValidityMismatch, type Account } from '../../lib/sync-store';
import { activityContext, heartbeat, type ProgressWatch } from '../../lib/temporal/heartbeat';
import type { AccountLogin } from './login';
import type { AccountRef, Session, SyncActivityDeps } from './types';

/** How long a sync waits for the watcher's connection before it connects anyway. */
const RELEASE_WAIT_MS = 90_000;

/**
 * How long a sync activity's connection is kept, logged in, after the activity: a pass is
 * prepareFolders then fetchNewMessages, two activities, usually on this worker within tens of
 * milliseconds; the second takes the first's connection instead of logging in again. Only the
 * same sync run takes it (a new run logs in with the account's current credential), finishSync
 * closes it, and one connection per account is kept, so the budget holds (the watcher's one and
 * this one).
 */
const PARK_MS = 2000;

export function createSessions(
  login: AccountLogin,
  cfg: Pick<SyncActivityDeps['config'], 'imapConnectTimeoutMs' | 'imapSocketTimeoutMs' | 'maxMessageBytes'> &
    Partial<Pick<SyncActivityDeps['config'], 'connectionsPerAccount' | 'sessionReuseMs'>>,
  log: pino.Logger,
) {
  /**
   * The connection budget (SYNC_IMAP_CONNECTIONS_PER_ACCOUNT): a sync's activities run one
   * after another with one connection each, the IDLE watcher holds one. With a budget of one,
   * the sync asks the watcher for its connection and waits until it has let go (the watcher
   * looks every second); a watcher that died is recognised by its stale heartbeat.
   */
  const parked = new Map<string, { session: Session; timer: NodeJS.Timeout }>();
  const parkMs = cfg.sessionReuseMs ?? PARK_MS;

  /** The connection parked for the account by the same sync run, if it is still usable; any other is closed. */
  function takeParked(accountId: string, syncRunId: number | undefined): Session | undefined {
    const p = parked.get(accountId);
    if (!p) return undefined;
    parked.delete(accountId);
    clearTimeout(p.timer);
    const fresh = p.session.validUntil === undefined || Date.now() < p.session.validUntil;
    if (syncRunId !== undefined && p.session.syncRunId === syncRunId && fresh && p.session.client.usable)
      return p.session;
    void closeImap(p.session.client);
    return undefined;
  }

  /** The sync run is over: its parked connection is logged out now. */
  async function dropParked(accountId: string): Promise<void> {
    const p = parked.get(accountId);
    if (!p) return;
    parked.delete(accountId);
    clearTimeout(p.timer);
    await closeImap(p.session.client);
  }

  /**
   * The end of an activity's session: a healthy connection is parked for PARK_MS (budget of two
   * or more only: with one, the watcher waits for it), anything else is logged out or dropped.
   */
  async function release(session: Session): Promise<void> {
    session.unguard();
    const id = session.account.id;
    if (
      session.dead ||
      session.syncRunId === undefined ||
      parkMs <= 0 ||
      !session.client.usable ||
      (cfg.connectionsPerAccount ?? 2) < 2 ||
      parked.has(id)
    ) {
      await closeImap(session.client, session.dead);
      return;
    }
    const timer = setTimeout(() => {
      if (parked.get(id)?.session === session) parked.delete(id);
      void closeImap(session.client);
    }, parkMs);
    timer.unref();
    parked.set(id, { session, timer });
  }

  async function awaitWatcherRelease(ref: AccountRef, watch?: ProgressWatch): Promise<void> {
    if ((cfg.connectionsPerAccount ?? 2) >= 2) return;
    const deadline = Date.now() + RELEASE_WAIT_MS;
    while (await login.store.requestWatcherRelease(ref.userId, ref.accountId)) {
      if (Date.now() > deadline) {
        log.warn(
          { accountId: ref.accountId },
          'the IDLE watcher did not release its connection within 90 s; connecting anyway (SYNC_IMAP_CONNECTIONS_PER_ACCOUNT=1)',
        );
        return;
      }
      // Our own wait, not a stalled server: keeps the stall clock and the heartbeat going.
      if (watch) watch.progress();
      else heartbeat();
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * Loads the account, obtains its credential and logs in; classifies what goes wrong.
   * `asWatcher`: the IDLE watcher's own connection (it keeps to the budget itself).
   */
  async function open(ref: AccountRef, watch?: ProgressWatch, asWatcher = false): Promise<Session> {
    const syncRunId = asWatcher ? undefined : (ref as { syncRunId?: number }).syncRunId;
    if (!asWatcher) {
      const reused = takeParked(ref.accountId, syncRunId);
      if (reused && reused.account.userId === ref.userId) {
        const client = reused.client;
        activityContext()?.cancellationSignal.addEventListener('abort', () => client.close(), { once: true });
        const unguard = watch?.guard(client) ?? (() => {});
        watch?.progress();
        return { ...reused, dead: false, unguard };
      }
      if (reused) reused.client.close();
      await awaitWatcherRelease(ref, watch);
    }
    const { account, endpoint, auth, renew, validUntil } = await login.credential(ref);
    const connect = (a: ImapAuth) =>
      connectImap(
        endpoint,
        a,
        {
          connectTimeoutMs: cfg.imapConnectTimeoutMs,
          socketTimeoutMs: cfg.imapSocketTimeoutMs,
          maxMessageBytes: cfg.maxMessageBytes,
        },
        (err) => log.warn({ accountId: account.id, err: imapErrorText(err) }, 'IMAP connection error'),
      );
    try {
      let client: ImapFlow;
      try {
        client = await connect(auth);
      } catch (err) {
        if (!renew || !isAuthenticationFailure(err)) throw err;
        client = await connect(await renew());
      }
      // Cancellation (account removed, operator) reaches the activity through heartbeats;
      // closing the connection ends whatever IMAP command is running.
      activityContext()?.cancellationSignal.addEventListener('abort', () => client.close(), { once: true });
      const unguard = watch?.guard(client) ?? (() => {});
      watch?.progress();
      return { client, account, endpoint, dead: false, unguard, syncRunId, validUntil };
    } catch (err) {
      // Already classified (a refused grant while renewing the token).
      if (err instanceof ApplicationFailure) throw err;
      if (isAuthenticationFailure(err))
        return login.refused(ref, account, `IMAP server ${account.imapHost}`, imapErrorText(err));
      const kind = isTransientImapError(err)
        ? 'network error or server timeout, will retry with backoff'
        : 'connection failed';
      throw ApplicationFailure.retryable(
        `Cannot connect to IMAP server for account ${account.id} (${describeEndpoint(endpoint)}): ${imapErrorText(err)} (${kind}). Check the host, port and TLS setting if this persists.`,
        ERR_CONNECTION,
      );
    }
  }

  async function reopen(ref: AccountRef, session: Session, watch: ProgressWatch): Promise<void> {
    session.unguard();
    session.client.close();
    const next = await open(ref, watch);
    session.client = next.client;
    session.unguard = next.unguard;
    session.dead = false;
  }

  /** Adds the account and folder to errors from the middle of a session, and names a stall or a refused answer as such. */
  function imapFailure(account: Account, folder: string | null, err: unknown, watch?: ProgressWatch): Error {
    const where = folder ? ` in folder "${folderLabel(folder)}"` : '';
    const who = `account ${account.id} (${account.imapUser}@${account.imapHost})${where}`;
    const stalled = watch?.takeFailure() ?? (err instanceof SyncStalledError ? err : undefined);
    if (stalled) {
      return ApplicationFailure.retryable(
        `IMAP server for ${who}: ${stalled.message}; gave up on this attempt, retried with backoff`,
        'ImapStalled',
      );
    }
    if (err instanceof ApplicationFailure || err instanceof UidValidityMismatch) return err as Error;
    if (isImapLimitError(err)) {
      return ApplicationFailure.retryable(
        `IMAP server for ${who} sent more than mailroom accepts: ${imapErrorText(err)} (limits follow SYNC_MAX_MESSAGE_BYTES)`,
        'ImapLimit',
      );
    }
    if (err instanceof ImapProtocolError)
      return ApplicationFailure.retryable(`IMAP server for ${who}: ${err.message}`, 'ImapProtocolError');
    return ApplicationFailure.retryable(
      `IMAP error for ${who}: ${imapErrorText(err)}`,
      isTransientImapError(err) ? 'ImapNetworkError' : 'ImapError',
    );
  }

  /** A failure inside one folder that says nothing about the others: the server stalled, dripped, or answered beyond our limits. */
  function folderLevel(err: unknown, stalled: SyncStalledError | undefined): string | null {
    if (stalled) return stalled.kind === 'stall' ? stalled.message : null;
    if (isImapLimitError(err)) return `the server sent more than mailroom accepts: ${imapErrorText(err)}`;
    if (err instanceof ImapProtocolError) return err.message;
    return folderDataProblem(err);
  }
  return { open, reopen, release, dropParked, imapFailure, folderLevel };
}

export type Sessions = ReturnType<typeof createSessions>;
