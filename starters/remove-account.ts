// Removes an account: deletes its Schedule, cancels a running sync, then deletes the account
// with its folders, messages, sync records and sync errors. Nothing of it can be undone, so it
// asks first (or takes --yes; without a terminal to ask on it refuses), and --dry-run says what
// would go without touching anything.
import { commandMain, confirm, emailAddress, EXIT, YES_OPTION } from '../lib/cli';
import { connectClient } from '../lib/temporal';
import { ACCOUNT_OPTIONS, accountIdOption, findAccount, openAccountDb } from './account-common';
import { deleteAccountSchedule, runningSyncWorkflows, stopAccountWatcher } from '../lib/account-sync';
import { syncScheduleId } from '../contracts/sync';

const spec = {
  name: 'account:remove',
  summary:
    'Remove an account with everything synced from it: its Schedule, a running sync (cancelled), its folders, messages and sync records. Asks first.',
  options: {
    ...ACCOUNT_OPTIONS,
    yes: YES_OPTION,
    'dry-run': {
      type: 'boolean',
      description: 'say what would be removed (messages, Schedule, running syncs), remove nothing',
    },
  },
  examples: [
    'npm run account:remove -- --user owner@example.com --account 3f1c... --dry-run',
    'npm run account:remove -- --user owner@example.com --account 3f1c... --yes',
  ],
  notes: [
    'Without --yes it asks on the terminal; when stdin is not a terminal (a script, cron) it refuses with exit 2 and removes nothing.',
  ],
} as const;

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const accountId = accountIdOption(values.account);
  const what = `Remove account ${accountId} of ${owner} with every message synced from it`;
  // No terminal to ask on and no --yes: refuse before connecting to anything.
  if (!values['dry-run'] && !values.yes && !process.stdin.isTTY) await confirm(spec.name, what, false);
  const db = openAccountDb();
  try {
    const { user, account } = await findAccount(db.store, owner, accountId, db.where);
    const messages = (await db.store.listAccounts(user.id)).find((a) => a.id === account.id)?.messageCount ?? 0;
    const client = await connectClient();
    try {
      const running = await runningSyncWorkflows(client, account.id);
      const label = `account ${account.id} (${account.imapUser}@${account.imapHost}) of ${user.email}`;
      if (values['dry-run']) {
        console.log(`Would remove ${label} from ${db.where}:`);
        console.log(`  ${messages} stored messages, its folders, sync records and sync errors`);
        console.log(`  schedule ${syncScheduleId(account.id)} (if there is one)`);
        console.log(running.length ? `  cancel running syncs: ${running.join(', ')}` : '  no sync running');
        console.log('Nothing was removed (--dry-run).');
        return EXIT.done;
      }
      await confirm(
        spec.name,
        `Remove ${label} with its ${messages} stored messages from ${db.where}${running.length ? `, cancelling ${running.length} running sync(s)` : ''}`,
        values.yes,
      );
      // Schedule and watcher first, so no new sync starts while we clean up.
      const hadSchedule = await deleteAccountSchedule(client, account.id);
      if (await stopAccountWatcher(client, account.id)) console.log(`Stopped IDLE watcher watch-account-${account.id}`);
      // Listed again: a scheduled sync may have started while the operator read the question.
      for (const workflowId of await runningSyncWorkflows(client, account.id)) {
        await client.workflow.getHandle(workflowId).cancel();
        console.log(`Cancelled running sync ${workflowId}`);
      }
      console.log(hadSchedule ? `Deleted schedule ${syncScheduleId(account.id)}` : 'No schedule to delete');
    } finally {
      await client.connection.close();
    }
    await db.store.removeAccount(user.id, account.id);
    console.log(
      `Removed account ${account.id} (${account.imapUser}@${account.imapHost}) of ${user.email} with its ${messages} stored messages`,
    );
  } finally {
    await db.close();
  }
  return EXIT.done;
});
