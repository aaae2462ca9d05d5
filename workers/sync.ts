// The account-sync worker: serves SYNC_TASK_QUEUE with the syncAccount workflow bundle and
// the sync activities (one pg Pool and keyring per worker, injected into the activities).
// Runs as its own process (workers/sync-main.ts); a process that also runs the inbound
// worker can create this one beside it with the same NativeConnection.
import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Pool } from 'pg';
import type pino from 'pino';
import { createStore } from '../lib/sync-store';
import { createSyncActivities } from '../activities/sync';
import { loadKeyring } from '../lib/sync-store/crypto';
import { mailroomDataConverter } from '../lib/temporal/data-converter';
import { createPool } from '../lib/storage/db';
import { componentLogger } from '../lib/observability/logger';
import { loadSyncConfig, type SyncConfig } from '../lib/config/sync';
import { setNeedsAttentionSource } from '../lib/observability/sync-metrics';
import { workflowSource } from '../lib/temporal/workflow-source';
import { environment } from '../lib/config/env';

export interface SyncWorkerOptions {
  /** Environment to read the sync configuration and MAILROOM_SECRET_KEYS from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Use this pool instead of creating one from DATABASE_URL (the caller closes it). */
  pool?: Pool;
  /** A prebuilt bundle (bundleWorkflowCode), so tests that start many workers bundle once. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Overrides applied on top of the loaded configuration. */
  config?: Partial<SyncConfig>;
  /**
   * Payload encryption shared with the clients (lib/temporal/data-converter.ts). Default: the one
   * MAILROOM_CODEC_KEYS in `env` describes; pass null to force plaintext payloads.
   */
  dataConverter?: DataConverter | null;
  /** The activities' logger (default: the component logger of lib/observability/logger.ts). */
  logger?: pino.Logger;
}

export async function createSyncWorker(
  connection: NativeConnection,
  namespace: string,
  options: SyncWorkerOptions = {},
): Promise<Worker> {
  const env = options.env ?? environment();
  const config = { ...loadSyncConfig(env), ...options.config };
  // Fail at start, not on the first sync, when the key is missing or malformed.
  const keyring = loadKeyring(env);
  const pool = options.pool ?? createPool(config.databaseUrl, { max: config.databasePoolSize, allowExitOnIdle: true });
  const dataConverter =
    options.dataConverter === undefined ? mailroomDataConverter(env) : (options.dataConverter ?? undefined);
  const activities = createSyncActivities({
    pool,
    keyring,
    config,
    logger: options.logger ?? componentLogger('sync-worker'),
    // Starts new-message event workflows (activities/sync/events.ts) on this worker's connection,
    // with the same payload encryption as every other client.
    temporal: new Client({ connection, namespace, dataConverter }),
  });
  // mailroom_sync_accounts_needing_attention reads PostgreSQL at each scrape.
  const store = createStore(pool);
  setNeedsAttentionSource(() => store.countAccountsNeedingAttention());
  return Worker.create({
    connection,
    namespace,
    taskQueue: config.taskQueue,
    activities,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : workflowSource('sync')),
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    dataConverter,
  });
}
