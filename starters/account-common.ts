// What the account starters share (not a command itself): the database, finding an owner's
// account with an error that says what to run instead, checking a new credential before it is
// stored, and telling a waiting sync that a new credential is there.
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { createStore, type Account, type Store, type User } from '../lib/sync-store';
import { AttentionError, UsageError } from '../lib/cli';
import { createPool } from '../lib/storage/db';
import { LoginProbeError, probeImapLogin, type ProbeAuth } from '../lib/imap/probe';
import { serverText } from '../lib/imap/server-text';
import {
  OAuth2ConfigError,
  OAuth2EndpointError,
  OAuth2GrantError,
  refreshAccessToken,
  type AccessToken,
  type OAuth2Client,
} from '../lib/imap/oauth2';
import { DEFAULT_DATABASE_URL, loadSyncConfig, type SyncConfig } from '../lib/config/sync';
import { connectClient } from '../lib/temporal';
import { runningSyncWorkflows, watcherRunning } from '../lib/account-sync';
import { watchWorkflowId } from '../contracts/watch';

/** The options every command about one account has. */
export const ACCOUNT_OPTIONS = {
  user: { type: 'string', value: '<email>', description: 'the owner', required: true },
  account: { type: 'string', value: '<id>', description: 'the account id (npm run account:list)', required: true },
} as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AccountDb {
  config: SyncConfig;
  pool: Pool;
  store: Store;
  /** Which database this is, for messages that found nothing: `database mailroom on host:port (DATABASE_URL)`. */
  where: string;
  close(): Promise<void>;
}

export function openAccountDb(): AccountDb {
  const config = loadSyncConfig();
  const pool = createPool(config.databaseUrl, { max: 2 });
  return {
    config,
    pool,
    store: createStore(pool),
    where: describeDatabase(config.databaseUrl),
    close: () => pool.end(),
  };
}

/**
 * A database URL as an operator needs it when a command finds nothing: which database on which
 * server, and whether DATABASE_URL chose it (an unset DATABASE_URL silently means the local
 * default, not the demo's database). Never the password.
 */
export function describeDatabase(url: string): string {
  const source = url === DEFAULT_DATABASE_URL ? 'the default: DATABASE_URL is not set' : 'DATABASE_URL';
  try {
    const u = new URL(url);
    const name = decodeURIComponent(u.pathname.replace(/^\//, '')) || u.username || 'postgres';
    return `database ${name} on ${u.hostname || 'localhost'}:${u.port || 5432} (${source})`;
  } catch {
    return `the database of ${source}`;
  }
}

/** An --account value: a UUID (a usage error otherwise, before anything connects). */
export function accountIdOption(value: string): string {
  if (!UUID.test(value.trim()))
    throw new UsageError(`--account ${value} is not an account id (a UUID, as npm run account:list shows)`);
  return value.trim().toLowerCase();
}

/** The owner and the account, or an error naming the command that lists them. */
export async function findAccount(
  store: Store,
  userEmail: string,
  accountId: string,
  where?: string,
): Promise<{ user: User; account: Account }> {
  const user = await store.findUserByEmail(userEmail);
  const account = user ? await store.getAccount(user.id, accountId) : null;
  if (!user || !account)
    throw new Error(
      `${userEmail} has no account ${accountId}${where ? ` in ${where}` : ''}; list the accounts with: npm run account:list -- --user ${userEmail}`,
    );
  return { user, account };
}

/**
 * Logs in with the new credential; a refusal names what to check. Says on stderr what it is
 * waiting for (a login can take seconds: DNS, TLS, a server that delays its answer), every few
 * seconds while it waits, and how it ended.
 */
export async function verifyLogin(
  target: { host: string; port: number; tls: boolean; user: string },
  auth: ProbeAuth,
  skipWith: string,
  say: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  everyMs = 3000,
): Promise<void> {
  const server = `${target.host}:${target.port}${target.tls ? '' : ' (no TLS)'}`;
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  say(`Checking the login of ${target.user} on ${server} ...`);
  const ticker = setInterval(() => say(`  still waiting for ${server} (${seconds()} s)`), everyMs);
  try {
    await probeImapLogin(target, auth);
    say(`Login accepted by ${server} (${seconds()} s)`);
  } catch (err) {
    if (err instanceof LoginProbeError)
      throw new Error(`${err.message}. Nothing was stored (pass ${skipWith} to store it anyway).`);
    throw err;
  } finally {
    clearInterval(ticker);
  }
}

/** A first access token for a refresh token, with the provider's refusal explained. */
export async function firstAccessToken(
  client: OAuth2Client,
  refreshToken: string,
  timeoutMs: number,
): Promise<AccessToken> {
  process.stderr.write(`Getting an access token from ${client.tokenUrl} ...\n`);
  try {
    return await refreshAccessToken(client, refreshToken, { timeoutMs });
  } catch (err) {
    if (err instanceof OAuth2GrantError) {
      throw new Error(
        `${err.message}. Check the client id and secret, and obtain a new refresh token for this mailbox with the scopes "${client.scopes ?? ''}". Nothing was stored.`,
      );
    }
    if (err instanceof OAuth2EndpointError || err instanceof OAuth2ConfigError)
      throw new Error(`${err.message}. Check --token-url. Nothing was stored.`);
    throw err;
  }
}

/**
 * Signals every running sync of the account (one waiting for a credential resumes at once);
 * returns their ids. The account's IDLE watcher, waiting for a credential too, is told as well.
 */
export async function signalRunningSyncs(
  client: Client,
  accountId: string,
  signal: Parameters<ReturnType<Client['workflow']['getHandle']>['signal']>[0],
): Promise<string[]> {
  const ids = await runningSyncWorkflows(client, accountId);
  for (const id of ids) await client.workflow.getHandle(id).signal(signal);
  if (await watcherRunning(client, accountId)) {
    await client.workflow
      .getHandle(watchWorkflowId(accountId))
      .signal(signal)
      .catch(() => {
        /* ended meanwhile: its next start logs in with the new credential anyway */
      });
  }
  return ids;
}

/** Tells the account's running syncs (one waiting for a credential resumes at once) and says so. */
export async function tellRunningSyncs(
  accountId: string,
  signal: Parameters<typeof signalRunningSyncs>[2],
  what: string,
): Promise<void> {
  const client = await connectClient();
  try {
    for (const id of await signalRunningSyncs(client, accountId, signal))
      console.log(`Signalled running sync ${id} to retry with the new ${what}`);
  } finally {
    await client.connection.close();
  }
}

/** The account's "needs attention" state as an AttentionError (exit 3) when it has one. */
export function attentionFor(account: Account, ownerEmail: string): AttentionError | null {
  if (account.status !== 'needs_attention') return null;
  return new AttentionError(
    `account ${account.id} needs attention: ${serverText(account.statusReason) || 'its credential was refused'}\nfix: ${credentialFix(account, ownerEmail)}`,
  );
}

/** The command that gives an account a new credential. */
export function credentialFix(account: Pick<Account, 'id' | 'authMethod'>, ownerEmail: string): string {
  return account.authMethod === 'oauth2'
    ? `printf '%s\\n' "$REFRESH_TOKEN" | npm run account:token -- --user ${ownerEmail} --account ${account.id}`
    : `printf '%s\\n' "$PASSWORD" | npm run account:password -- --user ${ownerEmail} --account ${account.id}`;
}
