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
import { watchTaskQueue } from '../contracts/watch';

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
): Promise<SyncWorker> {
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
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: config.taskQueue,
    activities,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : workflowSource('sync')),
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    // Idle watchers leave the cache first (lib/config/sync.ts SYNC_MAX_CACHED_WORKFLOWS); the SDK
    // runs at most as many workflow tasks at once as it can cache.
    maxCachedWorkflows: config.maxCachedWorkflows,
    maxConcurrentWorkflowTaskExecutions: Math.min(40, config.maxCachedWorkflows),
    dataConverter,
  });
  // The watchers' long activities on their own queue and slots (contracts/watch.ts), served by
  // the same process: activities only, no workflows.
  const watches = await Worker.create({
    connection,
    namespace,
    taskQueue: watchTaskQueue(config.taskQueue),
    activities,
    maxConcurrentActivityTaskExecutions: config.maxWatches,
    dataConverter,
  });
  return new SyncWorker(worker, watches);
}

/** The sync worker and its watch worker, run and shut down together. */
export class SyncWorker {
  constructor(
    readonly syncs: Worker,
    readonly watches: Worker,
  ) {}

  /** Runs both until shut down; when one fails, the other is shut down too and the failure raised. */
  async run(): Promise<void> {
    const runs = [this.syncs, this.watches].map((w) =>
      w.run().catch((err: unknown) => {
        this.shutdown();
        throw err;
      }),
    );
    await Promise.all(runs);
  }

  shutdown(): void {
    for (const w of [this.syncs, this.watches]) if (w.getState() === 'RUNNING') w.shutdown();
  }

  /** RUNNING while both run; otherwise the state of the one that does not. */
  getState(): ReturnType<Worker['getState']> {
    const other = [this.syncs, this.watches].find((w) => w.getState() !== 'RUNNING');
    return other ? other.getState() : 'RUNNING';
  }
}
