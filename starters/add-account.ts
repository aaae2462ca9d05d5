// Adds an IMAP account for a user (creating the user if new), checks the login, stores the
// password encrypted, and creates the account's sync Schedule.
//
// Usage: printf '%s\n' "$PASSWORD" | tsx starters/add-account.ts --user owner@example.com \
//          --host imap.example.com [--port 993] [--no-tls] --username login@example.com \
//          [--interval-minutes 15] [--disabled] [--no-verify] [--no-schedule]
// The password comes from $MAILROOM_IMAP_PASSWORD or stdin, never from the command line.
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { addAccountWithPassword } from '../activities/sync';
import { imapErrorText } from '../activities/imap';
import { createStore } from '../activities/store';
import { loadKeyring } from '../lib/crypto';
import { createPool } from '../lib/db';
import { loadSyncConfig, readPasswordInput } from '../lib/sync-config';
import { connectClient } from '../lib/temporal';
import { reconcileAccountSchedule } from './reconcile-schedules';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      user: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'no-tls': { type: 'boolean', default: false },
      username: { type: 'string' },
      'interval-minutes': { type: 'string' },
      disabled: { type: 'boolean', default: false },
      'no-verify': { type: 'boolean', default: false },
      'no-schedule': { type: 'boolean', default: false },
    },
  });
  if (!values.user || !values.host || !values.username) {
    throw new Error('--user <owner email>, --host <imap host> and --username <imap login> are required (the password is read from stdin or MAILROOM_IMAP_PASSWORD)');
  }
  const config = loadSyncConfig();
  const keyring = loadKeyring(); // fail before asking for the password
  const tls = !values['no-tls'];
  const port = values.port ? Number(values.port) : tls ? 993 : 143;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port ${values.port} is not a TCP port`);
  const minutes = values['interval-minutes'] ? Number(values['interval-minutes']) : config.defaultIntervalMinutes;
  if (!(minutes > 0)) throw new Error(`--interval-minutes ${values['interval-minutes']} must be a positive number`);
  const password = await readPasswordInput();

  if (!values['no-verify']) {
    const probe = new ImapFlow({ host: values.host, port, secure: tls, auth: { user: values.username, pass: password }, logger: false, verifyOnly: true });
    probe.on('error', () => {});
    try {
      await probe.connect();
    } catch (err) {
      throw new Error(`IMAP login to ${values.host}:${port} as ${values.username} failed: ${imapErrorText(err)}. Check the settings and password, or pass --no-verify to add the account anyway.`);
    }
  }

  const pool = createPool(config.databaseUrl, { max: 2 });
  try {
    const store = createStore(pool);
    const user = await store.ensureUser(values.user);
    const account = await addAccountWithPassword(
      store,
      keyring,
      user.id,
      { imapHost: values.host, imapPort: port, imapTls: tls, imapUser: values.username, syncIntervalSeconds: Math.round(minutes * 60), enabled: !values.disabled },
      password,
    );
    console.log(`Added account ${account.id} (${account.imapUser}@${account.imapHost}) for ${user.email}, syncing every ${minutes} min${account.enabled ? '' : ' (disabled)'}`);
    if (!values['no-schedule']) {
      const client = await connectClient();
      try {
        const outcome = await reconcileAccountSchedule(client, account, config.taskQueue);
        console.log(`Schedule sync-account-${account.id}: ${outcome}. First sync now: tsx starters/sync-now.ts --user ${user.email} --account ${account.id}`);
      } finally {
        await client.connection.close();
      }
    }
  } finally {
    await pool.end();
  }
}

main().catch((err) => {
  const e = err as Error & { code?: string };
  const hint = e.code === '23505' ? ' (this user already has an account with that host, port and login)' : '';
  console.error(`add-account failed: ${e.message}${hint}`);
  process.exit(1);
});
