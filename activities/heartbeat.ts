// Heartbeats for activities whose single steps can be slow. With a heartbeat timeout set
// in the workflow, Temporal notices a dead worker (SIGKILL, lost host) within that timeout
// instead of waiting for the whole start-to-close timeout before it retries elsewhere.
import { Context } from '@temporalio/activity';

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

/** The same activities, each heartbeating while it runs. */
export function heartbeating<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    out[name] = (...args: never[]) => keepAlive(() => fn(...args));
  }
  return out as T;
}
