// Runs the account-sync worker as its own process: tsx workers/sync-main.ts
// Configuration: Temporal via TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE (lib/temporal.ts), the rest
// via DATABASE_URL, MAILROOM_SECRET_KEYS and SYNC_* (lib/sync-config.ts, docs/account-sync.md).
import { mailroomDataConverter, UNENCRYPTED_WARNING } from '../lib/data-converter';
import { componentLogger } from '../lib/logger';
import { connectWorker, installWorkerRuntime } from '../lib/temporal';
import { loadSyncConfig } from '../lib/sync-config';
import { createSyncWorker } from './sync';

const log = componentLogger('sync-main');

async function main(): Promise<void> {
  const config = loadSyncConfig();
  if (!mailroomDataConverter()) log.warn(UNENCRYPTED_WARNING); // a malformed MAILROOM_CODEC_KEYS throws here
  installWorkerRuntime();
  const { connection, namespace } = await connectWorker();
  try {
    const worker = await createSyncWorker(connection, namespace);
    log.info({ taskQueue: config.taskQueue, namespace }, 'sync worker started');
    // worker.run() resolves after SIGINT/SIGTERM: in-flight activities are cancelled and
    // resume elsewhere from their last committed checkpoint.
    await worker.run();
  } finally {
    await connection.close();
  }
}

main().catch((err) => {
  log.error({ err }, `sync worker stopped: ${(err as Error).message}`);
  process.exit(1);
});
