// `npm run temporal:postgres`: the real Temporal server on the local PostgreSQL (4 history
// shards by default) with its Web UI, until Ctrl-C. Workers and starters connect as to the
// dev server: TEMPORAL_ADDRESS=127.0.0.1:7233 (their default).
//
//   DEMO_TEMPORAL_PORT       frontend gRPC port (default 7233; the other services use ports derived from it)
//   DEMO_TEMPORAL_UI_PORT    Web UI port (default 8233)
//   DEMO_STATE_DIR           state directory (default .local/); config and logs go to <it>/temporal-postgres/
//   TEMPORAL_HISTORY_SHARDS  history shards (default 4; fixed once the databases exist)
//   TEMPORAL_PG_URL          PostgreSQL server (default postgres://postgres@127.0.0.1:5432)
//   TEMPORAL_UI_CODEC_ENDPOINT  codec server for the Web UI (npm run codec-server), optional
import { join, resolve } from 'node:path';
import { DEFAULT_HISTORY_SHARDS, DEFAULT_TEMPORAL_DATABASES, startTemporalPostgres } from './stack/temporal-postgres';

const ROOT = resolve(__dirname, '..');
const STATE = join(resolve(process.env.DEMO_STATE_DIR ?? join(ROOT, '.local')), 'temporal-postgres');

async function main() {
  const historyShards = Number(process.env.TEMPORAL_HISTORY_SHARDS ?? DEFAULT_HISTORY_SHARDS);
  if (!Number.isInteger(historyShards) || historyShards < 1)
    throw new Error(`TEMPORAL_HISTORY_SHARDS must be a positive integer, not ${process.env.TEMPORAL_HISTORY_SHARDS}`);
  const logFile = join(STATE, 'temporal-server.log');
  console.log('Starting Temporal on PostgreSQL ...');
  const temporal = await startTemporalPostgres({
    port: Number(process.env.DEMO_TEMPORAL_PORT ?? 7233),
    uiPort: Number(process.env.DEMO_TEMPORAL_UI_PORT ?? 8233),
    historyShards,
    databaseUrl: process.env.TEMPORAL_PG_URL || undefined,
    stateDir: STATE,
    logFile,
    codecEndpoint: process.env.TEMPORAL_UI_CODEC_ENDPOINT || undefined,
  });
  console.log(`
Temporal server on PostgreSQL ${temporal.reused ? '(already running, reused)' : 'running'}
  frontend        ${temporal.address}   (TEMPORAL_ADDRESS for workers and starters)
  Web UI          ${temporal.uiUrl}
  history shards  ${historyShards}
  databases       ${DEFAULT_TEMPORAL_DATABASES.default}, ${DEFAULT_TEMPORAL_DATABASES.visibility}
  logs, config    ${STATE}
Ctrl-C stops it.`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping Temporal ...`);
    await temporal.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Keeps the event loop alive until a signal arrives (the servers are child processes).
  setInterval(() => {}, 1 << 30);
}

main().catch((err) => {
  console.error(`temporal:postgres failed: ${(err as Error).message}`);
  process.exit(1);
});
