// Stores a new IMAP password for an account (clearing "needs attention") and signals a sync
// that is waiting for it, which then resumes at once.
// Usage: printf '%s\n' "$PASSWORD" | tsx starters/update-password.ts --user <email> --account <id> [--no-verify]
// The password comes from $MAILROOM_IMAP_PASSWORD or stdin, never from the command line.
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { imapErrorText } from '../activities/imap';
import { createStore } from '../activities/store';
import { setAccountPassword } from '../activities/sync';
import { loadKeyring } from '../lib/crypto';
import { createPool } from '../lib/db';
import { loadSyncConfig, readPasswordInput } from '../lib/sync-config';
import { connectClient } from '../lib/temporal';
import { passwordUpdatedSignal } from '../workflows/sync-definitions';
import { runningSyncWorkflows } from './reconcile-schedules';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { user: { type: 'string' }, account: { type: 'string' }, 'no-verify': { type: 'boolean', default: false } } });
  if (!values.user || !values.account) throw new Error('--user <owner email> and --account <account id> are required (the password is read from stdin or MAILROOM_IMAP_PASSWORD)');
  const config = loadSyncConfig();
  const keyring = loadKeyring();
  const pool = createPool(config.databaseUrl, { max: 2 });
  try {
    const store = createStore(pool);
    const user = await store.findUserByEmail(values.user);
    const account = user ? await store.getAccount(user.id, values.account) : null;
    if (!user || !account) throw new Error(`User ${values.user} has no account ${values.account}`);
    const password = await readPasswordInput();
    if (!values['no-verify']) {
      const probe = new ImapFlow({ host: account.imapHost, port: account.imapPort, secure: account.imapTls, auth: { user: account.imapUser, pass: password }, logger: false, verifyOnly: true });
      probe.on('error', () => {});
      try {
        await probe.connect();
      } catch (err) {
        throw new Error(`IMAP login to ${account.imapHost} as ${account.imapUser} failed with the new password: ${imapErrorText(err)}. Nothing was changed (pass --no-verify to store it anyway).`);
      }
    }
    await setAccountPassword(store, keyring, user.id, account.id, password);
    console.log(`Password of account ${account.id} (${account.imapUser}@${account.imapHost}) updated${account.status === 'needs_attention' ? '; it no longer needs attention' : ''}`);
    const client = await connectClient();
    try {
      for (const workflowId of await runningSyncWorkflows(client, account.id)) {
        await client.workflow.getHandle(workflowId).signal(passwordUpdatedSignal);
        console.log(`Signalled running sync ${workflowId} to retry with the new password`);
      }
    } finally {
      await client.connection.close();
    }
  } finally {
    await pool.end();
  }
}

main().catch((err) => {
  console.error(`update-password failed: ${(err as Error).message}`);
  process.exit(1);
});
