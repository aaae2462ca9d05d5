// Runs the account-sync worker as its own process: tsx workers/sync-main.ts
// Configuration: Temporal via TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE (lib/temporal.ts), the rest
// via DATABASE_URL, MAILROOM_SECRET_KEYS and SYNC_* (lib/sync-config.ts, docs/account-sync.md).
import { requireCodecChoice, UNENCRYPTED_WARNING } from '../lib/data-converter';
import { componentLogger } from '../lib/logger';
import { connectWorker, installWorkerRuntime } from '../lib/temporal';
import { loadSyncConfig } from '../lib/sync-config';
import { createSyncWorker } from './sync';

const log = componentLogger('sync-main');

async function main(): Promise<void> {
  const config = loadSyncConfig();
  // Unset or malformed MAILROOM_CODEC_KEYS stops the worker here, naming the variable.
  if (requireCodecChoice('the sync worker') === 'plaintext') log.warn(UNENCRYPTED_WARNING);
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
