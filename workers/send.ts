// The send worker: serves SEND_TASK_QUEUE (mailroom-send) with the sendMessage workflow and the
// send activities. It runs beside the sync worker in the sync worker's process (workers/
// sync-main.ts) and shares its workflow bundle (workflows/sync.ts), but polls its own queue:
// a backlog of syncs never delays a message whose undo window has passed, and the number of
// concurrent SMTP submissions is set on its own (SEND_MAX_CONCURRENT_ACTIVITIES).
import { S3Client } from '@aws-sdk/client-s3';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Pool } from 'pg';
import type pino from 'pino';
import { createSendActivities } from '../activities/send';
import { environment } from '../lib/config/env';
import { loadSendConfig, type SendConfig } from '../lib/config/send';
import { loadSyncConfig, type SyncConfig } from '../lib/config/sync';
import { componentLogger } from '../lib/observability/logger';
import { createPool } from '../lib/storage/db';
import { loadKeyring } from '../lib/sync-store/crypto';
import { mailroomDataConverter } from '../lib/temporal/data-converter';
import { workflowSource } from '../lib/temporal/workflow-source';

export interface SendWorkerOptions {
  /** Environment to read SEND_*, SYNC_* (login timeouts) and MAILROOM_SECRET_KEYS from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Use this pool instead of creating one from DATABASE_URL (the caller closes it). */
  pool?: Pool;
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Overrides applied on top of the loaded configuration. */
  config?: Partial<SendConfig>;
  /** Overrides of the sync configuration (IMAP timeouts, OAuth2 settings, database). */
  syncConfig?: Partial<SyncConfig>;
  dataConverter?: DataConverter | null;
  /** For attachments kept in S3 (default: a client from AWS_REGION / AWS_ENDPOINT_URL_S3). */
  s3?: S3Client;
  logger?: pino.Logger;
}

export async function createSendWorker(
  connection: NativeConnection,
  namespace: string,
  options: SendWorkerOptions = {},
): Promise<Worker> {
  const env = options.env ?? environment();
  const config = { ...loadSendConfig(env), ...options.config };
  const sync = { ...loadSyncConfig(env), ...options.syncConfig };
  const keyring = loadKeyring(env);
  const pool = options.pool ?? createPool(sync.databaseUrl, { max: sync.databasePoolSize, allowExitOnIdle: true });
  const dataConverter =
    options.dataConverter === undefined ? mailroomDataConverter(env) : (options.dataConverter ?? undefined);
  const activities = createSendActivities({
    pool,
    keyring,
    config: {
      ...config,
      imapConnectTimeoutMs: sync.imapConnectTimeoutMs,
      imapSocketTimeoutMs: sync.imapSocketTimeoutMs,
      oauth2RefreshMarginMs: sync.oauth2RefreshMarginMs,
      oauth2TimeoutMs: sync.oauth2TimeoutMs,
    },
    s3:
      options.s3 ??
      new S3Client({
        region: config.s3.region,
        endpoint: config.s3.endpoint,
        forcePathStyle: config.s3.forcePathStyle,
        // Local S3 servers reject the CRC32 checksums newer SDKs send by default.
        ...(config.s3.endpoint
          ? ({ requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } as const)
          : {}),
      }),
    logger: options.logger ?? componentLogger('send-worker'),
  });
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
