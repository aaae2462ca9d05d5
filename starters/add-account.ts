// Adds an IMAP account for a user (creating the user if new): checks the login, stores the
// password, or the OAuth2 refresh token and client secret, encrypted (lib/sync-store/crypto.ts), and
// creates the account's sync Schedule. Secrets come from the environment or stdin, never from
// the command line (visible to every local user in `ps`).
import { readFileSync } from 'node:fs';
import { addAccountWithOAuth2, addAccountWithPassword } from '../lib/sync-store/credentials';
import { commandMain, emailAddress, EXIT, oneOf, positiveNumber, tcpPort, UsageError } from '../lib/cli';
import { loadKeyring } from '../lib/sync-store/crypto';
import { OAUTH2_PRESET_NAMES, OAUTH2_PRESETS, presetTokenUrl, type OAuth2PresetName } from '../lib/imap/oauth2-presets';
import { tokenUrlProblem } from '../lib/imap/oauth2';
import {
  CLIENT_SECRET_ENV,
  clientSecretFromEnv,
  readPasswordInput,
  readSecretInput,
  REFRESH_TOKEN_ENV,
} from '../lib/config/sync';
import { connectClient } from '../lib/temporal';
import { firstAccessToken, openAccountDb, verifyLogin } from './account-common';
import { reconcileAccount, watchSettings } from '../lib/account-sync';
import { describeSmtp, SMTP_OPTIONS, smtpSettingsFromOptions, storeSmtpSettings } from './smtp-options';

const spec = {
  name: 'account:add',
  summary:
    'Add an IMAP account for a user: check the login, store the password or OAuth2 refresh token encrypted, create its sync Schedule. The password (or refresh token) is read from stdin or the environment, never from the command line.',
  options: {
    user: {
      type: 'string',
      value: '<email>',
      description: 'the owner (a mailroom user, created if new)',
      required: true,
    },
    username: {
      type: 'string',
      value: '<login>',
      description: 'the IMAP login (Gmail, Microsoft 365: the mailbox address)',
      required: true,
    },
    host: {
      type: 'string',
      value: '<host>',
      description: 'IMAP server (with --oauth2 google|microsoft: their server)',
    },
    port: { type: 'string', value: '<port>', description: 'IMAP port (default 993, or 143 with --no-tls)' },
    'no-tls': { type: 'boolean', description: 'plaintext IMAP, for a server on a trusted network only' },
    oauth2: {
      type: 'string',
      value: '<google|microsoft|custom>',
      description: `log in with OAuth2 (OAUTHBEARER/XOAUTH2) instead of a password; the refresh token is read from stdin or ${REFRESH_TOKEN_ENV}`,
    },
    'client-id': {
      type: 'string',
      value: '<id>',
      description: 'OAuth2 client (application) id; required with --oauth2',
    },
    'client-secret-file': {
      type: 'string',
      value: '<file>',
      description: `file holding the OAuth2 client secret (or set ${CLIENT_SECRET_ENV}; public clients have none)`,
    },
    'token-url': {
      type: 'string',
      value: '<url>',
      description:
        "OAuth2 token endpoint, https:// (http:// only on 127.0.0.1, localhost, [::1]) (default: the preset's; required with --oauth2 custom)",
    },
    scopes: { type: 'string', value: '<scopes>', description: "space-separated OAuth2 scopes (default: the preset's)" },
    tenant: {
      type: 'string',
      value: '<tenant>',
      description: 'Microsoft tenant id or domain, with --oauth2 microsoft',
      default: 'common',
    },
    'interval-minutes': {
      type: 'string',
      value: '<minutes>',
      description: 'sync interval (default SYNC_DEFAULT_INTERVAL_MINUTES, 15)',
    },
    disabled: { type: 'boolean', description: 'add it disabled (its Schedule paused)' },
    'no-verify': { type: 'boolean', description: 'store the credential without checking the login first' },
    'no-schedule': {
      type: 'boolean',
      description: 'do not create the Schedule now (npm run sync:reconcile does it later)',
    },
    ...SMTP_OPTIONS,
  },
  examples: [
    `printf '%s\\n' "$PASSWORD" | npm run account:add -- --user owner@example.com --host imap.example.com --username owner@example.com`,
    `printf '%s\\n' "$REFRESH_TOKEN" | MAILROOM_OAUTH2_CLIENT_SECRET=... npm run account:add -- --user owner@example.com --username owner@gmail.com --oauth2 google --client-id 123.apps.googleusercontent.com`,
    `printf '%s\\n' "$REFRESH_TOKEN" | npm run account:add -- --user owner@example.com --username owner@contoso.com --oauth2 microsoft --tenant contoso.com --client-id 00000000-0000-0000-0000-000000000000`,
    `printf '%s\\n' "$PASSWORD" | npm run account:add -- --user owner@example.com --host imap.example.com --username owner@example.com --smtp-host smtp.example.com --sent-folder Sent`,
  ],
  notes: [
    `OAuth2 presets: ${OAUTH2_PRESET_NAMES.map((n) => `${n} (${OAUTH2_PRESETS[n].imapHost}, scopes "${OAUTH2_PRESETS[n].scopes}")`).join('; ')}. custom needs --host, --token-url and --client-id.`,
    'Sending (docs/sending.md): --smtp-host lets the account send with its own login (password or OAuth2 token); without it the account only syncs (add it later with npm run account:set).',
    'Environment: DATABASE_URL, MAILROOM_SECRET_KEYS, TEMPORAL_ADDRESS (docs/account-sync.md).',
  ],
} as const;

