// Gives an OAuth2 account a new refresh token (after the old one was revoked or expired:
// invalid_grant), checks it (one token refresh and an IMAP login), stores it encrypted,
// clears "needs attention" and signals a sync that waits for it, which then resumes at once.
// The token comes from $MAILROOM_OAUTH2_REFRESH_TOKEN or stdin, never from the command line.
// --token-url replaces the token endpoint (one stored before https:// was required, or moved).
import { readFileSync } from 'node:fs';
import { oauth2SecretContext, setAccountRefreshToken } from '../lib/sync-store/credentials';
import { decryptSecret, loadKeyring } from '../lib/sync-store/crypto';
import { commandMain, emailAddress, EXIT, UsageError } from '../lib/cli';
import { tokenUrlProblem } from '../lib/imap/oauth2';
import { CLIENT_SECRET_ENV, clientSecretFromEnv, readSecretInput, REFRESH_TOKEN_ENV } from '../lib/config/sync';
import { credentialsUpdatedSignal } from '../contracts/sync';
import {
  ACCOUNT_OPTIONS,
  accountIdOption,
  findAccount,
  firstAccessToken,
  openAccountDb,
  tellRunningSyncs,
  verifyLogin,
} from './account-common';

const spec = {
  name: 'account:token',
  summary: 'Give an OAuth2 account a new refresh token (checked first); a sync waiting for it resumes at once.',
  options: {
    ...ACCOUNT_OPTIONS,
    'client-secret-file': {
      type: 'string',
      value: '<file>',
      description: `a new OAuth2 client secret from this file (or ${CLIENT_SECRET_ENV}); the stored one is kept otherwise`,
    },
    'token-url': {
      type: 'string',
      value: '<url>',
      description:
        'a new OAuth2 token endpoint, https:// (http:// only on 127.0.0.1, localhost, [::1]); the stored one is kept otherwise',
    },
    'no-verify': { type: 'boolean', description: 'store the token without refreshing it and logging in first' },
  },
  examples: [`printf '%s\\n' "$REFRESH_TOKEN" | npm run account:token -- --user owner@example.com --account 3f1c...`],
  notes: [
    `The refresh token is read from ${REFRESH_TOKEN_ENV} or the first line of stdin. Password accounts take a new password instead: npm run account:password.`,
  ],
} as const;

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const accountId = accountIdOption(values.account);
  const newTokenUrl = values['token-url'];
  if (newTokenUrl !== undefined) {
    const problem = tokenUrlProblem(newTokenUrl);
    if (problem) throw new UsageError(`--token-url: ${problem}`);
  }
  const db = openAccountDb();
  try {
    const keyring = loadKeyring();
    const { user, account } = await findAccount(db.store, owner, accountId, db.where);
    if (account.authMethod !== 'oauth2' || !account.oauth2) {
      throw new Error(
        `Account ${account.id} logs in with a password: set a new one with npm run account:password -- --user ${owner} --account ${account.id}`,
      );
    }
    const tokenUrl = newTokenUrl !== undefined ? new URL(newTokenUrl).toString() : account.oauth2.tokenUrl;
    // A token URL stored before https:// was required: the sync refuses it, so must this.
    const urlProblem = tokenUrlProblem(tokenUrl);
    if (urlProblem)
      throw new Error(
        `account ${account.id}: its OAuth2 token URL (oauth2_token_url) is refused: ${urlProblem}. Give one with --token-url.`,
      );
    const newSecret = values['client-secret-file']
      ? readFileSync(values['client-secret-file'], 'utf8').trim()
      : clientSecretFromEnv();
    let refreshToken = await readSecretInput({ envName: REFRESH_TOKEN_ENV, what: 'OAuth2 refresh token' });
    let accessToken: { token: string; expiresAt: Date } | undefined;
    if (!values['no-verify']) {
      const stored = (await db.store.getAccountSecret(user.id, account.id))?.oauth2;
      const clientSecret =
        newSecret ??
        (stored?.clientSecretEncrypted
          ? decryptSecret(keyring, stored.clientSecretEncrypted, oauth2SecretContext(account.id, 'client_secret'))
          : null);
      const t = await firstAccessToken(
        { ...account.oauth2, tokenUrl, clientSecret },
        refreshToken,
        db.config.oauth2TimeoutMs,
      );
      if (t.refreshToken) refreshToken = t.refreshToken; // rotated by the provider
      await verifyLogin(
        { host: account.imapHost, port: account.imapPort, tls: account.imapTls, user: account.imapUser },
        { accessToken: t.accessToken },
        '--no-verify',
      );
      accessToken = { token: t.accessToken, expiresAt: t.expiresAt };
    }
    await setAccountRefreshToken(db.store, keyring, user.id, account.id, {
      refreshToken,
      accessToken,
      ...(newTokenUrl !== undefined ? { tokenUrl } : {}),
      ...(newSecret !== undefined ? { clientSecret: newSecret } : {}),
    });
    console.log(
      `Refresh token of account ${account.id} (${account.imapUser}@${account.imapHost}) updated${account.status === 'needs_attention' ? '; it no longer needs attention' : ''}`,
    );
    await tellRunningSyncs(account.id, credentialsUpdatedSignal, 'token');
  } finally {
    await db.close();
  }
  return EXIT.done;
});
