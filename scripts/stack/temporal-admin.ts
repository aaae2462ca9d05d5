// What both local Temporal servers (temporal-dev.ts on SQLite, temporal-postgres.ts on
// PostgreSQL) share: the handle they return, probing a frontend, mailroom's search
// attributes, and start errors that carry the end of the server's log.
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../contracts/search-attributes';
import { componentLogger } from '../../lib/observability/logger';
import { temporalBinary } from './temporal-binary';

const log = componentLogger('temporal-admin');

export interface LocalTemporal {
  address: string;
  uiUrl: string;
  /** True when an already running server was found on the port (stop() and kill() then leave it running). */
  reused: boolean;
  /** Graceful: SIGTERM, SIGKILL after 15 s; also stops the Web UI. */
  stop(): Promise<void>;
  /** A crash: SIGKILL the server process and wait for it to exit (a separate Web UI process may keep running). */
  kill(): Promise<void>;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Runs fn on a short-lived connection to the frontend at address. */
export async function withConnection<T>(
  address: string,
  fn: (connection: Connection) => Promise<T>,
  deadlineMs = 3000,
): Promise<T> {
  const connection = await Connection.connect({ address, connectTimeout: '2s' });
  try {
    return await connection.withDeadline(Date.now() + deadlineMs, () => fn(connection));
  } finally {
    await connection.close();
  }
}

/** Resolves when the frontend answers and has the default namespace (workers and starters need both). */
export async function probe(address: string): Promise<void> {
  await withConnection(address, (c) => c.workflowService.describeNamespace({ namespace: 'default' }));
}

/**
 * Registers any of mailroom's search attributes (contracts/search-attributes.ts) the default namespace lacks; without them, upserts fail workflows.
 * Returns how many it registered.
 */
export async function ensureSearchAttributes(address: string): Promise<number> {
  const res = await withConnection(address, (c) => c.operatorService.listSearchAttributes({ namespace: 'default' }));
  const existing = Object.keys(res.customAttributes ?? {});
  let registered = 0;
  for (const flag of SEARCH_ATTRIBUTE_FLAGS) {
    const [name, type] = flag.split('=');
    if (existing.includes(name)) continue;
    await promisify(execFile)(temporalBinary(), [
      'operator',
      'search-attribute',
      'create',
      '--name',
      name,
      '--type',
      type,
      '--address',
      address,
      '--namespace',
      'default',
    ]);
    log.info({ name, type }, 'registered search attribute');
    registered++;
  }
  return registered;
}

/** An Error with the last lines of the server's log appended: that is where the reason is. */
export function startError(message: string, logFile: string): Error {
  const tail = existsSync(logFile)
    ? readFileSync(logFile, 'utf8')
        .split('\n')
        .slice(-30)
        .map((line) => (line.length > 400 ? `${line.slice(0, 400)}...` : line))
        .join('\n')
    : '(no log file)';
  return new Error(`${message}\n--- last lines of ${logFile} ---\n${tail}`);
}

export interface ServerProcess {
  pid: number | undefined;
  /** How the process ended ("code 1", "signal SIGKILL", a spawn error), undefined while it runs. */
  exit(): string | undefined;
  /** SIGTERM, then SIGKILL after graceMs; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL; resolves once it has exited. */
  kill(): Promise<void>;
}

/**
 * Spawns a server binary with stdout and stderr appended to logFile. It is SIGKILLed when
 * this process exits without stopping it: an orphan would keep the ports (and database
 * files) after we are gone.
 */
export function spawnServer(
  binary: string,
  args: string[],
  logFile: string,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ServerProcess {
  const out = openSync(logFile, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', out, out], cwd: opts.cwd, env: opts.env });
  closeSync(out);
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exit = err.message;
      resolve();
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  return {
    pid: child.pid,
    exit: () => exit,
    async stop(graceMs = 15_000) {
      process.removeListener('exit', killOnExit);
      if (exit !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      process.removeListener('exit', killOnExit);
      if (exit !== undefined) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
