// Logging in to an account's server: loads the account, decrypts its password or obtains an
// OAuth2 access token (refreshed and stored encrypted when close to expiry), and classifies
// what goes wrong: a refused credential marks the account needs_attention and is not retried,
// a key problem is not retried, a provider outage is. Shared by every activity that logs in
// (sync, the IDLE watcher, sending); secrets never leave this module except to the server.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import type pino from 'pino';
import { decryptSecret, encryptSecret, SecretKeyError, type Keyring } from '../../lib/sync-store/crypto';
import {
  OAuth2ConfigError,
  OAuth2EndpointError,
  OAuth2GrantError,
  refreshAccessToken,
  tokenStillValid,
} from '../../lib/imap/oauth2';
import { serverText } from '../../lib/imap/server-text';
import { syncCredentialRejections, syncTokenRefreshes } from '../../lib/observability/sync-metrics';
import {
  ERR_ACCOUNT_NOT_FOUND,
  ERR_AUTH,
  ERR_OAUTH2_ENDPOINT,
  ERR_SECRET_KEY,
  type AuthFailureDetails,
} from '../../contracts/sync';
import { describeEndpoint, type ImapAuth, type ImapEndpoint } from '../../lib/imap/client';
import { accountSecretContext, oauth2SecretContext } from '../../lib/sync-store/credentials';
import {
  createStore,
  OAuth2TokenStoreError,
  type Account,
  type OAuth2Settings,
  type Store,
} from '../../lib/sync-store';
import type { AccountRef } from './types';

export interface AccountLoginDeps {
  pool: Pool;
  keyring: Keyring;
  config: { oauth2RefreshMarginMs?: number; oauth2TimeoutMs?: number };
  logger: pino.Logger;
  store?: Store;
}

/** An account's credential, ready for a login; `renew` gives a fresh OAuth2 token after the server refused `auth`. */
export interface AccountCredential {
  account: Account;
  endpoint: ImapEndpoint;
  auth: ImapAuth;
  /** Present for OAuth2 accounts whose token was taken from the cache (a refusal may mean it was revoked early). */
  renew?: () => Promise<ImapAuth>;
  /**
   * OAuth2: until when (ms since the epoch) a session logged in with this token may be taken
   * over by the sync run's next activity: the token's expiry less the refresh margin, the rule a
   * new login follows (activities/sync/session.ts). Absent: a password, no limit.
   */
  validUntil?: number;
}

