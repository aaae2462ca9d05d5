// Runs the account-sync worker as its own process: npm run sync:worker
// Configuration: Temporal via TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE (lib/temporal/index.ts), the rest
// via DATABASE_URL, MAILROOM_SECRET_KEYS and SYNC_* (lib/config/sync.ts, docs/account-sync.md);
// Prometheus metrics on METRICS_HOST:SYNC_METRICS_PORT (default 0.0.0.0:8001, port 0 = off).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { codecWarning, requireCodecChoice } from '../lib/temporal/data-converter';
import { componentLogger } from '../lib/observability/logger';
import { connectWorker, installWorkerRuntime } from '../lib/temporal';
import { loadSyncConfig } from '../lib/config/sync';
import { syncRegistry } from '../lib/observability/sync-metrics';
import { createSyncWorker } from './sync';
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
    'METRICS_HOST, SYNC_METRICS_PORT                        Prometheus /metrics (default 0.0.0.0:8001, port 0 = off)',
    'SYNC_*                                                 batches, timeouts, limits (docs/account-sync.md)',
  ],
  notes: ['Logs are JSON lines on stdout (LOG_LEVEL, LOG_ADDRESSES).'],
  examples: ['npm run sync:worker'],
};

async function main(): Promise<void> {
  const config = loadSyncConfig();
  // Unset or malformed MAILROOM_CODEC_KEYS stops the worker here, naming the variable.
  const warning = codecWarning(requireCodecChoice('the sync worker'));
  if (warning) log.warn(warning);
  installWorkerRuntime();
  const { connection, namespace } = await connectWorker();
  try {
    const worker = await createSyncWorker(connection, namespace);
    // Prometheus /metrics: skipped messages, refused credentials, accounts needing attention.
    const metrics =
      config.metricsPort > 0 ? await startSyncMetricsServer(config.metricsPort, config.metricsHost) : undefined;
    log.info(
      { taskQueue: config.taskQueue, namespace, metricsHost: config.metricsHost, metricsPort: metrics?.port ?? null },
      'sync worker started',
    );
    try {
      // worker.run() resolves after SIGINT/SIGTERM: in-flight activities are cancelled and
      // resume elsewhere from their last committed checkpoint.
      await worker.run();
    } finally {
      metrics?.server.close();
    }
  } finally {
    await connection.close();
  }
}

/** The sync worker's /metrics on host:port (port 0: any free one, for tests). */
export async function startSyncMetricsServer(port: number, host: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if ((req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: try /metrics\n');
      return;
    }
    syncRegistry
      .metrics()
      .then((text) => res.writeHead(200, { 'content-type': syncRegistry.contentType }).end(text))
      .catch((err: Error) => res.writeHead(500).end(err.message));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(
              `SYNC_METRICS_PORT ${port} on ${host} is in use: set SYNC_METRICS_PORT to a free port (0 turns the metrics server off)`,
            )
          : err,
      ),
    );
    server.listen(port, host, () => resolve());
  });
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
