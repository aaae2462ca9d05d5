// Enables or disables an account and changes its sync interval, then brings its Schedule in
// line (paused while disabled, the new interval) and starts or stops its IDLE watcher at once.
// Also the account's new-message events (docs/account-sync.md "New-message events"): on, off,
// or the worker's default, and a webhook URL of its own. And the folders its IDLE watcher watches
// besides INBOX (the watcher takes a change within a heartbeat, about 15 s).
import { commandMain, emailAddress, EXIT, oneOf, positiveNumber, UsageError } from '../lib/cli';
import { MAX_WATCHED_FOLDERS, parseWatchedFolders } from '../lib/imap/watched-folders';
import { webhookUrlProblem } from '../lib/config/sync';
import { webhookUrlLabel } from '../lib/message-events/webhook-client';
import { connectClient } from '../lib/temporal';
import { ACCOUNT_OPTIONS, accountIdOption, findAccount, openAccountDb } from './account-common';
import { reconcileAccount, watchSettings } from '../lib/account-sync';
import { describeSmtp, SMTP_OPTIONS, smtpSettingsFromOptions, storeSmtpSettings } from './smtp-options';

const spec = {
  name: 'account:set',
  summary:
    'Enable or disable an account, change its sync interval (its Schedule follows at once, paused while disabled), or set the SMTP server it sends through.',
  options: {
    ...ACCOUNT_OPTIONS,
    enable: { type: 'boolean', description: 'enable the account (its Schedule runs again)' },
    disable: { type: 'boolean', description: 'disable the account (its Schedule is paused; a running sync finishes)' },
    'interval-minutes': { type: 'string', value: '<minutes>', description: 'new sync interval' },
    events: {
      type: 'string',
      value: '<on|off|default>',
      description: 'new-message events for this account (default: as SYNC_EVENTS_ENABLED and the worker configure)',
    },
    'webhook-url': {
      type: 'string',
      value: '<url|default>',
      description: "this account's webhook URL instead of SYNC_WEBHOOK_URL (signed with SYNC_WEBHOOK_SECRET)",
    },
    'watch-folders': {
      type: 'string',
      value: '<folders|none>',
      description: `folders the IDLE watcher watches besides INBOX, comma-separated as the server names them (at most ${MAX_WATCHED_FOLDERS}; pushed where the server offers NOTIFY, else polled every SYNC_WATCH_FOLDER_POLL_SECONDS); none: INBOX only`,
    },
    ...SMTP_OPTIONS,
    'no-sent-folder': { type: 'boolean', description: 'keep no copy of sent messages (the provider keeps its own)' },
  },
  examples: [
    'npm run account:set -- --user owner@example.com --account 3f1c... --disable',
    'npm run account:set -- --user owner@example.com --account 3f1c... --enable --interval-minutes 5',
    'npm run account:set -- --user owner@example.com --account 3f1c... --events on --webhook-url https://crm.example.com/hooks/mail',
    'npm run account:set -- --user owner@example.com --account 3f1c... --watch-folders "Archive,Lists.dev"',
    'npm run account:set -- --user owner@example.com --account 3f1c... --smtp-host smtp.example.com --smtp-port 587 --sent-folder Sent',
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
  const events = values.events !== undefined ? oneOf('events', values.events, ['on', 'off', 'default']) : undefined;
  const webhookUrl = values['webhook-url']?.trim();
  if (webhookUrl !== undefined && webhookUrl !== 'default') {
    const problem = webhookUrlProblem(webhookUrl);
    if (problem) throw new UsageError(`--webhook-url ${problem}`);
  }
  const eventsChange = events !== undefined || webhookUrl !== undefined;
  let watchFolders: string[] | undefined;
  if (values['watch-folders'] !== undefined) {
    try {
      watchFolders = parseWatchedFolders(values['watch-folders']);
    } catch (err) {
      throw new UsageError(`--watch-folders: ${(err as Error).message}`);
    }
  }
  const smtp = smtpSettingsFromOptions(values);
  const syncChange = values.enable || values.disable || minutes !== undefined;
  if (!syncChange && !eventsChange && !smtp && !watchFolders)
    throw new UsageError(
      'nothing to change: give --enable, --disable, --interval-minutes, --events, --webhook-url, --watch-folders, or the sending settings (--smtp-host ...)',
    );
  const db = openAccountDb();
  try {
    const { user } = await findAccount(db.store, owner, accountId, db.where);
    if (eventsChange) {
      const settings = await db.store.updateEventSettings(user.id, accountId, {
        eventsEnabled: events === undefined ? undefined : events === 'default' ? null : events === 'on',
        webhookUrl: webhookUrl === undefined ? undefined : webhookUrl === 'default' ? null : webhookUrl,
      });
      if (!settings) throw new Error(`${owner} has no account ${accountId}`);
      // The URL without its query: it may hold a token of the receiver's.
      console.log(
        `Account ${accountId}: new-message events ${settings.eventsEnabled === null ? 'as the worker configures' : settings.eventsEnabled ? 'on' : 'off'}, webhook ${settings.webhookUrl ? webhookUrlLabel(settings.webhookUrl) : 'SYNC_WEBHOOK_URL (if set)'}`,
      );
    }
    if (watchFolders) {
      const updated = await db.store.setWatchedFolders(user.id, accountId, watchFolders);
      if (!updated) throw new Error(`${owner} has no account ${accountId}`);
      console.log(
        `Account ${accountId}: the IDLE watcher watches INBOX${watchFolders.length ? ` and ${watchFolders.map((f) => JSON.stringify(f)).join(', ')} (pushed where the server offers NOTIFY, else looked at every ${db.config.watchFolderPollSeconds} s)` : ' only'}${db.config.watch ? '' : ' once watchers are on (SYNC_WATCH is false)'}`,
      );
    }
    if (smtp) {
      const saved = await storeSmtpSettings(db, user.id, accountId, smtp);
      console.log(`Account ${accountId} sends through ${describeSmtp(saved)}`);
    }
    if (!syncChange) return EXIT.done;
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