/** A token endpoint: https:// (http:// on loopback only), checked before anything is asked or stored. */
function tokenUrlOption(value: string): string {
  const problem = tokenUrlProblem(value);
  if (problem) throw new UsageError(`--token-url: ${problem}`);
  return new URL(value).toString();
}

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const preset =
    values.oauth2 !== undefined
      ? oneOf('oauth2', values.oauth2, [...OAUTH2_PRESET_NAMES, 'custom'] as const)
      : undefined;
  const known = preset && preset !== 'custom' ? OAUTH2_PRESETS[preset as OAuth2PresetName] : undefined;
  const tls = !values['no-tls'];
  const host = values.host ?? known?.imapHost;
  if (!host)
    throw new UsageError(
      preset === 'custom'
        ? '--host is required with --oauth2 custom'
        : '--host is required (or --oauth2 google|microsoft)',
    );
  const port =
    values.port !== undefined
      ? tcpPort('port', values.port)
      : known?.imapPort && tls
        ? known.imapPort
        : tls
          ? 993
          : 143;
  const db = openAccountDb();
  const minutes =
    values['interval-minutes'] !== undefined
      ? positiveNumber('interval-minutes', values['interval-minutes'])
      : db.config.defaultIntervalMinutes;
  let oauth2: { provider: string; tokenUrl: string; clientId: string; scopes: string } | undefined;
  if (preset) {
    if (!values['client-id'])
      throw new UsageError('--client-id is required with --oauth2 (the application id registered with the provider)');
    const tokenUrl =
      values['token-url'] !== undefined
        ? tokenUrlOption(values['token-url'])
        : known
          ? presetTokenUrl(preset as OAuth2PresetName, values.tenant)
          : undefined;
    if (!tokenUrl) throw new UsageError('--token-url is required with --oauth2 custom');
    const scopes = values.scopes ?? known?.scopes;
    if (!scopes) throw new UsageError('--scopes is required with --oauth2 custom');
    oauth2 = { provider: preset, tokenUrl, clientId: values['client-id'], scopes };
  } else {
    for (const o of ['client-id', 'client-secret-file', 'token-url', 'scopes'] as const) {
      if (values[o] !== undefined) throw new UsageError(`--${o} only goes with --oauth2`);
    }
  }
  const smtp = smtpSettingsFromOptions(values);
  if (smtp && smtp.host === undefined)
    throw new UsageError(
      '--smtp-port, --smtp-tls, --sent-folder and --from-address need --smtp-host (the account sends through it)',
    );

  try {
    const keyring = loadKeyring(); // fail before asking for a secret
    const settings = {
      imapHost: host,
      imapPort: port,
      imapTls: tls,
      imapUser: values.username,
      syncIntervalSeconds: Math.round(minutes * 60),
      enabled: !values.disabled,
    };
    const target = { host, port, tls, user: values.username };
    let add;
    if (oauth2) {
      const clientSecret = values['client-secret-file']
        ? readFileSync(values['client-secret-file'], 'utf8').trim()
        : (clientSecretFromEnv() ?? null);
      let refreshToken = await readSecretInput({ envName: REFRESH_TOKEN_ENV, what: 'OAuth2 refresh token' });
      let accessToken: { token: string; expiresAt: Date } | undefined;
      if (!values['no-verify']) {
        const t = await firstAccessToken({ ...oauth2, clientSecret }, refreshToken, db.config.oauth2TimeoutMs);
        // A provider that rotates refresh tokens has just replaced this one: keep the new one.
        if (t.refreshToken) refreshToken = t.refreshToken;
        await verifyLogin(target, { accessToken: t.accessToken }, '--no-verify');
        accessToken = { token: t.accessToken, expiresAt: t.expiresAt };
      }
      add = (userId: string) =>
        addAccountWithOAuth2(db.store, keyring, userId, settings, oauth2, { refreshToken, clientSecret, accessToken });
    } else {
      const password = await readPasswordInput();
      if (!values['no-verify']) await verifyLogin(target, { password }, '--no-verify');
      add = (userId: string) => addAccountWithPassword(db.store, keyring, userId, settings, password);
    }

    const user = await db.store.ensureUser(owner);
    let account;
    try {
      account = await add(user.id);
    } catch (err) {
      if ((err as { code?: string }).code === '23505')
        throw new Error(
          `${owner} already has an account for ${values.username} on ${host}:${port} (npm run account:list -- --user ${owner})`,
        );
      throw err;
    }
    console.log(
      `Added account ${account.id} (${account.imapUser}@${account.imapHost}, ${oauth2 ? `OAuth2 ${oauth2.provider}` : 'password'}) for ${user.email}, syncing every ${minutes} min${account.enabled ? '' : ' (disabled)'}`,
    );
    if (smtp) {
      const saved = await storeSmtpSettings(db, user.id, account.id, smtp);
      console.log(`Sends through ${describeSmtp(saved)}`);
    }
    if (!values['no-schedule']) {
      const client = await connectClient();
      try {
        const outcome = await reconcileAccount(
          client,
          db.store,
          account,
          db.config.taskQueue,
          watchSettings(db.config),
        );
        console.log(
          `Schedule sync-account-${account.id}: ${outcome.schedule}. First sync now: npm run sync:now -- --user ${user.email} --account ${account.id}`,
        );
        if (outcome.watcher && outcome.watcher !== 'absent')
          console.log(`IDLE watcher watch-account-${account.id}: ${outcome.watcher}`);
      } finally {
        await client.connection.close();
      }
    }
  } finally {
    await db.close();
  }
  return EXIT.done;
});
