// Starts a real Temporal server for tests, with mailroom's search attributes registered:
// the dev server (the installed `temporal` CLI binary, SQLite in memory; the default) or
// the real server on the local PostgreSQL (scripts/stack/temporal-postgres.ts, 4 history
// shards, throwaway databases dropped on teardown). MAILROOM_TEMPORAL_BACKEND=dev|postgres
// picks one for every test that does not ask for a backend itself.
import { mkdtempSync, rmSync } from 'node:fs';
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
  return TestWorkflowEnvironment.createLocal({
    ...client,
    server: {
      executable: { type: 'existing-path', path: temporalBinary() },
      extraArgs: SEARCH_ATTRIBUTE_FLAGS.flatMap((f) => ['--search-attribute', f]),
      ui: false,
    },
  });
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
