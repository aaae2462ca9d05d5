// Runs the account-sync worker as its own process: npm run sync:worker
// Configuration: Temporal via TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE (lib/temporal/index.ts), the rest
// via DATABASE_URL, MAILROOM_SECRET_KEYS and SYNC_* (lib/config/sync.ts, docs/account-sync.md);
// Prometheus /metrics and /health on METRICS_HOST:SYNC_METRICS_PORT (default 0.0.0.0:8001, port 0 = off).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { codecWarning, requireCodecChoice } from '../lib/temporal/data-converter';
import { componentLogger } from '../lib/observability/logger';
import { connectWorker, installWorkerRuntime } from '../lib/temporal';
import { loadSyncConfig } from '../lib/config/sync';
import { createPool } from '../lib/storage/db';
import { syncRegistry } from '../lib/observability/sync-metrics';
import { createSyncWorker } from './sync';
import { createSendWorker } from './send';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowSource } from '../lib/temporal/workflow-source';
import { loadSendConfig } from '../lib/config/send';
import { type HealthCheck, type HealthReport, listen, runChecks } from './http';
import { serviceArgs, type ServiceSpec } from '../lib/cli';

const log = componentLogger('sync-main');

const SERVICE: ServiceSpec = {
  name: 'sync:worker',
  summary:
    'Runs the account-sync worker: syncs IMAP accounts into PostgreSQL (one syncAccount workflow per account, on its Schedule) until SIGTERM or SIGINT; a sync cut short resumes from its last checkpoint.',
  environment: [
    'TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, SYNC_TASK_QUEUE   Temporal (localhost:7233, default, mailroom-sync)',
    'DATABASE_URL                                           the accounts and messages (PostgreSQL)',
    'MAILROOM_SECRET_KEYS                                   decrypts stored passwords and tokens (required)',
    'MAILROOM_CODEC_KEYS                                    payload keys (required; none = plaintext on purpose)',
    'METRICS_HOST, SYNC_METRICS_PORT                        /metrics and /health (default 0.0.0.0:8001, port 0 = off)',
    'SYNC_*                                                 batches, timeouts, limits (docs/account-sync.md)',
    'SYNC_EVENTS_*, SYNC_WEBHOOK_*                          new-message events: workflow, signed webhook (docs/account-sync.md)',
    'SEND_TASK_QUEUE, SEND_*                                the send worker beside it (mailroom-send; docs/configuration.md)',
    'AWS_REGION, AWS_ENDPOINT_URL_S3                        attachments kept in S3',
  ],
  notes: ['Logs are JSON lines on stdout (LOG_LEVEL, LOG_ADDRESSES).'],
  examples: ['npm run sync:worker'],
};

async function main(): Promise<void> {
  const config = loadSyncConfig();
  // Fails at start, naming the variable, when a SEND_* value is bad.
  const sendConfig = loadSendConfig();
  // Unset or malformed MAILROOM_CODEC_KEYS stops the worker here, naming the variable.
  const warning = codecWarning(requireCodecChoice('the sync worker'));
  if (warning) log.warn(warning);
  installWorkerRuntime();
  const { connection, namespace } = await connectWorker();
  try {
    // One pool for the activities and the health check, so /health asks the database the worker uses.
    const pool = createPool(config.databaseUrl, { max: config.databasePoolSize, allowExitOnIdle: true });
    // One workflow bundle for both workers (from the sources, bundling takes seconds).
    const source = workflowSource('sync');
    const workflowBundle =
      source.workflowBundle ?? (await bundleWorkflowCode({ workflowsPath: source.workflowsPath! }));
    const worker = await createSyncWorker(connection, namespace, { pool, workflowBundle });
    // Sending (the sendMessage workflow) on its own task queue, in the same process and pool.
    const sendWorker = await createSendWorker(connection, namespace, { pool, workflowBundle });
    // Prometheus /metrics: skipped messages, refused credentials, accounts needing attention;
    // /health: the database answers and the worker polls its task queue.
    const metrics =
      config.metricsPort > 0
        ? await startSyncMetricsServer(config.metricsPort, config.metricsHost, {
            database: async () => void (await pool.query('SELECT 1')),
            worker: async () => {
              const state = worker.getState();
              if (state !== 'RUNNING') throw new Error(`worker is ${state}`);
            },
            sendWorker: async () => {
              const state = sendWorker.getState();
              if (state !== 'RUNNING') throw new Error(`send worker is ${state}`);
            },
          })
        : undefined;
    log.info(
      {
        taskQueue: config.taskQueue,
        sendTaskQueue: sendConfig.taskQueue,
        namespace,
        metricsHost: config.metricsHost,
        metricsPort: metrics?.port ?? null,
      },
      'sync worker started',
    );
    try {
      // worker.run() resolves after SIGINT/SIGTERM: in-flight activities are cancelled and
      // resume elsewhere from their last committed checkpoint.
      // Both stop on SIGINT/SIGTERM (the runtime's shutdown signals).
      await Promise.all([worker.run(), sendWorker.run()]);
    } finally {
      metrics?.server.close();
      await pool.end();
    }
  } finally {
    await connection.close();
  }
}

/**
 * The sync worker's operator endpoints on host:port (port 0: any free one, for tests):
 * /metrics (Prometheus) and /health, the inbound worker's JSON report (workers/http.ts) with the
 * checks given: 200 when every one passes, 503 otherwise.
 */
export async function startSyncMetricsServer(
  port: number,
  host: string,
  checks: Record<string, HealthCheck> = {},
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/health') {
      runChecks(checks)
        .then((results) => {
          const healthy = Object.values(results).every((c) => c.ok);
          const body: HealthReport = { status: healthy ? 'healthy' : 'unhealthy', worker: 'sync', checks: results };
          res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        })
        .catch((err: Error) => res.writeHead(500).end(err.message));
      return;
    }
    if (url !== '/metrics') {
      res.writeHead(404).end('not found: try /metrics or /health\n');
      return;
    }
    syncRegistry
      .metrics()
      .then((text) => res.writeHead(200, { 'content-type': syncRegistry.contentType }).end(text))
      .catch((err: Error) => res.writeHead(500).end(err.message));
  });
  await listen(server, port, host, 'SYNC_METRICS_PORT');
  return { server, port: (server.address() as AddressInfo).port };
}

if (require.main === module) {
  const early = serviceArgs(SERVICE);
  if (early !== undefined) process.exitCode = early;
  else
    main().catch((err) => {
      log.error({ err }, `sync worker stopped: ${(err as Error).message}`);
      process.exit(1);
    });
}
