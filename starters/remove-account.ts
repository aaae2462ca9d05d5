// Removes an account: deletes its Schedule, cancels a running sync, then deletes the account
// with its folders, messages and sync records.
// Usage: tsx starters/remove-account.ts --user <email> --account <id>
import { parseArgs } from 'node:util';
import { createStore } from '../activities/store';
import { createPool } from '../lib/db';
import { loadSyncConfig } from '../lib/sync-config';
import { connectClient } from '../lib/temporal';
import { deleteAccountSchedule, runningSyncWorkflows } from './reconcile-schedules';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { user: { type: 'string' }, account: { type: 'string' } } });
  if (!values.user || !values.account) throw new Error('--user <owner email> and --account <account id> are required (see tsx starters/list-accounts.ts)');
  const config = loadSyncConfig();
  const pool = createPool(config.databaseUrl, { max: 2 });
  try {
    const store = createStore(pool);
    const user = await store.findUserByEmail(values.user);
    const account = user ? await store.getAccount(user.id, values.account) : null;
    if (!user || !account) throw new Error(`User ${values.user} has no account ${values.account}`);
    const client = await connectClient();
    try {
      // Schedule first, so no new sync starts while we clean up.
      const hadSchedule = await deleteAccountSchedule(client, account.id);
      for (const workflowId of await runningSyncWorkflows(client, account.id)) {
        await client.workflow.getHandle(workflowId).cancel();
        console.log(`Cancelled running sync ${workflowId}`);
      }
      console.log(hadSchedule ? `Deleted schedule sync-account-${account.id}` : 'No schedule to delete');
    } finally {
      await client.connection.close();
    }
    await store.removeAccount(user.id, account.id);
    console.log(`Removed account ${account.id} (${account.imapUser}@${account.imapHost}) of ${user.email} with its stored messages`);
  } finally {
    await pool.end();
  }
}

main().catch((err) => {
  console.error(`remove-account failed: ${(err as Error).message}`);
  process.exit(1);
});
