// Starts a real Temporal server for tests, with mailroom's search attributes registered:
// the dev server (the installed `temporal` CLI binary, SQLite in memory; the default) or
// the real server on the local PostgreSQL (scripts/stack/temporal-postgres.ts, 4 history
// shards, throwaway databases dropped on teardown). MAILROOM_TEMPORAL_BACKEND=dev|postgres
// picks one for every test that does not ask for a backend itself.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { dropDatabase, withDatabase } from '../../lib/storage/db';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../contracts/search-attributes';
import { freePort } from '../../scripts/stack/ports';
import { temporalBinary } from '../../scripts/stack/temporal-binary';
import {
  DEFAULT_TEMPORAL_PG_URL,
  freeTemporalPort,
  startTemporalPostgres,
  type TemporalPostgresOptions,
} from '../../scripts/stack/temporal-postgres';

export { temporalBinary };

export type TemporalBackend = 'dev' | 'postgres';

export interface TestTemporalOptions {
  /** lib/temporal/data-converter.ts; used by `env.client`, give the workers the same one. */
  dataConverter?: DataConverter;
  /** Default: $MAILROOM_TEMPORAL_BACKEND, else dev. */
  backend?: TemporalBackend;
  /** Overrides for the postgres backend (default: free ports, throwaway databases, a temporary state directory). */
  postgres?: Partial<TemporalPostgresOptions>;
}

export function temporalBackendFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalBackend {
  const value = env.MAILROOM_TEMPORAL_BACKEND || 'dev';
  if (value !== 'dev' && value !== 'postgres')
    throw new Error(`MAILROOM_TEMPORAL_BACKEND must be dev or postgres, not ${value}`);
  return value;
}

export async function startTestTemporal(opts: TestTemporalOptions = {}): Promise<TestWorkflowEnvironment> {
  const client = opts.dataConverter ? { client: { dataConverter: opts.dataConverter } } : {};
  if ((opts.backend ?? temporalBackendFromEnv()) === 'postgres') return startPostgresBackend(opts, client);
  const env = await TestWorkflowEnvironment.createLocal({
    ...client,
    server: {
      executable: { type: 'existing-path', path: temporalBinary() },
      extraArgs: SEARCH_ATTRIBUTE_FLAGS.flatMap((f) => ['--search-attribute', f]),
      ui: false,
    },
  });
  boundTeardown(env);
  return env;
}

const TEARDOWN_MS = 60_000;

/**
 * env.teardown(), at most TEARDOWN_MS: once, in CI, a file's teardown never returned after its
 * tests had passed and held the run until its 90-minute limit. Past the limit the dev server
 * (found by its port in /proc) is killed and the file goes on; the warning says so.
 */
function boundTeardown(env: TestWorkflowEnvironment): void {
  const teardown = env.teardown.bind(env);
  const port = env.address.split(':').pop();
  env.teardown = async () => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), TEARDOWN_MS)));
    const outcome = await Promise.race([teardown().then(() => 'done' as const), late]).finally(() =>
      clearTimeout(timer),
    );
    if (outcome === 'done') return;
    const killed = killDevServer(port);
    console.warn(
      `# the Temporal dev server on port ${port} did not stop within ${TEARDOWN_MS / 1000} s; killed ${killed.join(', ') || 'nothing (already gone)'}`,
    );
  };
}

function killDevServer(port: string | undefined): number[] {
  const binary = temporalBinary();
  const killed: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = args.indexOf('--port');
    if (args[0] !== binary || !args.includes('start-dev') || at < 0 || args[at + 1] !== port) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed.push(Number(pid));
    } catch {
      /* gone meanwhile */
    }
  }
  return killed;
}

let counter = 0;

async function startPostgresBackend(
  opts: TestTemporalOptions,
  client: { client?: { dataConverter: DataConverter } },
): Promise<TestWorkflowEnvironment> {
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-temporal-pg-'));
  // Databases of our own unless the caller names some: then they are the caller's to drop.
  const throwaway = opts.postgres?.databases ? undefined : `mailroom_test_temporal_${process.pid}_${++counter}`;
  const databases = opts.postgres?.databases ?? { default: throwaway!, visibility: `${throwaway}_visibility` };
  const pgUrl = opts.postgres?.databaseUrl ?? DEFAULT_TEMPORAL_PG_URL;
  const dropThrowaway = async () => {
    if (throwaway)
      for (const name of [databases.default!, databases.visibility!]) await dropDatabase(withDatabase(pgUrl, name));
  };
  let server;
  try {
    server = await startTemporalPostgres({
      port: await freeTemporalPort(),
      uiPort: await freePort(),
      stateDir: join(dir, 'state'),
      logFile: join(dir, 'temporal-server.log'),
      ...opts.postgres,
      databases,
    });
  } catch (err) {
    await dropThrowaway().catch(() => {});
    throw err;
  }
  const env = await TestWorkflowEnvironment.createFromExistingServer({
    address: server.address,
    namespace: 'default',
    ...client,
  });
  const teardown = env.teardown.bind(env);
  env.teardown = async () => {
    await teardown();
    await server.stop();
    await dropThrowaway();
    rmSync(dir, { recursive: true, force: true });
  };
  return env;
}
