// Row mapping shared by the store's parts: PostgreSQL rows to the types of ./types, and the
// id check every query applies before it reaches the database.
import type {
  Account,
  AccountStatus,
  AuthMethod,
  FolderState,
  OAuth2Secrets,
  StoredMessage,
  SyncError,
  SyncRun,
  SyncRunStatus,
} from './types';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids arrive from command lines and signals: anything that is not a UUID matches nothing. */
export function validIds(...ids: string[]): boolean {
  return ids.every((id) => typeof id === 'string' && UUID.test(id));
}

export type Row = Record<string, unknown>;

export const ACCOUNT_COLUMNS = `a.id, a.user_id, a.imap_host, a.imap_port, a.imap_tls, a.imap_user, a.sync_interval_seconds,
  a.enabled, a.status, a.status_reason, a.status_changed_at, a.created_at, a.updated_at,
  a.auth_method, a.oauth2_provider, a.oauth2_token_url, a.oauth2_client_id, a.oauth2_scopes, a.oauth2_access_token_expires_at,
  a.watched_folders`;

export const OAUTH2_SECRET_COLUMNS =
  'a.oauth2_client_secret_encrypted, a.oauth2_refresh_token_encrypted, a.oauth2_access_token_encrypted, a.oauth2_access_token_expires_at';

export function toOAuth2Secrets(r: Row): OAuth2Secrets | null {
  if (!r.oauth2_refresh_token_encrypted) return null;
  return {
    clientSecretEncrypted: (r.oauth2_client_secret_encrypted as string | null) ?? null,
    refreshTokenEncrypted: r.oauth2_refresh_token_encrypted as string,
    accessTokenEncrypted: (r.oauth2_access_token_encrypted as string | null) ?? null,
    accessTokenExpiresAt: (r.oauth2_access_token_expires_at as Date | null) ?? null,
  };
}

export function toAccount(r: Row): Account {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    imapHost: r.imap_host as string,
    imapPort: r.imap_port as number,
    imapTls: r.imap_tls as boolean,
    imapUser: r.imap_user as string,
    authMethod: ((r.auth_method as AuthMethod | undefined) ?? 'password') as AuthMethod,
    oauth2:
      r.auth_method === 'oauth2'
        ? {
            provider: r.oauth2_provider as string,
            tokenUrl: r.oauth2_token_url as string,
            clientId: r.oauth2_client_id as string,
            scopes: (r.oauth2_scopes as string | null) ?? '',
            accessTokenExpiresAt: (r.oauth2_access_token_expires_at as Date | null) ?? null,
          }
        : null,
    syncIntervalSeconds: r.sync_interval_seconds as number,
    watchedFolders: (r.watched_folders as string[] | null | undefined) ?? [],
    enabled: r.enabled as boolean,
    status: r.status as AccountStatus,
    statusReason: (r.status_reason as string | null) ?? null,
    statusChangedAt: (r.status_changed_at as Date | null) ?? null,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  };
}

export function toRun(r: Row): SyncRun {
  return {
    id: Number(r.id),
    accountId: r.account_id as string,
    workflowId: r.workflow_id as string,
    workflowRunId: r.workflow_run_id as string,
    status: r.status as SyncRunStatus,
    startedAt: r.started_at as Date,
    finishedAt: (r.finished_at as Date | null) ?? null,
    folders: r.folders as number,
    messagesAdded: r.messages_added as number,
    messagesUpdated: r.messages_updated as number,
    messagesDeleted: r.messages_deleted as number,
    messagesSkipped: (r.messages_skipped as number | undefined) ?? 0,
    error: (r.error as string | null) ?? null,
  };
}

export function toSyncError(r: Row): SyncError {
  return {
    id: Number(r.id),
    syncRunId: r.sync_run_id === null ? null : Number(r.sync_run_id),
    folder: r.folder as string,
    uidValidity: r.uidvalidity === null ? null : Number(r.uidvalidity),
    uid: r.uid === null ? null : Number(r.uid),
    kind: r.kind as SyncError['kind'],
    size: r.size === null ? null : Number(r.size),
    reason: r.reason as string,
    createdAt: r.created_at as Date,
  };
}

export function toFolderState(r: Row): FolderState {
  return {
    folder: r.folder as string,
    uidValidity: Number(r.uidvalidity),
    lastUid: Number(r.last_uid),
    highestModseq: r.highest_modseq === null ? null : String(r.highest_modseq),
  };
}

export function toStoredMessage(r: Row): StoredMessage {
  return {
    id: Number(r.id),
    accountId: r.account_id as string,
    folder: r.folder as string,
    uidValidity: Number(r.uidvalidity),
    uid: Number(r.uid),
    messageId: (r.message_id as string | null) ?? null,
    from: (r.from_address as string | null) ?? null,
    to: (r.to_addresses as string[]) ?? [],
    subject: (r.subject as string | null) ?? null,
    sentAt: (r.sent_at as Date | null) ?? null,
    internalDate: (r.internal_date as Date | null) ?? null,
    flags: (r.flags as string[]) ?? [],
    modseq: r.modseq === null ? null : String(r.modseq),
    size: (r.size as number | null) ?? null,
    rawRef: (r.raw_ref as string | null) ?? null,
    hasRaw: r.has_raw as boolean,
  };
}
