// Account credentials as the store keeps them: the IMAP password, and an OAuth2 account's
// client secret, refresh token and cached access token, each encrypted with the keyring
// (./crypto.ts) and bound to its account and column, so no ciphertext can stand in for
// another. Used by the account starters (add-account, update-password, set-token) and, for
// reading them back, by the sync activities.
import { randomUUID } from 'node:crypto';
import { encryptSecret, type Keyring } from './crypto';
import type { Store } from './index';
import type { Account, OAuth2Settings } from './types';

/** Context the password ciphertext is bound to (AES-GCM additional data). */
export function accountSecretContext(accountId: string): string {
  return `mailroom:mail_accounts:${accountId}`;
}

/** Context of each OAuth2 secret: bound to the account and to its column, so none can stand in for another. */
export function oauth2SecretContext(
  accountId: string,
  field: 'client_secret' | 'refresh_token' | 'access_token',
): string {
  return `mailroom:mail_accounts:${accountId}:oauth2_${field}`;
}

export interface AccountSettings {
  imapHost: string;
  imapPort: number;
  imapTls: boolean;
  imapUser: string;
  syncIntervalSeconds: number;
  enabled?: boolean;
}

/** Adds an account for a user, encrypting the password (bound to the new account's id). */
export async function addAccountWithPassword(
  store: Store,
  keyring: Keyring,
  userId: string,
  settings: AccountSettings,
  password: string,
): Promise<Account> {
  const id = randomUUID();
  return store.addAccount(userId, {
    id,
    ...settings,
    passwordEncrypted: encryptSecret(keyring, password, accountSecretContext(id)),
  });
}

/** Stores a new password for the account and clears needs_attention. */
export async function setAccountPassword(
  store: Store,
  keyring: Keyring,
  userId: string,
  accountId: string,
  password: string,
): Promise<boolean> {
  return store.updateAccountPassword(
    userId,
    accountId,
    encryptSecret(keyring, password, accountSecretContext(accountId)),
  );
}

export interface OAuth2Credentials {
  refreshToken: string;
  clientSecret?: string | null;
  /** An access token just obtained with the refresh token (when verifying), cached for the first sync. */
  accessToken?: { token: string; expiresAt: Date };
  /** A new token endpoint for the account (account:token --token-url); checked by the caller. */
  tokenUrl?: string;
}

/** Adds an OAuth2 account for a user, encrypting the refresh token and client secret (bound to the new account's id). */
export async function addAccountWithOAuth2(
  store: Store,
  keyring: Keyring,
  userId: string,
  settings: AccountSettings,
  oauth2: OAuth2Settings,
  credentials: OAuth2Credentials,
): Promise<Account> {
  const id = randomUUID();
  const account = await store.addAccount(userId, {
    id,
    ...settings,
    oauth2: {
      ...oauth2,
      clientSecretEncrypted: credentials.clientSecret
        ? encryptSecret(keyring, credentials.clientSecret, oauth2SecretContext(id, 'client_secret'))
        : null,
      refreshTokenEncrypted: encryptSecret(keyring, credentials.refreshToken, oauth2SecretContext(id, 'refresh_token')),
    },
  });
  if (credentials.accessToken) await setAccountRefreshToken(store, keyring, userId, id, credentials);
  return (await store.getAccount(userId, id)) ?? account;
}

/**
 * Stores a new refresh token (and optionally a new client secret and a just-obtained access
 * token) for an OAuth2 account and clears needs_attention. Returns false if no such OAuth2 account.
 */
export async function setAccountRefreshToken(
  store: Store,
  keyring: Keyring,
  userId: string,
  accountId: string,
  credentials: OAuth2Credentials,
): Promise<boolean> {
  return store.updateOAuth2Credentials(userId, accountId, {
    refreshTokenEncrypted: encryptSecret(
      keyring,
      credentials.refreshToken,
      oauth2SecretContext(accountId, 'refresh_token'),
    ),
    clientSecretEncrypted:
      credentials.clientSecret === undefined
        ? undefined
        : credentials.clientSecret
          ? encryptSecret(keyring, credentials.clientSecret, oauth2SecretContext(accountId, 'client_secret'))
          : null,
    accessTokenEncrypted: credentials.accessToken
      ? encryptSecret(keyring, credentials.accessToken.token, oauth2SecretContext(accountId, 'access_token'))
      : null,
    accessTokenExpiresAt: credentials.accessToken?.expiresAt ?? null,
    tokenUrl: credentials.tokenUrl,
  });
}
