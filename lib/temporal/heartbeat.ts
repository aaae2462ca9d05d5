// Heartbeats for activities whose single steps can be slow. With a heartbeat timeout set
// in the workflow, Temporal notices a dead worker (SIGKILL, lost host) within that timeout
// instead of waiting for the whole start-to-close timeout before it retries elsewhere.
import { Context } from '@temporalio/activity';
import { SyncStalledError } from '../imap/sync-errors';

/** The current activity context, or undefined when called directly (tests, scripts, bench). */
export function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/**
 * Heartbeats on a timer while `fn` runs, repeating the latest details `fn` gave (or the
 * last attempt's, until it gives some), every third of the heartbeat timeout. A hung
 * connection is caught by the client's own socket timeout, not by this.
 */
export async function keepAlive<T>(fn: (beat: (details: unknown) => void) => Promise<T>): Promise<T> {
  const ctx = activityContext();
  let latest: unknown = ctx?.info.heartbeatDetails;
  const beat = (details: unknown) => {
    latest = details;
    ctx?.heartbeat(details);
  };
  const every = Math.max(1000, Math.floor((ctx?.info.heartbeatTimeoutMs ?? 30_000) / 3));
  // Local activities cannot heartbeat (they live inside a workflow task).
  const timer = ctx && !ctx.info.isLocal ? setInterval(() => ctx.heartbeat(latest), every) : undefined;
  try {
    return await fn(beat);
  } finally {
    clearInterval(timer);
  }
}

/** Heartbeats with `details`, unless this is a local activity (it lives inside a workflow task and cannot). */
export function heartbeat(details?: unknown): void {
  const ctx = activityContext();
  if (ctx && !ctx.info.isLocal) ctx.heartbeat(details);
}

/** The same activities, each heartbeating while it runs. */
export function heartbeating<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    out[name] = (...args: never[]) => keepAlive(() => fn(...args));
  }
  return out as T;
}

/** What an activity watched by heartbeatOnProgress reports and asks. */
export interface ProgressWatch {
  /**
   * Progress was made (a message received, a batch committed, a folder done): restarts the
   * stall clock and heartbeats with these details (at most once a second).
   */
  progress(details?: unknown): void;
  /**
   * Watches a connection: its received bytes count as progress (every `minBytes`), and it is
   * closed when the watch gives up (stall or deadline). Returns a function that stops watching it.
   */
  guard(connection: { close(): void; stats?(): { received: number } }): () => void;
  /** Why the watch closed the guarded connections, once: use it instead of the error the close caused. */
  takeFailure(): SyncStalledError | undefined;
  /** Past a quarter of the deadline: start no new unit of work, return what is done. */
  deadlineNear(): boolean;
  /**
   * Our own work (a PostgreSQL commit) while a connection is open: the server is not asked for
   * anything, so no stall is counted; heartbeats go on by the clock meanwhile, and the end
   * counts as progress.
   */
  quiet<T>(fn: () => Promise<T>): Promise<T>;
}

export interface ProgressWatchOptions {
  /**
   * Give up on a connection after this long without progress. Default: 70 % of the
   * activity's heartbeat timeout (so the activity fails with a clear reason before Temporal
   * times it out), or 60 s outside an activity.
   */
  stallMs?: number;
  /** Give up on every connection this long after the start; 0 = no deadline. */
  deadlineMs?: number;
  /** Bytes received that count as progress. A server dripping slower than this per stall window is given up on. */
  minBytes?: number;
}

/**
 * Heartbeats on progress, not on a timer: a sync that moves messages or bytes heartbeats; one
 * whose server stalls, or drips a few bytes at a time, stops heartbeating, and its connections
 * are closed here after `stallMs` so the attempt fails with a clear reason and Temporal retries
 * it with backoff. A hard deadline bounds the whole activity the same way.
 *
 * (keepAlive above heartbeats on a timer; it stays as it is for the inbound activities, whose
 * single steps have no progress to report.)
 */
