// Applies pending schema migrations to DATABASE_URL (safe to re-run; see lib/storage/migrate.ts).
// Usage: node --import tsx scripts/migrate.ts (npm run db:setup also creates the database first)
import { createPool, redactUrl } from '../lib/storage/db';
import { migrate } from '../lib/storage/migrate';
import { backfillSearchIndex } from '../lib/sync-store/search-backfill';
import { loadSyncConfig } from '../lib/config/sync';

async function main(): Promise<void> {
  const config = loadSyncConfig();
  const pool = createPool(config.databaseUrl, { max: 1 });
  try {
    const result = await migrate(pool, { log: (line) => console.log(line) });
    // Messages stored before migrations/003_search.sql, indexed for search in short batches.
    await backfillSearchIndex(pool, { log: (line) => console.log(line) });
    console.log(
      `${redactUrl(config.databaseUrl)}: ${result.applied.length} migration(s) applied, ${result.alreadyApplied} already present`,
    );
  } finally {
    await pool.end();
  }
}

main().catch((err) => {
  console.error(
    `migrate failed: ${(err as Error).message}\nCheck DATABASE_URL (create the database with: npm run db:setup).`,
  );
  process.exit(1);
});
