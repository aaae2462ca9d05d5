// Makes Temporal match the accounts in PostgreSQL: one Schedule per account (id
// sync-account-<accountId>) starting syncAccount every sync_interval_seconds with overlap policy
// SKIP, paused while the account is disabled, deleted once the account is gone; and, with
// SYNC_WATCH on (the default), one IMAP IDLE watcher per enabled account (watch-account-<accountId>),
// stopped when the account is disabled or gone. Idempotent: run it after account changes, from
// cron, or at deploy; running it twice changes nothing. The logic is in lib/account-sync/.
import { createStore } from '../lib/sync-store';
import { commandMain, emailAddress, EXIT, type ExitCode, type OptionValues } from '../lib/cli';
import { createPool } from '../lib/storage/db';
import { loadSyncConfig } from '../lib/config/sync';
import { connectClient } from '../lib/temporal';
import { reconcileSchedules, watchSettings } from '../lib/account-sync';

// The helpers other starters, scripts and tests have imported from here.
export {
  deleteAccountSchedule,
  desiredSchedule,
  reconcileAccountSchedule,
  reconcileSchedules,
  runningSyncWorkflows,
  type ReconcileSummary,
} from '../lib/account-sync';

const spec = {
  name: 'sync:reconcile',
  summary:
    'Make the Temporal Schedules match the accounts in PostgreSQL: one per account at its interval, paused while disabled, deleted once the account is gone; and one IMAP IDLE watcher per enabled account (SYNC_WATCH). Idempotent.',
  options: {
    user: {
      type: 'string',
      value: '<email>',
      description: "only this user's accounts (orphan Schedules are then left alone)",
    },
    'dry-run': { type: 'boolean', description: 'say what would change, change nothing' },
  },
  examples: ['npm run sync:reconcile', 'npm run sync:reconcile -- --dry-run'],
} as const;

async function main(values: OptionValues<typeof spec.options>): Promise<ExitCode> {
  const only = values.user !== undefined ? emailAddress('user', values.user) : undefined;
  const config = loadSyncConfig();
  const pool = createPool(config.databaseUrl, { max: 2 });
  const store = createStore(pool);
  try {
    let userId: string | undefined;
    if (only) {
      const user = await store.findUserByEmail(only);
      if (!user) throw new Error(`No mailroom user ${only}; list the accounts with: npm run account:list`);
      userId = user.id;
    }
    const client = await connectClient();
    try {
      const summary = await reconcileSchedules({
        client,
        store,
        taskQueue: config.taskQueue,
        userId,
        dryRun: values['dry-run'],
        watch: watchSettings(config),
      });
      const prefix = values['dry-run'] ? 'would be ' : '';
      for (const [what, ids] of Object.entries(summary)) {
        for (const id of ids) console.log(`${prefix}${what}: ${id}`);
      }
      const counts = Object.entries(summary).map(([k, v]) => `${v.length} ${prefix}${k}`);
      console.log(`Schedules reconciled (task queue ${config.taskQueue}): ${counts.join(', ')}`);
    } finally {
      await client.connection.close();
    }
  } finally {
    await pool.end();
  }
  return EXIT.done;
}

// Also imported (the schedule helpers) by the other starters: run only as a script.
if (require.main === module) commandMain(spec, main);
