// A chaos run starts a worker, a Temporal server, Dovecot and a scratch database. When the
// run itself is interrupted (Ctrl-C, `kill`), its `finally` blocks never run, and those
// processes would outlive it holding ports and CPU. What registers here is stopped on
// SIGINT or SIGTERM, newest first, before the process exits. The run's own code, failing
// because its servers went away, also reaches its `finally` and stops the same things: so
// stops are made idempotent with `onlyOnce`, and a failure after an interrupt is not reported.
const cleanups: (() => Promise<unknown>)[] = [];
let installed = false;
let interruptedBy: NodeJS.Signals | undefined;

/** The signal that interrupted the run, if one did: its failures since are consequences. */
export const interrupted = () => interruptedBy;

/** `fn` run at most once; later calls get the first call's promise. */
export function onlyOnce<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

function stopAll(signal: NodeJS.Signals): void {
  interruptedBy = signal;
  console.error(`\n${signal}: stopping what the chaos run started ...`);
  const pending = cleanups.splice(0).reverse();
  void (async () => {
    for (const stop of pending) await stop().catch((err: Error) => console.error(`cleanup failed: ${err.message}`));
    process.exit(signal === 'SIGINT' ? 130 : 143);
  })();
}

/** Runs `stop` if the process is interrupted; call the returned function once it has been stopped normally. */
export function onInterrupt(stop: () => Promise<unknown>): () => void {
  if (!installed) {
    installed = true;
    process.once('SIGINT', stopAll);
    process.once('SIGTERM', stopAll);
  }
  cleanups.push(stop);
  return () => {
    const at = cleanups.indexOf(stop);
    if (at >= 0) cleanups.splice(at, 1);
  };
}
