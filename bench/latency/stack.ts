// The stack the latency benchmark (bench/latency.ts) and the watcher chaos scenarios
// (bench/chaos/watch-run.ts) run on: a scratch PostgreSQL database, Dovecot with N users
// (restartable on the same ports and mail), optionally a TCP fault proxy between the worker
// and Dovecot, and the sync worker as a child process (so its memory and CPU can be read from
// /proc, and it can be SIGKILLed). Accounts are added to the store directly and Temporal is
// made to match them by the real `sync:reconcile` command, which starts the Schedules and,
// with SYNC_WATCH=true, the IMAP IDLE watchers.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore, type Store } from '../../lib/sync-store';
import { addAccountWithPassword } from '../../lib/sync-store/credentials';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { startDovecot, type DovecotServer, type DovecotUser } from '../../scripts/stack/dovecot';
import { startTcpFaultProxy, type TcpFaultProxy } from '../../scripts/stack/fault-proxy';
import { freePort } from '../../scripts/stack/ports';
import { createTestDatabase, type TestDatabase } from '../../test/integration/sync-fixtures';

const ROOT = join(__dirname, '..', '..');

export interface BenchAccount {
  index: number;
  userId: string;
  accountId: string;
  login: DovecotUser;
}

export interface WatchStackOptions {
  /** TEMPORAL_ADDRESS of a running server (namespace default). */
  temporalAddress: string;
  accounts: number;
  /** SYNC_WATCH for the worker and the reconciler: IDLE watchers on, or the Schedules alone. */
  watch: boolean;
  /** Every account's sync_interval_seconds (its Schedule's interval). */
  intervalSeconds: number;
  /** Put a TCP fault proxy between the worker and Dovecot (the accounts point at it). */
  proxy?: boolean;
  /** Extra environment for the worker and the reconciler (SYNC_WATCH_*, ...). */
  env?: Record<string, string>;
  /** Where the worker's and Dovecot's logs go (default: a temporary directory, removed by stop()). */
  dir?: string;
  label?: string;
}

