// The account-sync data model as the store returns it (users, accounts, folders, messages,
// sync runs, sync errors). Plain types, shared by the store, the sync activities and the
// account starters.
import type { WatcherState } from '../../contracts/watch';

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}

export type AccountStatus = 'ok' | 'needs_attention';
export type AuthMethod = 'password' | 'oauth2';

/** An account's OAuth2 provider settings; nothing secret (those stay encrypted in OAuth2Secrets). */
export interface OAuth2Settings {
  /** 'google', 'microsoft' (lib/imap/oauth2-presets.ts) or 'custom'. */
  provider: string;
  tokenUrl: string;
  clientId: string;
  /** Space-separated, as sent to the token endpoint. */
  scopes: string;
}

/** The encrypted OAuth2 secrets of an account (lib/sync-store/crypto.ts ciphertexts bound to the account id). */
export interface OAuth2Secrets {
  clientSecretEncrypted: string | null;
  refreshTokenEncrypted: string;
  accessTokenEncrypted: string | null;
  accessTokenExpiresAt: Date | null;
}

export interface Account {
  id: string;
  userId: string;
  imapHost: string;
  imapPort: number;
  imapTls: boolean;
  imapUser: string;
  authMethod: AuthMethod;
  /** Set for OAuth2 accounts. */
  oauth2: (OAuth2Settings & { accessTokenExpiresAt: Date | null }) | null;
  syncIntervalSeconds: number;
  /** Folders the IDLE watcher watches besides INBOX (migration 008); empty: INBOX only. */
  watchedFolders: string[];
  enabled: boolean;
  status: AccountStatus;
  statusReason: string | null;
  statusChangedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewAccount {
  /** Chosen by the caller, because the password ciphertext is bound to it (lib/sync-store/crypto.ts). */
  id: string;
  imapHost: string;
  imapPort: number;
  imapTls: boolean;
  imapUser: string;
  /** For password accounts. */
  passwordEncrypted?: string | null;
  /** For OAuth2 accounts: provider settings and encrypted secrets. */
  oauth2?: OAuth2Settings & { clientSecretEncrypted: string | null; refreshTokenEncrypted: string };
  syncIntervalSeconds: number;
  enabled?: boolean;
}

export type SyncRunStatus = 'running' | 'succeeded' | 'partial' | 'failed' | 'needs_attention' | 'cancelled';

export interface SyncRun {
  id: number;
  accountId: string;
  workflowId: string;
  workflowRunId: string;
  status: SyncRunStatus;
  startedAt: Date;
  finishedAt: Date | null;
  folders: number;
  messagesAdded: number;
  messagesUpdated: number;
  messagesDeleted: number;
  messagesSkipped: number;
  error: string | null;
}

/** An account's IMAP IDLE watcher as last recorded (table account_watchers). */
export interface WatcherInfo {
  workflowId: string;
  state: WatcherState;
  stateChangedAt: Date;
  /** What the state is about (the disconnect's reason, why unsupported); server text, printed through printableText. */
  detail: string | null;
  lastEventAt: Date | null;
  connected: boolean;
}

export interface AccountSummary extends Account {
  lastRun: SyncRun | null;
  /** The account's watcher, when one ever ran (absent: never watched). */
  watcher?: WatcherInfo | null;
  messageCount: number;
  /** Messages recorded in sync_errors as not stored, or stored without their body. */
  skippedCount: number;
}

/** A message a batch did not store (kind 'data'), or stored without its body (kind 'oversize'). */
export interface SkippedMessage {
  uid: number;
  kind: 'data' | 'oversize';
  /** The message's real size in bytes, when known. */
  size: number | null;
  reason: string;
}

export interface SyncError {
  id: number;
  syncRunId: number | null;
  folder: string;
  uidValidity: number | null;
  uid: number | null;
  kind: 'data' | 'oversize' | 'folder';
  size: number | null;
  reason: string;
  createdAt: Date;
}

export interface FolderState {
  folder: string;
  uidValidity: number;
  lastUid: number;
  /** A decimal string: mod-sequences go up to 2^63-1, beyond Number's exact range. */
  highestModseq: string | null;
}

export interface NewMessage {
  uid: number;
  messageId: string | null;
  from: string | null;
  to: string[];
  subject: string | null;
  sentAt: Date | null;
  internalDate: Date | null;
  flags: string[];
  modseq: string | null;
  size: number | null;
  raw: Buffer | null;
  rawRef: string | null;
  /** Text body for search (lib/sync-store/search-text.ts); when absent the store extracts it from `raw`. */
  bodyText?: string | null;
}

export interface StoredMessage extends Omit<NewMessage, 'raw' | 'bodyText'> {
  id: number;
  accountId: string;
  folder: string;
  uidValidity: number;
  hasRaw: boolean;
}

export interface FlagChange {
  uid: number;
  flags: string[];
  modseq: string | null;
}

export class UidValidityMismatch extends Error {
  override name = 'UidValidityMismatch';
}

/** A rotated OAuth2 refresh token could not be stored; the old one was kept (lib/sync-store/accounts.ts withOAuth2Secrets). */
export class OAuth2TokenStoreError extends Error {
  override name = 'OAuth2TokenStoreError';
}

/** An account's own new-message event settings; null follows the worker's configuration. */
export interface AccountEventSettings {
  eventsEnabled: boolean | null;
  webhookUrl: string | null;
}

export type WebhookStatus = 'none' | 'pending' | 'delivered' | 'failed';

/** A message_events row (migrations/005_message_events.sql). */
export interface MessageEventRecord {
  id: number;
  accountId: string;
  userId: string;
  messageId: number;
  folder: string;
  createdAt: Date;
  dispatchedAt: Date | null;
  workflowStarted: boolean;
  webhookStatus: WebhookStatus;
  webhookAttempts: number;
  webhookError: string | null;
  webhookFinishedAt: Date | null;
}
