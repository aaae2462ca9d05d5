// The account-sync repository: every function that touches accounts, folders, messages or
// sync runs takes the owning userId and has `user_id = $1` in its WHERE clause, so a wrong or
// forged account id from one user can never read or change another user's data: it simply
// matches nothing. The schema backs this up with (account_id, user_id) foreign keys.
//
// Checkpoints move only inside the transaction that stores (or deletes, or re-flags) the
// rows they cover, so a crash at any point leaves the database consistent and the next
// attempt resumes exactly where the last commit stopped.
import type { Pool, PoolClient } from 'pg';
import { withTransaction } from '../lib/db';
import { cleanText } from '../lib/storable';
import { isPostgresDataError } from '../lib/sync-errors';

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}

export type AccountStatus = 'ok' | 'needs_attention';
export type AuthMethod = 'password' | 'oauth2';

/** An account's OAuth2 provider settings; nothing secret (those stay encrypted in OAuth2Secrets). */
export interface OAuth2Settings {
  /** 'google', 'microsoft' (lib/oauth2-presets.ts) or 'custom'. */
  provider: string;
  tokenUrl: string;
  clientId: string;
  /** Space-separated, as sent to the token endpoint. */
  scopes: string;
}

/** The encrypted OAuth2 secrets of an account (lib/crypto.ts ciphertexts bound to the account id). */
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
  enabled: boolean;
  status: AccountStatus;
  statusReason: string | null;
  statusChangedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewAccount {
  /** Chosen by the caller, because the password ciphertext is bound to it (lib/crypto.ts). */
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

export interface AccountSummary extends Account {
  lastRun: SyncRun | null;
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
}

export interface StoredMessage extends Omit<NewMessage, 'raw'> {
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids arrive from command lines and signals: anything that is not a UUID matches nothing. */
function validIds(...ids: string[]): boolean {
  return ids.every((id) => typeof id === 'string' && UUID.test(id));
}

type Row = Record<string, unknown>;

const ACCOUNT_COLUMNS = `a.id, a.user_id, a.imap_host, a.imap_port, a.imap_tls, a.imap_user, a.sync_interval_seconds,
  a.enabled, a.status, a.status_reason, a.status_changed_at, a.created_at, a.updated_at,
  a.auth_method, a.oauth2_provider, a.oauth2_token_url, a.oauth2_client_id, a.oauth2_scopes, a.oauth2_access_token_expires_at`;

const OAUTH2_SECRET_COLUMNS = 'a.oauth2_client_secret_encrypted, a.oauth2_refresh_token_encrypted, a.oauth2_access_token_encrypted, a.oauth2_access_token_expires_at';

function toOAuth2Secrets(r: Row): OAuth2Secrets | null {
  if (!r.oauth2_refresh_token_encrypted) return null;
  return {
    clientSecretEncrypted: (r.oauth2_client_secret_encrypted as string | null) ?? null,
    refreshTokenEncrypted: r.oauth2_refresh_token_encrypted as string,
    accessTokenEncrypted: (r.oauth2_access_token_encrypted as string | null) ?? null,
    accessTokenExpiresAt: (r.oauth2_access_token_expires_at as Date | null) ?? null,
  };
}

function toAccount(r: Row): Account {
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
    enabled: r.enabled as boolean,
    status: r.status as AccountStatus,
    statusReason: (r.status_reason as string | null) ?? null,
    statusChangedAt: (r.status_changed_at as Date | null) ?? null,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  };
}

function toRun(r: Row): SyncRun {
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

function toSyncError(r: Row): SyncError {
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

function toFolderState(r: Row): FolderState {
  return {
    folder: r.folder as string,
    uidValidity: Number(r.uidvalidity),
    lastUid: Number(r.last_uid),
    highestModseq: r.highest_modseq === null ? null : String(r.highest_modseq),
  };
}

function toStoredMessage(r: Row): StoredMessage {
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

/** Adds to a sync run's counters inside the caller's transaction. */
async function bumpRun(
  db: PoolClient,
  userId: string,
  syncRunId: number | undefined,
  column: 'messages_added' | 'messages_updated' | 'messages_deleted' | 'messages_skipped',
  n: number,
): Promise<void> {
  if (!syncRunId || n === 0) return;
  await db.query(`UPDATE sync_runs SET ${column} = ${column} + $3 WHERE id = $2 AND user_id = $1`, [userId, syncRunId, n]);
}

async function lockFolder(db: PoolClient, userId: string, accountId: string, folder: string): Promise<FolderState | null> {
  const { rows } = await db.query(
    'SELECT folder, uidvalidity, last_uid, highest_modseq FROM folder_sync_state WHERE user_id = $1 AND account_id = $2 AND folder = $3 FOR UPDATE',
    [userId, accountId, folder],
  );
  return rows[0] ? toFolderState(rows[0]) : null;
}

const INSERT_MESSAGE = `INSERT INTO messages (account_id, user_id, folder, uidvalidity, uid, message_id, from_address, to_addresses, subject,
                       sent_at, internal_date, flags, modseq, size, raw, raw_ref)
 VALUES ($2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
 ON CONFLICT ON CONSTRAINT messages_account_folder_uid_key DO NOTHING`;

/**
 * Inserts a batch inside the caller's transaction. With `isolate`, each message gets a
 * savepoint and one that PostgreSQL refuses for its data is returned as skipped instead of
 * failing the batch; without it (the fast path, one round trip per message) any error fails
 * the batch and the caller retries it isolated.
 */
async function insertMessages(
  db: PoolClient,
  key: { userId: string; accountId: string; folder: string; uidValidity: number },
  messages: NewMessage[],
  isolate: boolean,
): Promise<{ inserted: number; refused: SkippedMessage[] }> {
  let inserted = 0;
  const refused: SkippedMessage[] = [];
  for (const m of messages) {
    const params = [key.userId, key.accountId, key.folder, key.uidValidity, m.uid, m.messageId, m.from, m.to, m.subject, m.sentAt, m.internalDate, m.flags, m.modseq, m.size, m.raw, m.rawRef];
    if (!isolate) {
      inserted += (await db.query(INSERT_MESSAGE, params)).rowCount ?? 0;
      continue;
    }
    await db.query('SAVEPOINT message');
    try {
      inserted += (await db.query(INSERT_MESSAGE, params)).rowCount ?? 0;
      await db.query('RELEASE SAVEPOINT message');
    } catch (err) {
      if (!isPostgresDataError(err)) throw err;
      await db.query('ROLLBACK TO SAVEPOINT message');
      const e = err as { message: string; code: string };
      refused.push({ uid: m.uid, kind: 'data', size: m.size, reason: `PostgreSQL refused the message: ${e.message} (SQLSTATE ${e.code})` });
    }
  }
  return { inserted, refused };
}

/** Records skipped messages (once each: a retried batch adds nothing); returns how many were new. */
async function insertSkipped(
  db: PoolClient,
  key: { userId: string; accountId: string; folder: string; uidValidity: number },
  skipped: SkippedMessage[],
  syncRunId: number | undefined,
): Promise<number> {
  if (!skipped.length) return 0;
  const res = await db.query(
    `INSERT INTO sync_errors (account_id, user_id, sync_run_id, folder, uidvalidity, uid, kind, size, reason)
     SELECT $2, $1, $3, $4, $5, s.uid, s.kind, s.size, s.reason
     FROM jsonb_to_recordset($6::jsonb) AS s(uid bigint, kind text, size bigint, reason text)
     ON CONFLICT (account_id, folder, uidvalidity, uid) WHERE uid IS NOT NULL DO NOTHING`,
    [
      key.userId,
      key.accountId,
      syncRunId ?? null,
      key.folder,
      key.uidValidity,
      JSON.stringify(skipped.map((s) => ({ uid: s.uid, kind: s.kind, size: s.size, reason: cleanText(s.reason, 2000) }))),
    ],
  );
  return res.rowCount ?? 0;
}

export function createStore(pool: Pool) {
  return {
    // --- users -----------------------------------------------------------------------------

    /** Creates the user, or returns the existing one with that address (case-insensitive). */
    async ensureUser(email: string): Promise<User> {
      const { rows } = await pool.query(
        `INSERT INTO users (email) VALUES ($1)
         ON CONFLICT ((lower(email))) DO UPDATE SET email = users.email
         RETURNING id, email, created_at`,
        [email.trim()],
      );
      return { id: rows[0].id, email: rows[0].email, createdAt: rows[0].created_at };
    },

    async findUserByEmail(email: string): Promise<User | null> {
      const { rows } = await pool.query('SELECT id, email, created_at FROM users WHERE lower(email) = lower($1)', [email.trim()]);
      return rows[0] ? { id: rows[0].id, email: rows[0].email, createdAt: rows[0].created_at } : null;
    },

    /** Every user, for operator tools (reconcile) that then work user by user. */
    async listUsers(): Promise<User[]> {
      const { rows } = await pool.query('SELECT id, email, created_at FROM users ORDER BY created_at, id');
      return rows.map((r) => ({ id: r.id, email: r.email, createdAt: r.created_at }));
    },

    /** How many accounts (of all users) wait for a new password or token; a number, no user's data (the metrics gauge). */
    async countAccountsNeedingAttention(): Promise<number> {
      const { rows } = await pool.query("SELECT count(*) AS n FROM mail_accounts WHERE status = 'needs_attention' AND enabled");
      return Number(rows[0].n);
    },

    // --- accounts --------------------------------------------------------------------------

    async addAccount(userId: string, a: NewAccount): Promise<Account> {
      if (!validIds(userId, a.id)) throw new Error(`addAccount: user id ${userId} or account id ${a.id} is not a UUID`);
      const o = a.oauth2;
      const { rows } = await pool.query(
        `INSERT INTO mail_accounts (id, user_id, imap_host, imap_port, imap_tls, imap_user, password_encrypted, sync_interval_seconds, enabled,
                                    auth_method, oauth2_provider, oauth2_token_url, oauth2_client_id, oauth2_client_secret_encrypted, oauth2_scopes,
                                    oauth2_refresh_token_encrypted)
         VALUES ($2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         RETURNING ${ACCOUNT_COLUMNS.replaceAll('a.', '')}`,
        [
          userId,
          a.id,
          a.imapHost,
          a.imapPort,
          a.imapTls,
          a.imapUser,
          o ? null : (a.passwordEncrypted ?? null),
          a.syncIntervalSeconds,
          a.enabled ?? true,
          o ? 'oauth2' : 'password',
          o?.provider ?? null,
          o?.tokenUrl ?? null,
          o?.clientId ?? null,
          o?.clientSecretEncrypted ?? null,
          o?.scopes ?? null,
          o?.refreshTokenEncrypted ?? null,
        ],
      );
      return toAccount(rows[0]);
    },

    async getAccount(userId: string, accountId: string): Promise<Account | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(`SELECT ${ACCOUNT_COLUMNS} FROM mail_accounts a WHERE a.user_id = $1 AND a.id = $2`, [userId, accountId]);
      return rows[0] ? toAccount(rows[0]) : null;
    },

    /** The account with its credential ciphertexts (password, or OAuth2 secrets); only the sync activities need this. */
    async getAccountSecret(userId: string, accountId: string): Promise<{ account: Account; passwordEncrypted: string | null; oauth2: OAuth2Secrets | null } | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(`SELECT ${ACCOUNT_COLUMNS}, a.password_encrypted, ${OAUTH2_SECRET_COLUMNS} FROM mail_accounts a WHERE a.user_id = $1 AND a.id = $2`, [
        userId,
        accountId,
      ]);
      return rows[0] ? { account: toAccount(rows[0]), passwordEncrypted: rows[0].password_encrypted ?? null, oauth2: toOAuth2Secrets(rows[0]) } : null;
    },

    /**
     * Runs `refresh` with the account's OAuth2 secrets under a per-account lock (a transaction
     * advisory lock, so other writes to the account row are not blocked), and stores what it
     * returns. Concurrent refreshes therefore happen one after the other, and the second sees
     * the token the first stored (a provider that rotates refresh tokens would otherwise
     * invalidate one of them). Returns null when the account is not an OAuth2 account of this user.
     */
    async withOAuth2Secrets<T>(
      userId: string,
      accountId: string,
      refresh: (secrets: OAuth2Secrets) => Promise<{ result: T; store?: { refreshTokenEncrypted?: string; accessTokenEncrypted: string; accessTokenExpiresAt: Date } }>,
    ): Promise<T | null> {
      if (!validIds(userId, accountId)) return null;
      return withTransaction(pool, async (db) => {
        await db.query("SELECT pg_advisory_xact_lock(hashtextextended('mailroom-oauth2:' || $1, 0))", [accountId]);
        const { rows } = await db.query(`SELECT ${OAUTH2_SECRET_COLUMNS} FROM mail_accounts a WHERE a.user_id = $1 AND a.id = $2 AND a.auth_method = 'oauth2'`, [userId, accountId]);
        const secrets = rows[0] ? toOAuth2Secrets(rows[0]) : null;
        if (!secrets) return null;
        const { result, store } = await refresh(secrets);
        if (store) {
          await db.query(
            `UPDATE mail_accounts SET oauth2_refresh_token_encrypted = COALESCE($3, oauth2_refresh_token_encrypted),
                    oauth2_access_token_encrypted = $4, oauth2_access_token_expires_at = $5, updated_at = now()
             WHERE user_id = $1 AND id = $2`,
            [userId, accountId, store.refreshTokenEncrypted ?? null, store.accessTokenEncrypted, store.accessTokenExpiresAt],
          );
        }
        return result;
      });
    },

    /**
     * Stores a new OAuth2 refresh token (and, when the caller just obtained one, the access
     * token) and clears needs_attention, like updateAccountPassword. Returns false if no such
     * OAuth2 account.
     */
    async updateOAuth2Credentials(
      userId: string,
      accountId: string,
      c: { refreshTokenEncrypted: string; clientSecretEncrypted?: string | null; accessTokenEncrypted?: string | null; accessTokenExpiresAt?: Date | null },
    ): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query(
        `UPDATE mail_accounts SET oauth2_refresh_token_encrypted = $3,
                oauth2_client_secret_encrypted = CASE WHEN $4::boolean THEN $5 ELSE oauth2_client_secret_encrypted END,
                oauth2_access_token_encrypted = $6, oauth2_access_token_expires_at = $7,
                status = 'ok', status_reason = NULL,
                status_changed_at = CASE WHEN status <> 'ok' THEN now() ELSE status_changed_at END, updated_at = now()
         WHERE user_id = $1 AND id = $2 AND auth_method = 'oauth2'`,
        [userId, accountId, c.refreshTokenEncrypted, c.clientSecretEncrypted !== undefined, c.clientSecretEncrypted ?? null, c.accessTokenEncrypted ?? null, c.accessTokenExpiresAt ?? null],
      );
      return rowCount === 1;
    },

    async listAccounts(userId: string): Promise<AccountSummary[]> {
      if (!validIds(userId)) return [];
      const { rows } = await pool.query(
        `SELECT ${ACCOUNT_COLUMNS},
                (SELECT count(*) FROM messages m WHERE m.user_id = a.user_id AND m.account_id = a.id) AS message_count,
                (SELECT count(*) FROM sync_errors e WHERE e.user_id = a.user_id AND e.account_id = a.id AND e.uid IS NOT NULL) AS skipped_count,
                r.id AS run_id, r.workflow_id AS run_workflow_id, r.workflow_run_id AS run_workflow_run_id, r.status AS run_status,
                r.started_at AS run_started_at, r.finished_at AS run_finished_at, r.folders AS run_folders,
                r.messages_added AS run_messages_added, r.messages_updated AS run_messages_updated,
                r.messages_deleted AS run_messages_deleted, r.messages_skipped AS run_messages_skipped, r.error AS run_error
         FROM mail_accounts a
         LEFT JOIN LATERAL (
           SELECT * FROM sync_runs s WHERE s.user_id = a.user_id AND s.account_id = a.id ORDER BY s.started_at DESC, s.id DESC LIMIT 1
         ) r ON true
         WHERE a.user_id = $1
         ORDER BY a.created_at, a.id`,
        [userId],
      );
      return rows.map((r) => ({
        ...toAccount(r),
        messageCount: Number(r.message_count),
        skippedCount: Number(r.skipped_count),
        lastRun:
          r.run_id === null
            ? null
            : toRun({
                id: r.run_id,
                account_id: r.id,
                workflow_id: r.run_workflow_id,
                workflow_run_id: r.run_workflow_run_id,
                status: r.run_status,
                started_at: r.run_started_at,
                finished_at: r.run_finished_at,
                folders: r.run_folders,
                messages_added: r.run_messages_added,
                messages_updated: r.run_messages_updated,
                messages_deleted: r.run_messages_deleted,
                messages_skipped: r.run_messages_skipped,
                error: r.run_error,
              }),
      }));
    },

    /** Stores a new password and clears needs_attention. Returns false if no such password account. */
    async updateAccountPassword(userId: string, accountId: string, passwordEncrypted: string): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query(
        `UPDATE mail_accounts SET password_encrypted = $3, status = 'ok', status_reason = NULL,
                status_changed_at = CASE WHEN status <> 'ok' THEN now() ELSE status_changed_at END, updated_at = now()
         WHERE user_id = $1 AND id = $2 AND auth_method = 'password'`,
        [userId, accountId, passwordEncrypted],
      );
      return rowCount === 1;
    },

    async updateAccountSettings(userId: string, accountId: string, changes: { enabled?: boolean; syncIntervalSeconds?: number }): Promise<Account | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        `UPDATE mail_accounts a SET enabled = COALESCE($3, enabled), sync_interval_seconds = COALESCE($4, sync_interval_seconds), updated_at = now()
         WHERE a.user_id = $1 AND a.id = $2
         RETURNING ${ACCOUNT_COLUMNS}`,
        [userId, accountId, changes.enabled ?? null, changes.syncIntervalSeconds ?? null],
      );
      return rows[0] ? toAccount(rows[0]) : null;
    },

    /** Deletes the account with its folders, messages and runs. Returns false if no such account. */
    async removeAccount(userId: string, accountId: string): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query('DELETE FROM mail_accounts WHERE user_id = $1 AND id = $2', [userId, accountId]);
      return rowCount === 1;
    },

    async markNeedsAttention(userId: string, accountId: string, reason: string): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query(
        `UPDATE mail_accounts SET status = 'needs_attention', status_reason = $3,
                status_changed_at = CASE WHEN status <> 'needs_attention' THEN now() ELSE status_changed_at END, updated_at = now()
         WHERE user_id = $1 AND id = $2`,
        [userId, accountId, reason],
      );
      return rowCount === 1;
    },

    // --- folders ---------------------------------------------------------------------------

    async getFolderStates(userId: string, accountId: string): Promise<FolderState[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query(
        'SELECT folder, uidvalidity, last_uid, highest_modseq FROM folder_sync_state WHERE user_id = $1 AND account_id = $2 ORDER BY folder',
        [userId, accountId],
      );
      return rows.map(toFolderState);
    },

    async getFolderState(userId: string, accountId: string, folder: string): Promise<FolderState | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        'SELECT folder, uidvalidity, last_uid, highest_modseq FROM folder_sync_state WHERE user_id = $1 AND account_id = $2 AND folder = $3',
        [userId, accountId, folder],
      );
      return rows[0] ? toFolderState(rows[0]) : null;
    },

    /**
     * Starts (or checks) a folder's checkpoint against the server's UIDVALIDITY. When the
     * server's value changed, its UIDs mean different messages now: every stored message of
     * the folder is dropped and the checkpoint restarts from zero, in one transaction.
     */
    async beginFolder(userId: string, accountId: string, folder: string, uidValidity: number, syncRunId?: number): Promise<{ state: FolderState; reset: boolean; dropped: number }> {
      if (!validIds(userId, accountId)) throw new Error(`beginFolder: account ${accountId} not found for user ${userId}`);
      return withTransaction(pool, async (db) => {
        // Serialises with a concurrent first sync of the same folder.
        await db.query('SELECT 1 FROM mail_accounts WHERE user_id = $1 AND id = $2 FOR UPDATE', [userId, accountId]);
        const existing = await lockFolder(db, userId, accountId, folder);
        if (existing && existing.uidValidity === uidValidity) return { state: existing, reset: false, dropped: 0 };
        let dropped = 0;
        if (existing) {
          const del = await db.query('DELETE FROM messages WHERE user_id = $1 AND account_id = $2 AND folder = $3', [userId, accountId, folder]);
          dropped = del.rowCount ?? 0;
          // Skipped-message records name UIDs of the old UIDVALIDITY, which mean nothing now.
          await db.query('DELETE FROM sync_errors WHERE user_id = $1 AND account_id = $2 AND folder = $3 AND uid IS NOT NULL', [userId, accountId, folder]);
          await bumpRun(db, userId, syncRunId, 'messages_deleted', dropped);
        }
        const { rows } = await db.query(
          `INSERT INTO folder_sync_state (account_id, user_id, folder, uidvalidity, last_uid, highest_modseq)
           SELECT id, user_id, $3, $4, 0, NULL FROM mail_accounts WHERE user_id = $1 AND id = $2
           ON CONFLICT (account_id, folder) DO UPDATE SET uidvalidity = EXCLUDED.uidvalidity, last_uid = 0, highest_modseq = NULL, updated_at = now()
           RETURNING folder, uidvalidity, last_uid, highest_modseq`,
          [userId, accountId, folder, uidValidity],
        );
        if (!rows[0]) throw new Error(`beginFolder: account ${accountId} not found for user ${userId}`);
        return { state: toFolderState(rows[0]), reset: existing !== null, dropped };
      });
    },

    /**
     * Stores one fetched batch, records the messages it skips (sync_errors) and advances the
     * folder checkpoint to `checkpointUid`, all in one transaction. Idempotent: a row that is
     * already there is left alone, a skip already recorded is not counted again. A message
     * PostgreSQL refuses for its data (SQLSTATE class 22 or 54) does not fail the batch: the
     * batch is redone with a savepoint per message and that one is recorded as skipped.
     */
    async storeMessages(
      userId: string,
      accountId: string,
      folder: string,
      uidValidity: number,
      messages: NewMessage[],
      checkpointUid: number,
      syncRunId?: number,
      skipped: SkippedMessage[] = [],
    ): Promise<{ inserted: number; skipped: number; lastUid: number }> {
      const key = { userId, accountId, folder, uidValidity };
      const attempt = (isolate: boolean) =>
        withTransaction(pool, async (db) => {
          const state = validIds(userId, accountId) ? await lockFolder(db, userId, accountId, folder) : null;
          if (!state) throw new Error(`storeMessages: folder ${folder} of account ${accountId} has no sync state for user ${userId}`);
          if (state.uidValidity !== uidValidity) throw new UidValidityMismatch(`folder ${folder}: UIDVALIDITY is now ${state.uidValidity}, not ${uidValidity}`);
          const { inserted, refused } = await insertMessages(db, key, messages, isolate);
          const newlySkipped = await insertSkipped(db, key, [...skipped, ...refused], syncRunId);
          const { rows } = await db.query(
            `UPDATE folder_sync_state SET last_uid = GREATEST(last_uid, $4), updated_at = now()
             WHERE user_id = $1 AND account_id = $2 AND folder = $3 RETURNING last_uid`,
            [userId, accountId, folder, checkpointUid],
          );
          await bumpRun(db, userId, syncRunId, 'messages_added', inserted);
          await bumpRun(db, userId, syncRunId, 'messages_skipped', newlySkipped);
          return { inserted, skipped: newlySkipped, lastUid: Number(rows[0].last_uid) };
        });
      try {
        return await attempt(false);
      } catch (err) {
        if (!isPostgresDataError(err)) throw err;
        return attempt(true);
      }
    },

    /**
     * Records that a folder could not be synced in this run (once per run and folder: a
     * retried activity updates the reason). The folder is tried again next run.
     */
    async recordFolderError(userId: string, accountId: string, syncRunId: number, folder: string, reason: string): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query(
        `INSERT INTO sync_errors (account_id, user_id, sync_run_id, folder, kind, reason)
         SELECT id, user_id, $3, $4, 'folder', $5 FROM mail_accounts WHERE user_id = $1 AND id = $2
         ON CONFLICT (sync_run_id, folder) WHERE uid IS NULL DO UPDATE SET reason = EXCLUDED.reason, created_at = now()`,
        [userId, accountId, syncRunId, folder, cleanText(reason, 2000)],
      );
      return rowCount === 1;
    },

    /** Recorded sync errors of an account, newest first (of one run, when given). */
    async listSyncErrors(userId: string, accountId: string, options: { syncRunId?: number; limit?: number } = {}): Promise<SyncError[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query(
        `SELECT * FROM sync_errors WHERE user_id = $1 AND account_id = $2 AND ($3::bigint IS NULL OR sync_run_id = $3)
         ORDER BY created_at DESC, id DESC LIMIT $4`,
        [userId, accountId, options.syncRunId ?? null, options.limit ?? 100],
      );
      return rows.map(toSyncError);
    },

    /**
     * Applies server flags to stored messages (only rows whose flags differ count as updated)
     * and records the HIGHESTMODSEQ they were read at, together.
     */
    async applyFlagChanges(
      userId: string,
      accountId: string,
      folder: string,
      uidValidity: number,
      changes: FlagChange[],
      highestModseq: string | null,
      syncRunId?: number,
    ): Promise<number> {
      return withTransaction(pool, async (db) => {
        const state = validIds(userId, accountId) ? await lockFolder(db, userId, accountId, folder) : null;
        if (!state) throw new Error(`applyFlagChanges: folder ${folder} of account ${accountId} has no sync state for user ${userId}`);
        if (state.uidValidity !== uidValidity) throw new UidValidityMismatch(`folder ${folder}: UIDVALIDITY is now ${state.uidValidity}, not ${uidValidity}`);
        let updated = 0;
        if (changes.length) {
          const res = await db.query(
            `UPDATE messages m SET flags = c.flags, modseq = COALESCE(c.modseq, m.modseq), updated_at = now()
             FROM (SELECT * FROM jsonb_to_recordset($5::jsonb) AS x(uid bigint, flags text[], modseq bigint)) c
             WHERE m.user_id = $1 AND m.account_id = $2 AND m.folder = $3 AND m.uidvalidity = $4 AND m.uid = c.uid
               AND m.flags IS DISTINCT FROM c.flags`,
            [userId, accountId, folder, uidValidity, JSON.stringify(changes.map((c) => ({ uid: c.uid, flags: [...c.flags].sort(), modseq: c.modseq })))],
          );
          updated = res.rowCount ?? 0;
        }
        await db.query('UPDATE folder_sync_state SET highest_modseq = $4, updated_at = now() WHERE user_id = $1 AND account_id = $2 AND folder = $3', [
          userId,
          accountId,
          folder,
          highestModseq,
        ]);
        await bumpRun(db, userId, syncRunId, 'messages_updated', updated);
        return updated;
      });
    },

    /**
     * Deletes stored messages up to `upToUid` whose UID the server no longer has. Bounded by
     * upToUid (the checkpoint when the server's UID list was read) so a message stored after
     * that list was taken is never mistaken for a deleted one.
     */
    async deleteMissingMessages(
      userId: string,
      accountId: string,
      folder: string,
      uidValidity: number,
      serverUids: number[],
      upToUid: number,
      syncRunId?: number,
    ): Promise<number> {
      if (!validIds(userId, accountId)) return 0;
      return withTransaction(pool, async (db) => {
        const res = await db.query(
          `DELETE FROM messages WHERE user_id = $1 AND account_id = $2 AND folder = $3 AND uidvalidity = $4 AND uid <= $5
             AND NOT (uid = ANY($6::bigint[]))`,
          [userId, accountId, folder, uidValidity, upToUid, serverUids],
        );
        const deleted = res.rowCount ?? 0;
        await bumpRun(db, userId, syncRunId, 'messages_deleted', deleted);
        return deleted;
      });
    },

    /** Forgets folders the server no longer lists (deleted or renamed), with their messages. */
    async removeFoldersExcept(userId: string, accountId: string, folders: string[], syncRunId?: number): Promise<{ folders: string[]; messages: number }> {
      if (!validIds(userId, accountId)) return { folders: [], messages: 0 };
      return withTransaction(pool, async (db) => {
        const gone = await db.query(
          'DELETE FROM folder_sync_state WHERE user_id = $1 AND account_id = $2 AND NOT (folder = ANY($3::text[])) RETURNING folder',
          [userId, accountId, folders],
        );
        const msgs = await db.query('DELETE FROM messages WHERE user_id = $1 AND account_id = $2 AND NOT (folder = ANY($3::text[]))', [userId, accountId, folders]);
        await db.query('DELETE FROM sync_errors WHERE user_id = $1 AND account_id = $2 AND uid IS NOT NULL AND NOT (folder = ANY($3::text[]))', [userId, accountId, folders]);
        await bumpRun(db, userId, syncRunId, 'messages_deleted', msgs.rowCount ?? 0);
        return { folders: gone.rows.map((r) => r.folder as string), messages: msgs.rowCount ?? 0 };
      });
    },

    // --- messages --------------------------------------------------------------------------

    async listMessages(userId: string, accountId: string, folder?: string): Promise<StoredMessage[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query(
        `SELECT id, account_id, folder, uidvalidity, uid, message_id, from_address, to_addresses, subject, sent_at, internal_date,
                flags, modseq, size, raw_ref, raw IS NOT NULL AS has_raw
         FROM messages WHERE user_id = $1 AND account_id = $2 AND ($3::text IS NULL OR folder = $3)
         ORDER BY folder, uid`,
        [userId, accountId, folder ?? null],
      );
      return rows.map(toStoredMessage);
    },

    async getMessageRaw(userId: string, messageId: number): Promise<Buffer | null> {
      if (!validIds(userId) || !Number.isSafeInteger(messageId)) return null;
      const { rows } = await pool.query('SELECT raw FROM messages WHERE user_id = $1 AND id = $2', [userId, messageId]);
      return rows[0]?.raw ?? null;
    },

    async deleteMessage(userId: string, messageId: number): Promise<boolean> {
      if (!validIds(userId) || !Number.isSafeInteger(messageId)) return false;
      const { rowCount } = await pool.query('DELETE FROM messages WHERE user_id = $1 AND id = $2', [userId, messageId]);
      return rowCount === 1;
    },

    // --- sync runs -------------------------------------------------------------------------

    /** Records the start of a sync; idempotent per workflow run, so an activity retry adds no row. */
    async beginSyncRun(userId: string, accountId: string, workflowId: string, workflowRunId: string): Promise<number | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        `INSERT INTO sync_runs (account_id, user_id, workflow_id, workflow_run_id)
         SELECT id, user_id, $3, $4 FROM mail_accounts WHERE user_id = $1 AND id = $2
         ON CONFLICT (workflow_run_id) DO UPDATE SET workflow_id = EXCLUDED.workflow_id
         RETURNING id`,
        [userId, accountId, workflowId, workflowRunId],
      );
      return rows[0] ? Number(rows[0].id) : null;
    },

    async finishSyncRun(
      userId: string,
      syncRunId: number,
      outcome: { status: Exclude<SyncRunStatus, 'running'>; folders?: number; error?: string | null },
    ): Promise<SyncRun | null> {
      if (!validIds(userId)) return null;
      const { rows } = await pool.query(
        `UPDATE sync_runs SET status = $3, finished_at = now(), folders = COALESCE($4, folders), error = $5
         WHERE user_id = $1 AND id = $2 RETURNING *`,
        [userId, syncRunId, outcome.status, outcome.folders ?? null, outcome.error ?? null],
      );
      return rows[0] ? toRun(rows[0]) : null;
    },

    async listSyncRuns(userId: string, accountId: string, limit = 20): Promise<SyncRun[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query('SELECT * FROM sync_runs WHERE user_id = $1 AND account_id = $2 ORDER BY started_at DESC, id DESC LIMIT $3', [
        userId,
        accountId,
        limit,
      ]);
      return rows.map(toRun);
    },
  };
}

export type Store = ReturnType<typeof createStore>;
