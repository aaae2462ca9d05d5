// Removes an account: deletes its Schedule, cancels a running sync, then deletes the account
// with its folders, messages, sync records and sync errors.
import { commandMain, emailAddress, EXIT } from '../lib/cli';
import { connectClient } from '../lib/temporal';
import { ACCOUNT_OPTIONS, accountIdOption, findAccount, openAccountDb } from './account-common';
import { deleteAccountSchedule, runningSyncWorkflows } from './reconcile-schedules';

const spec = {
  name: 'account:remove',
  summary:
    'Remove an account with everything synced from it: its Schedule, a running sync (cancelled), its folders, messages and sync records.',
  options: {
    ...ACCOUNT_OPTIONS,
  },
  examples: ['npm run account:remove -- --user owner@example.com --account 3f1c...'],
} as const;

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const accountId = accountIdOption(values.account);
  const db = openAccountDb();
  try {
    const { user, account } = await findAccount(db.store, owner, accountId);
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
    await db.store.removeAccount(user.id, account.id);
    console.log(
      `Removed account ${account.id} (${account.imapUser}@${account.imapHost}) of ${user.email} with its stored messages`,
    );
  } finally {
    await db.close();
  }
  return EXIT.done;
});
