// Enables or disables an account and changes its sync interval, then brings its Schedule in
// line (paused while disabled, the new interval) and starts or stops its IDLE watcher at once.
import { commandMain, emailAddress, EXIT, positiveNumber, UsageError } from '../lib/cli';
import { connectClient } from '../lib/temporal';
import { ACCOUNT_OPTIONS, accountIdOption, findAccount, openAccountDb } from './account-common';
import { reconcileAccount, watchSettings } from '../lib/account-sync';

const spec = {
  name: 'account:set',
  summary:
    'Enable or disable an account, or change its sync interval; its Schedule follows at once (paused while disabled).',
  options: {
    ...ACCOUNT_OPTIONS,
    enable: { type: 'boolean', description: 'enable the account (its Schedule runs again)' },
    disable: { type: 'boolean', description: 'disable the account (its Schedule is paused; a running sync finishes)' },
    'interval-minutes': { type: 'string', value: '<minutes>', description: 'new sync interval' },
  },
  examples: [
    'npm run account:set -- --user owner@example.com --account 3f1c... --disable',
    'npm run account:set -- --user owner@example.com --account 3f1c... --enable --interval-minutes 5',
  ],
} as const;

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const accountId = accountIdOption(values.account);
  if (values.enable && values.disable) throw new UsageError('give --enable or --disable, not both');
  const minutes =
    values['interval-minutes'] !== undefined
      ? positiveNumber('interval-minutes', values['interval-minutes'])
      : undefined;
  if (!values.enable && !values.disable && minutes === undefined)
    throw new UsageError('nothing to change: give --enable, --disable or --interval-minutes');
  const db = openAccountDb();
  try {
    const { user } = await findAccount(db.store, owner, accountId, db.where);
    const account = await db.store.updateAccountSettings(user.id, accountId, {
      enabled: values.enable ? true : values.disable ? false : undefined,
      syncIntervalSeconds: minutes !== undefined ? Math.max(1, Math.round(minutes * 60)) : undefined,
    });
    if (!account) throw new Error(`${owner} has no account ${accountId}`);
    console.log(
      `Account ${account.id} (${account.imapUser}@${account.imapHost}): ${account.enabled ? 'enabled' : 'disabled'}, every ${account.syncIntervalSeconds / 60} min`,
    );
    const client = await connectClient();
    try {
      const outcome = await reconcileAccount(client, db.store, account, db.config.taskQueue, watchSettings(db.config));
      console.log(`Schedule sync-account-${account.id}: ${outcome.schedule}`);
      if (outcome.watcher && outcome.watcher !== 'absent')
        console.log(`IDLE watcher watch-account-${account.id}: ${outcome.watcher}`);
    } finally {
      await client.connection.close();
    }
  } finally {
    await db.close();
  }
  return EXIT.done;
});
