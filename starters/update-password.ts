// Stores a new IMAP password for an account (clearing "needs attention") and signals a sync
// that waits for it, which then resumes at once. The password comes from
// $MAILROOM_IMAP_PASSWORD or stdin, never from the command line.
import { setAccountPassword } from '../lib/sync-store/credentials';
import { commandMain, emailAddress, EXIT } from '../lib/cli';
import { loadKeyring } from '../lib/sync-store/crypto';
import { readPasswordInput } from '../lib/config/sync';
import { passwordUpdatedSignal } from '../contracts/sync';
import {
  ACCOUNT_OPTIONS,
  accountIdOption,
  findAccount,
  openAccountDb,
  tellRunningSyncs,
  verifyLogin,
} from './account-common';

const spec = {
  name: 'account:password',
  summary: 'Give a password account a new IMAP password (checked first); a sync waiting for it resumes at once.',
  options: {
    ...ACCOUNT_OPTIONS,
    'no-verify': { type: 'boolean', description: 'store the password without checking the login first' },
  },
  examples: [`printf '%s\\n' "$PASSWORD" | npm run account:password -- --user owner@example.com --account 3f1c...`],
  notes: [
    'The password is read from MAILROOM_IMAP_PASSWORD or the first line of stdin. OAuth2 accounts take a new refresh token instead: npm run account:token.',
  ],
} as const;

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const accountId = accountIdOption(values.account);
  const db = openAccountDb();
  try {
    const keyring = loadKeyring();
    const { user, account } = await findAccount(db.store, owner, accountId, db.where);
    if (account.authMethod !== 'password')
      throw new Error(
        `Account ${account.id} logs in with OAuth2: give it a new refresh token with npm run account:token -- --user ${owner} --account ${account.id}`,
      );
    const password = await readPasswordInput();
    if (!values['no-verify'])
      await verifyLogin(
        { host: account.imapHost, port: account.imapPort, tls: account.imapTls, user: account.imapUser },
        { password },
        '--no-verify',
      );
    await setAccountPassword(db.store, keyring, user.id, account.id, password);
    console.log(
      `Password of account ${account.id} (${account.imapUser}@${account.imapHost}) updated${account.status === 'needs_attention' ? '; it no longer needs attention' : ''}`,
    );
    await tellRunningSyncs(account.id, passwordUpdatedSignal, 'password');
  } finally {
    await db.close();
  }
  return EXIT.done;
});