export function createAccountLogin(deps: AccountLoginDeps) {
  const store = deps.store ?? createStore(deps.pool);
  const cfg = deps.config;
  const log = deps.logger;
  const refreshMarginMs = cfg.oauth2RefreshMarginMs ?? 300_000;

  function accountMissing(ref: AccountRef): never {
    throw ApplicationFailure.nonRetryable(
      `Account ${ref.accountId} does not exist for user ${ref.userId} (removed while syncing?); nothing to sync. Run npm run sync:reconcile to drop its schedule.`,
      ERR_ACCOUNT_NOT_FOUND,
    );
  }

  function decrypt(
    account: Account,
    endpoint: ImapEndpoint,
    ciphertext: string,
    context: string,
    what: string,
    fix: string,
  ): string {
    try {
      return decryptSecret(deps.keyring, ciphertext, context);
    } catch (err) {
      if (err instanceof SecretKeyError) {
        throw ApplicationFailure.nonRetryable(
          `Cannot decrypt the ${what} of account ${account.id} (${describeEndpoint(endpoint)}): ${err.message}. Fix MAILROOM_SECRET_KEYS on the sync worker, or ${fix}.`,
          ERR_SECRET_KEY,
        );
      }
      throw err;
    }
  }

  /** The credential was refused for good: recorded at once (list-accounts, the metric), then the workflow waits. */
  async function credentialRefused(ref: AccountRef, account: Account, reason: string, fix: string): Promise<never> {
    await store.markNeedsAttention(ref.userId, account.id, reason);
    syncCredentialRejections.inc({ method: account.authMethod });
    throw ApplicationFailure.create({
      message: `${reason}. Not retrying with the same credential; account ${account.id} is marked needs_attention. ${fix}`,
      type: ERR_AUTH,
      nonRetryable: true,
      details: [{ authMethod: account.authMethod } satisfies AuthFailureDetails],
    });
  }

  /**
   * An OAuth2 access token for a login: the stored one while it outlives the refresh margin,
   * otherwise (or when `rejected`, the token the server just refused) a fresh one from the
   * provider, stored encrypted for the next login. Never logged, never returned to a workflow.
   */
  async function accessToken(
    ref: AccountRef,
    account: Account & { oauth2: OAuth2Settings },
    endpoint: ImapEndpoint,
    rejected?: string,
  ): Promise<{ token: string; fresh: boolean; expiresAt: Date | null }> {
    const fix = 'give a new refresh token with npm run account:token';
    const got = await store.withOAuth2Secrets(ref.userId, account.id, async (secrets) => {
      if (secrets.accessTokenEncrypted && tokenStillValid(secrets.accessTokenExpiresAt, refreshMarginMs)) {
        const current = decrypt(
          account,
          endpoint,
          secrets.accessTokenEncrypted,
          oauth2SecretContext(account.id, 'access_token'),
          'OAuth2 access token',
          fix,
        );
        // Another attempt may have refreshed it since this one was refused.
        if (current !== rejected)
          return {
            result: { token: current, fresh: rejected !== undefined, expiresAt: secrets.accessTokenExpiresAt },
          };
      }
      const refreshToken = decrypt(
        account,
        endpoint,
        secrets.refreshTokenEncrypted,
        oauth2SecretContext(account.id, 'refresh_token'),
        'OAuth2 refresh token',
        fix,
      );
      const clientSecret = secrets.clientSecretEncrypted
        ? decrypt(
            account,
            endpoint,
            secrets.clientSecretEncrypted,
            oauth2SecretContext(account.id, 'client_secret'),
            'OAuth2 client secret',
            fix,
          )
        : null;
      const t = await refreshAccessToken({ ...account.oauth2, clientSecret }, refreshToken, {
        timeoutMs: cfg.oauth2TimeoutMs,
      });
      syncTokenRefreshes.inc({ outcome: 'ok' });
      return {
        result: { token: t.accessToken, fresh: true, expiresAt: t.expiresAt },
        store: {
          accessTokenEncrypted: encryptSecret(
            deps.keyring,
            t.accessToken,
            oauth2SecretContext(account.id, 'access_token'),
          ),
          accessTokenExpiresAt: t.expiresAt,
          // A rotated refresh token replaces the old one in the same transaction.
          refreshTokenEncrypted: t.refreshToken
            ? encryptSecret(deps.keyring, t.refreshToken, oauth2SecretContext(account.id, 'refresh_token'))
            : undefined,
          // Only the cache: the next login refreshes again; the rotated refresh token is stored.
          onCacheFailure: (err: unknown) =>
            log.warn({ accountId: account.id, err: serverText(err, 500) }, 'OAuth2 access token not cached'),
        },
      };
    });
    if (!got) accountMissing(ref);
    return got;
  }

  async function credentialFailure(
    ref: AccountRef,
    account: Account,
    endpoint: ImapEndpoint,
    err: unknown,
  ): Promise<Error> {
    if (err instanceof ApplicationFailure) return err;
    if (err instanceof OAuth2GrantError) {
      syncTokenRefreshes.inc({ outcome: 'rejected' });
      return credentialRefused(
        ref,
        account,
        err.message,
        `Give a new refresh token with: npm run account:token -- --user <owner email> --account ${account.id}`,
      );
    }
    if (err instanceof OAuth2ConfigError) {
      // Never sent there: waits, like a refused token, for the operator to give another URL.
      return credentialRefused(
        ref,
        account,
        `Account ${account.id}: its OAuth2 token URL (setting oauth2_token_url, --token-url) is not used: ${err.message}`,
        `Give an https:// token endpoint with: npm run account:token -- --user <owner email> --account ${account.id} --token-url https://...`,
      );
    }
    if (err instanceof OAuth2TokenStoreError) {
      return ApplicationFailure.retryable(`${err.message}; will retry with backoff.`, 'OAuth2TokenStoreError');
    }
    if (err instanceof OAuth2EndpointError) {
      syncTokenRefreshes.inc({ outcome: 'error' });
      return ApplicationFailure.retryable(
        `Cannot get an OAuth2 access token for account ${account.id} (${describeEndpoint(endpoint)}): ${err.message}; will retry with backoff.`,
        ERR_OAUTH2_ENDPOINT,
      );
    }
    if (err instanceof SecretKeyError) {
      return ApplicationFailure.nonRetryable(
        `Account ${account.id} (${describeEndpoint(endpoint)}): ${err.message}. Set its credential again (npm run account:password / account:token).`,
        ERR_SECRET_KEY,
      );
    }
    return err as Error;
  }

  /** Loads the account and its credential (decrypted or freshly issued); throws classified failures. */
  async function credential(ref: AccountRef): Promise<AccountCredential> {
    const found = await store.getAccountSecret(ref.userId, ref.accountId);
    if (!found) accountMissing(ref);
    const { account } = found;
    const endpoint: ImapEndpoint = {
      host: account.imapHost,
      port: account.imapPort,
      tls: account.imapTls,
      user: account.imapUser,
    };
    const oauth2 = account.authMethod === 'oauth2' && account.oauth2 ? { ...account, oauth2: account.oauth2 } : null;
    try {
      if (oauth2) {
        const t = await accessToken(ref, oauth2, endpoint);
        const auth: ImapAuth = { accessToken: t.token };
        // A stored access token the server refuses (revoked early, clock skew): one fresh
        // token decides whether the grant itself is gone.
        const renew = t.fresh
          ? undefined
          : async (): Promise<ImapAuth> => {
              try {
                return { accessToken: (await accessToken(ref, oauth2, endpoint, t.token)).token };
              } catch (e) {
                throw await credentialFailure(ref, account, endpoint, e);
              }
            };
        const validUntil = t.expiresAt ? t.expiresAt.getTime() - refreshMarginMs : 0;
        return { account, endpoint, auth, renew, validUntil };
      }
      if (!found.passwordEncrypted) throw new SecretKeyError('the account has no stored password');
      const password = decrypt(
        account,
        endpoint,
        found.passwordEncrypted,
        accountSecretContext(account.id),
        'IMAP password',
        'set the password again with npm run account:password',
      );
      return { account, endpoint, auth: { password } };
    } catch (err) {
      throw await credentialFailure(ref, account, endpoint, err);
    }
  }

  /** The server refused a credential it was given: recorded, not retried (for OAuth2, after a fresh token was refused). */
  function refused(ref: AccountRef, account: Account, server: string, serverReply: string): Promise<never> {
    if (account.authMethod === 'oauth2' && account.oauth2) {
      return credentialRefused(
        ref,
        account,
        `${server} rejected a freshly issued OAuth2 access token for ${account.imapUser}: ${serverReply} (are the scopes "${account.oauth2.scopes}" enough, and was the token issued for this mailbox?)`,
        `Give a new refresh token with: npm run account:token -- --user <owner email> --account ${account.id}`,
      );
    }
    return credentialRefused(
      ref,
      account,
      `${server} rejected the login of ${account.imapUser}: ${serverReply}`,
      `Set the new password with: npm run account:password -- --user <owner email> --account ${account.id}`,
    );
  }

  return { store, accountMissing, credential, refused };
}

export type AccountLogin = ReturnType<typeof createAccountLogin>;
