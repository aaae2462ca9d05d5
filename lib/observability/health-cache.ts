// /health is polled by load balancers and orchestrators, often every second from several
// places; each check opens a connection (SMTP, S3, DynamoDB). Each check's result, good or
// bad, is kept for a short while and shared by concurrent requests, so /health costs the
// dependencies one check per dependency per interval whatever the polling rate.
export type Check = () => Promise<void>;

/** The same check, run at most once per `ttlMs` (concurrent callers share one run). */
export function cachedCheck(check: Check, ttlMs = 10_000, now: () => number = Date.now): Check {
  let last: { at: number; result: Promise<void> } | undefined;
  return () => {
    if (!last || now() - last.at >= ttlMs) {
      const result = check();
      result.catch(() => undefined); // a failure is reported to the callers, not unhandled here
      last = { at: now(), result };
    }
    return last.result;
  };
}

/** Every check of a record cached alike. */
export function cachedChecks<T extends Record<string, Check>>(checks: T, ttlMs = 10_000): T {
  return Object.fromEntries(Object.entries(checks).map(([name, check]) => [name, cachedCheck(check, ttlMs)])) as T;
}