export async function heartbeatOnProgress<T>(
  options: ProgressWatchOptions,
  fn: (watch: ProgressWatch) => Promise<T>,
): Promise<T> {
  const ctx = activityContext();
  const heartbeatTimeoutMs = ctx?.info.heartbeatTimeoutMs ?? 0;
  const stallMs =
    options.stallMs ?? (heartbeatTimeoutMs > 0 ? Math.max(500, Math.floor(heartbeatTimeoutMs * 0.7)) : 60_000);
  const deadlineMs = options.deadlineMs ?? 0;
  const minBytes = options.minBytes ?? 64 * 1024;
  const started = Date.now();
  const canHeartbeat = ctx !== undefined && !ctx.info.isLocal;

  let lastProgress = started;
  let details: unknown = ctx?.info.heartbeatDetails;
  let pending = false;
  let lastBeat = 0;
  let failure: SyncStalledError | undefined;
  let expired = false;
  let quiet = 0;
  const guarded = new Map<{ close(): void; stats?(): { received: number } }, number>();

  const beat = () => {
    pending = false;
    lastBeat = Date.now();
    if (canHeartbeat) ctx.heartbeat(details);
  };
  const giveUp = (reason: SyncStalledError) => {
    failure = reason;
    for (const connection of guarded.keys()) connection.close();
    guarded.clear();
  };
  const received = (c: { stats?(): { received: number } }) => {
    try {
      return c.stats?.().received ?? 0;
    } catch {
      return 0;
    }
  };

  const watch: ProgressWatch = {
    progress(d?: unknown) {
      if (d !== undefined) details = d;
      lastProgress = Date.now();
      for (const c of guarded.keys()) guarded.set(c, received(c));
      if (Date.now() - lastBeat >= 1000) beat();
      else pending = true;
    },
    guard(connection) {
      if (expired) {
        connection.close();
        return () => {};
      }
      guarded.set(connection, received(connection));
      return () => {
        guarded.delete(connection);
      };
    },
    takeFailure() {
      const f = failure;
      failure = undefined;
      return f;
    },
    deadlineNear: () => deadlineMs > 0 && Date.now() - started > deadlineMs / 4,
    async quiet<T>(fn: () => Promise<T>): Promise<T> {
      quiet++;
      try {
        return await fn();
      } finally {
        quiet--;
        watch.progress();
      }
    },
  };

  const tick = () => {
    const now = Date.now();
    for (const [c, mark] of guarded) {
      if (received(c) - mark >= minBytes) watch.progress();
    }
    if (quiet > 0) {
      lastProgress = now;
      if (now - lastBeat >= 1000) beat();
    }
    if (pending && now - lastBeat >= 1000) beat();
    if (deadlineMs > 0 && !expired && now - started > deadlineMs) {
      expired = true;
      giveUp(
        new SyncStalledError(`gave up after the activity deadline of ${Math.round(deadlineMs / 1000)} s`, 'deadline'),
      );
    } else if (guarded.size > 0 && now - lastProgress > stallMs) {
      giveUp(
        new SyncStalledError(
          `the server made no progress for ${Math.round((now - lastProgress) / 100) / 10} s (stalled, or sent less than ${Math.round(minBytes / 1024)} KiB in that time)`,
          'stall',
        ),
      );
      // The caller may recover (reconnect, go on with the next folder): give that a fresh window.
      lastProgress = now;
    }
  };
  const timer = setInterval(tick, Math.max(50, Math.min(1000, Math.floor(stallMs / 5))));
  // Temporal's cancellation (account removed, operator) closes what is open.
  const onCancel = () => {
    expired = true;
    for (const connection of guarded.keys()) connection.close();
    guarded.clear();
  };
  ctx?.cancellationSignal.addEventListener('abort', onCancel, { once: true });
  try {
    return await fn(watch);
  } finally {
    clearInterval(timer);
    ctx?.cancellationSignal.removeEventListener('abort', onCancel);
    if (pending) beat();
  }
}