export interface WatchStack {
  db: TestDatabase;
  store: Store;
  accounts: BenchAccount[];
  proxy?: TcpFaultProxy;
  dir: string;
  taskQueue: string;
  dovecot(): DovecotServer;
  /** Stops Dovecot (as a crash would: every connection dropped), runs `whileDown`, starts it again on the same ports and mail. */
  restartDovecot(whileDown?: () => Promise<void>): Promise<void>;
  /** Starts the worker process (unless running) and waits until its /health says healthy. */
  startWorker(): Promise<void>;
  /** SIGKILLs the worker process and waits until it is gone. */
  killWorker(): Promise<void>;
  /** SIGTERMs the worker and waits. */
  stopWorker(): Promise<void>;
  workerPid(): number | undefined;
  /** Asks the worker for a full garbage collection (SIGWINCH, bench/latency/gc-on-signal.ts). */
  collectGarbage(): void;
  /** What the worker wrote after its last collection (gc-on-signal.ts), if it has. */
  workerMemory(): NodeJS.MemoryUsage | undefined;
  /** Adds the accounts (all, or the first `upTo`) to the store (users bench-<i>@example.test), then runs sync:reconcile. */
  addAccounts(upTo?: number): Promise<void>;
  reconcile(): Promise<void>;
  /** Watchers known to the store (table account_watchers), by state; {} without watchers. */
  watcherStates(): Promise<Record<string, number>>;
  /**
   * With watchers on: until every account's watcher is idle on a connection (its row written
   * since `since`, when given: after a worker was killed, the dead watchers' rows still say idle)
   * and no sync runs; without: until no sync runs. Throws after timeoutMs, naming what it saw.
   */
  waitQuiet(timeoutMs: number, since?: Date): Promise<void>;
  workerLog: string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The worker command as `npm run sync:worker` runs it (same V8 flags), plus --expose-gc and
 * ./gc-on-signal.ts, so that collectGarbage() can ask it for a full collection before its
 * memory is read.
 */
function syncWorkerArgs(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const args = (pkg.scripts['sync:worker'] ?? 'node --import tsx workers/sync-main.ts').split(/\s+/).slice(1);
  const main = args.pop()!;
  return ['--expose-gc', ...args, '--import', join(__dirname, 'gc-on-signal.ts'), main];
}

async function runCommand(args: string[], env: NodeJS.ProcessEnv, what: string): Promise<string> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${what} exited with ${code}:\n${out.slice(-4000)}`);
  return out;
}

export async function startWatchStack(o: WatchStackOptions): Promise<WatchStack> {
  const ownDir = !o.dir;
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'mailroom-latency-'));
  mkdirSync(dir, { recursive: true });
  const label = o.label ?? (o.watch ? 'watch' : 'schedule');
  const dovecotDir = mkdtempSync(join(tmpdir(), 'mailroom-dovecot-'));
  const users: DovecotUser[] = Array.from({ length: o.accounts }, (_, i) => ({
    user: `bench-${i}@example.test`,
    password: `bench-secret-${i}`,
  }));
  const db = await createTestDatabase();
  let dovecot: DovecotServer | undefined;
  let proxy: TcpFaultProxy | undefined;
  try {
    dovecot = await startDovecot({ directory: dovecotDir, users });
    if (o.proxy) proxy = await startTcpFaultProxy({ target: { host: '127.0.0.1', port: dovecot.imapPort } });
  } catch (err) {
    await dovecot?.stop();
    await db.drop();
    rmSync(dovecotDir, { recursive: true, force: true });
    throw err;
  }
  const ports = { imapPort: dovecot.imapPort, lmtpPort: dovecot.lmtpPort };
  const store = createStore(db.pool);
  const keyEntry = generateKeyEntry('latency');
  const taskQueue = `latency-${label}-${process.pid}-${Date.now().toString(36)}`;
  const workerLog = join(dir, `sync-worker-${label}.log`);
  const memoryFile = join(dir, `sync-worker-${label}-memory.json`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: o.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    DATABASE_URL: db.url,
    MAILROOM_SECRET_KEYS: keyEntry,
    MAILROOM_CODEC_KEYS: 'none',
    SYNC_TASK_QUEUE: taskQueue,
    SYNC_WATCH: o.watch ? 'true' : 'false',
    LOG_LEVEL: 'warn',
    ...o.env,
  };
  const accounts: BenchAccount[] = [];
  let worker: ChildProcess | undefined;
  let log: WriteStream | undefined;

  const running = () => worker !== undefined && worker.exitCode === null && worker.signalCode === null;

  async function startWorker(): Promise<void> {
    if (running()) return;
    const healthPort = await freePort();
    log ??= createWriteStream(workerLog, { flags: 'a' });
    const child = spawn(process.execPath, syncWorkerArgs(), {
      cwd: ROOT,
      env: { ...env, SYNC_METRICS_PORT: String(healthPort), METRICS_HOST: '127.0.0.1', BENCH_MEMORY_FILE: memoryFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker = child;
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    const deadline = Date.now() + 180_000;
    for (;;) {
      if (!running())
        throw new Error(`the sync worker exited (${child.exitCode ?? child.signalCode}); see ${workerLog}`);
      const healthy = await fetch(`http://127.0.0.1:${healthPort}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (healthy) return;
      if (Date.now() > deadline) throw new Error(`the sync worker was not healthy within 180 s; see ${workerLog}`);
      await sleep(200);
    }
  }

  async function killWorker(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!running()) return;
    const exited = once(worker!, 'exit');
    worker!.kill(signal);
    await exited;
  }

  async function reconcile(): Promise<void> {
    await runCommand(['--import', 'tsx', 'starters/reconcile-schedules.ts'], env, 'sync:reconcile');
  }

  async function watcherStates(): Promise<Record<string, number>> {
    const exists = await db.pool.query<{ t: string | null }>(`SELECT to_regclass('account_watchers')::text AS t`);
    if (!exists.rows[0].t) return {};
    const r = await db.pool.query<{ state: string; connected: boolean; n: string }>(
      'SELECT state, connected, count(*) AS n FROM account_watchers GROUP BY state, connected',
    );
    return Object.fromEntries(r.rows.map((x) => [`${x.state}${x.connected ? '' : ' (not connected)'}`, Number(x.n)]));
  }

  async function runningSyncs(): Promise<number> {
    const r = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM sync_runs WHERE status = 'running'`);
    return Number(r.rows[0].n);
  }

  async function idleWatchers(since: Date): Promise<number> {
    const r = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM account_watchers WHERE state = 'idle' AND connected AND heartbeat_at >= $1`,
      [since],
    );
    return Number(r.rows[0].n);
  }

  async function waitQuiet(timeoutMs: number, since = new Date(0)): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen = '';
    for (;;) {
      const states = await watcherStates();
      const syncs = await runningSyncs();
      const idle = o.watch && 'idle' in states ? await idleWatchers(since) : 0;
      seen = `watchers ${JSON.stringify(states)} (${idle} idle since ${since.toISOString()}), syncs running ${syncs}`;
      if ((!o.watch || idle >= accounts.length) && syncs === 0) return;
      if (Date.now() > deadline)
        throw new Error(`${label}: not quiet after ${timeoutMs / 1000} s: ${seen}; see ${workerLog}`);
      await sleep(250);
    }
  }

  return {
    db,
    store,
    accounts,
    proxy,
    dir,
    taskQueue,
    workerLog,
    dovecot: () => dovecot!,
    async restartDovecot(whileDown) {
      await dovecot!.stop();
      await whileDown?.();
      dovecot = await startDovecot({ directory: dovecotDir, users, ...ports });
    },
    startWorker,
    killWorker: () => killWorker('SIGKILL'),
    stopWorker: () => killWorker('SIGTERM'),
    workerPid: () => (running() ? worker!.pid : undefined),
    collectGarbage: () => {
      rmSync(memoryFile, { force: true });
      if (running()) worker!.kill('SIGWINCH');
    },
    workerMemory: () => {
      try {
        return JSON.parse(readFileSync(memoryFile, 'utf8')) as NodeJS.MemoryUsage;
      } catch {
        return undefined;
      }
    },
    async addAccounts(upTo = users.length) {
      const keyring = parseKeyring(keyEntry);
      for (const [index, login] of users.slice(0, upTo).entries()) {
        if (accounts.some((a) => a.index === index)) continue;
        const userId = (await store.ensureUser(`owner-${index}@example.com`)).id;
        const account = await addAccountWithPassword(
          store,
          keyring,
          userId,
          {
            imapHost: '127.0.0.1',
            imapPort: proxy?.port ?? ports.imapPort,
            imapTls: false,
            imapUser: login.user,
            syncIntervalSeconds: o.intervalSeconds,
          },
          login.password,
        );
        accounts.push({ index, userId, accountId: account.id, login });
      }
      await reconcile();
    },
    reconcile,
    watcherStates,
    waitQuiet,
    async stop() {
      // Schedules and watchers are Temporal's: with the accounts gone, the reconciler deletes
      // and stops them (best effort; a scratch Temporal server goes away anyway).
      if (accounts.length && running()) {
        await db.pool
          .query('DELETE FROM mail_accounts')
          .then(reconcile)
          .catch(() => undefined);
      }
      await killWorker('SIGKILL').catch(() => undefined);
      log?.end();
      await proxy?.stop().catch(() => undefined);
      await dovecot?.stop().catch(() => undefined);
      rmSync(dovecotDir, { recursive: true, force: true });
      await db.drop().catch(() => undefined);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
