// Runs the real Temporal server (`temporal server start-dev`, SQLite file) for the demo,
// with mailroom's search attributes, keeping history across restarts in `dbFile`.
import { spawn, execFile } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../lib/search-attributes';
import { componentLogger } from '../../lib/logger';
import { temporalBinary } from './temporal-binary';

const log = componentLogger('temporal-dev');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TemporalDevOptions {
  dbFile: string;
  port?: number;
  uiPort?: number;
  logFile: string;
  /** How long the server may take to answer; default 60 s. */
  startTimeoutMs?: number;
  /** Codec server for the Web UI (`--ui-codec-endpoint`, workers/codec-server.ts). */
  codecEndpoint?: string;
}

export interface LocalTemporal {
  address: string;
  uiUrl: string;
  /** True when an already running server was found on the port (stop() then leaves it running). */
  reused: boolean;
  stop(): Promise<void>;
}

export async function startTemporalDevServer(options: TemporalDevOptions): Promise<LocalTemporal> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const address = `127.0.0.1:${port}`;
  const uiUrl = `http://127.0.0.1:${uiPort}`;

  if (await portOpen(port)) {
    try {
      await probe(address);
    } catch (err) {
      throw new Error(`port ${port} is in use but does not answer as a Temporal frontend (${(err as Error).message}); stop that process or choose another port`);
    }
    await ensureSearchAttributes(address);
    log.info({ address }, 'reusing the Temporal server already running');
    return { address, uiUrl, reused: true, stop: async () => {} };
  }

  mkdirSync(dirname(options.dbFile), { recursive: true });
  mkdirSync(dirname(options.logFile), { recursive: true });
  const args = ['server', 'start-dev', '--db-filename', options.dbFile, '--port', String(port), '--ui-port', String(uiPort), '--ip', '127.0.0.1', '--log-level', 'warn'];
  for (const flag of SEARCH_ATTRIBUTE_FLAGS) args.push('--search-attribute', flag);
  if (options.codecEndpoint) args.push('--ui-codec-endpoint', options.codecEndpoint);
  const out = openSync(options.logFile, 'a');
  const child = spawn(temporalBinary(), args, { stdio: ['ignore', out, out] });
  closeSync(out);

  let exit: string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    }),
  );
  child.once('error', (err) => (exit = err.message));
  // An orphaned server would keep the ports (and the SQLite file) after we are gone.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (exit !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exit !== undefined) throw startError(`temporal server exited (${exit}) before accepting connections`, options.logFile);
    try {
      await probe(address);
      break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw startError(`temporal server did not accept connections on ${address} within ${(options.startTimeoutMs ?? 60_000) / 1000} s`, options.logFile);
    }
    await sleep(500);
  }
  log.info({ address, uiUrl, dbFile: options.dbFile, pid: child.pid }, 'Temporal dev server ready');
  return { address, uiUrl, reused: false, stop };
}

function portOpen(port: number): Promise<boolean> {
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

// Frontend up is not enough: workers and starters need the default namespace.
async function probe(address: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: '2s' });
  try {
    await connection.withDeadline(Date.now() + 3000, () => connection.workflowService.describeNamespace({ namespace: 'default' }));
  } finally {
    await connection.close();
  }
}

// A server someone else started may lack our attributes; upserts of them would then fail workflows.
async function ensureSearchAttributes(address: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: '2s' });
  let existing: string[];
  try {
    const res = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    existing = Object.keys(res.customAttributes ?? {});
  } finally {
    await connection.close();
  }
  for (const flag of SEARCH_ATTRIBUTE_FLAGS) {
    const [name, type] = flag.split('=');
    if (existing.includes(name)) continue;
    await promisify(execFile)(temporalBinary(), ['operator', 'search-attribute', 'create', '--name', name, '--type', type, '--address', address, '--namespace', 'default']);
    log.info({ name, type }, 'registered search attribute');
  }
}

function startError(message: string, logFile: string): Error {
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n') : '(no log file)';
  return new Error(`${message}\n--- last lines of ${logFile} ---\n${tail}`);
}
