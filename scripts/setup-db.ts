// Creates the mailroom database if it is missing, then applies migrations. Safe to re-run.
// Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailroom npm run db:setup
import { createPool, ensureDatabase, redactUrl } from '../lib/storage/db';
import { migrate } from '../lib/storage/migrate';
import { backfillSearchIndex } from '../lib/sync-store/search-backfill';
import { loadSyncConfig } from '../lib/config/sync';

async function main(): Promise<void> {
  const config = loadSyncConfig();
  const created = await ensureDatabase(config.databaseUrl);
  console.log(`${redactUrl(config.databaseUrl)}: ${created ? 'database created' : 'database exists'}`);
  const pool = createPool(config.databaseUrl, { max: 1 });
  try {
    const result = await migrate(pool, { log: (line) => console.log(line) });
    console.log(`${result.applied.length} migration(s) applied, ${result.alreadyApplied} already present`);
    // Messages stored before migrations/003_search.sql, indexed for search in short batches.
    await backfillSearchIndex(pool, { log: (line) => console.log(line) });
  } finally {
    await pool.end();
  }
}

main().catch((err) => {
  console.error(
    `setup-db failed: ${(err as Error).message}\nIs PostgreSQL running, and may the DATABASE_URL user create databases?`,
  );
  process.exit(1);
});
