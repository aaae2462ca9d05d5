// Runs the real Temporal server (`temporal server start-dev`, SQLite file) for the demo,
// with mailroom's search attributes, keeping history across restarts in `dbFile`.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../contracts/search-attributes';
import { componentLogger } from '../../lib/observability/logger';
import { ensureSearchAttributes, type LocalTemporal, portOpen, probe, spawnServer, startError } from './temporal-admin';
import { temporalBinary } from './temporal-binary';

export type { LocalTemporal };

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

export async function startTemporalDevServer(options: TemporalDevOptions): Promise<LocalTemporal> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const address = `127.0.0.1:${port}`;
  const uiUrl = `http://127.0.0.1:${uiPort}`;

  if (await portOpen(port)) {
    try {
      await probe(address);
    } catch (err) {
      throw new Error(
        `port ${port} is in use but does not answer as a Temporal frontend (${(err as Error).message}); stop that process or choose another port`,
      );
    }
    await ensureSearchAttributes(address);
    log.info({ address }, 'reusing the Temporal server already running');
    return { address, uiUrl, reused: true, stop: async () => {}, kill: async () => {} };
  }

  mkdirSync(dirname(options.dbFile), { recursive: true });
  mkdirSync(dirname(options.logFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    options.dbFile,
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--ip',
    '127.0.0.1',
    '--log-level',
    'warn',
  ];
  for (const flag of SEARCH_ATTRIBUTE_FLAGS) args.push('--search-attribute', flag);
  if (options.codecEndpoint) args.push('--ui-codec-endpoint', options.codecEndpoint);
  const server = spawnServer(temporalBinary(), args, options.logFile);
  const stop = () => server.stop();
  // A crash, for tests of what survives one: no shutdown, the SQLite file as the kill left it.
  const kill = () => server.kill();

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (server.exit() !== undefined)
      throw startError(`temporal server exited (${server.exit()}) before accepting connections`, options.logFile);
    try {
      await probe(address);
      break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw startError(
        `temporal server did not accept connections on ${address} within ${(options.startTimeoutMs ?? 60_000) / 1000} s`,
        options.logFile,
      );
    }
    await sleep(500);
  }
  log.info({ address, uiUrl, dbFile: options.dbFile, pid: server.pid }, 'Temporal dev server ready');
  return { address, uiUrl, reused: false, stop, kill };
}
