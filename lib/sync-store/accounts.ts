// The account-sync repository (lib/sync-store/index.ts puts its parts together), users and
// accounts here: every function that touches accounts, folders, messages or
// sync runs takes the owning userId and has `user_id = $1` in its WHERE clause, so a wrong or
// forged account id from one user can never read or change another user's data: it simply
// matches nothing. The schema backs this up with (account_id, user_id) foreign keys.
//
// Checkpoints move only inside the transaction that stores (or deletes, or re-flags) the
// rows they cover, so a crash at any point leaves the database consistent and the next
// attempt resumes exactly where the last commit stopped.
import type { Pool } from 'pg';
import { withTransaction } from '../storage/db';
import { toWatcher } from './watchers';
import { serverText } from '../imap/server-text';
import { storableDate } from './storable';
import { ACCOUNT_COLUMNS, OAUTH2_SECRET_COLUMNS, toAccount, toOAuth2Secrets, toRun, validIds } from './rows';
import {
  OAuth2TokenStoreError,
  type Account,
  type AccountSummary,
  type NewAccount,
  type OAuth2Secrets,
  type User,
} from './types';

/** Longest reason kept for needs_attention. */
const REASON_LIMIT = 2000;

export function createAccountStore(pool: Pool) {
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
      const { rows } = await pool.query('SELECT id, email, created_at FROM users WHERE lower(email) = lower($1)', [
        email.trim(),
      ]);
      return rows[0] ? { id: rows[0].id, email: rows[0].email, createdAt: rows[0].created_at } : null;
    },

    /** Every user, for operator tools (reconcile) that then work user by user. */
    async listUsers(): Promise<User[]> {
      const { rows } = await pool.query('SELECT id, email, created_at FROM users ORDER BY created_at, id');
      return rows.map((r) => ({ id: r.id, email: r.email, createdAt: r.created_at }));
    },

    /** How many accounts (of all users) wait for a new password or token; a number, no user's data (the metrics gauge). */
    async countAccountsNeedingAttention(): Promise<number> {
      const { rows } = await pool.query(
        "SELECT count(*) AS n FROM mail_accounts WHERE status = 'needs_attention' AND enabled",
      );
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
      const { rows } = await pool.query(
        `SELECT ${ACCOUNT_COLUMNS} FROM mail_accounts a WHERE a.user_id = $1 AND a.id = $2`,
        [userId, accountId],
      );
      return rows[0] ? toAccount(rows[0]) : null;
    },

    /** The account with its credential ciphertexts (password, or OAuth2 secrets); only the sync activities need this. */
    async getAccountSecret(
      userId: string,
      accountId: string,
    ): Promise<{ account: Account; passwordEncrypted: string | null; oauth2: OAuth2Secrets | null } | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        `SELECT ${ACCOUNT_COLUMNS}, a.password_encrypted, ${OAUTH2_SECRET_COLUMNS} FROM mail_accounts a WHERE a.user_id = $1 AND a.id = $2`,
        [userId, accountId],
      );
      return rows[0]
        ? {
            account: toAccount(rows[0]),
            passwordEncrypted: rows[0].password_encrypted ?? null,
            oauth2: toOAuth2Secrets(rows[0]),
          }
        : null;
    },

    /**
     * Runs `refresh` with the account's OAuth2 secrets under a per-account lock (a transaction
     * advisory lock, so other writes to the account row are not blocked), and stores what it
     * returns. Concurrent refreshes therefore happen one after the other, and the second sees
     * the token the first stored (a provider that rotates refresh tokens would otherwise
     * invalidate one of them). Returns null when the account is not an OAuth2 account of this user.
     *
     * A rotated refresh token is written first and on its own: the provider may already have
     * invalidated the old one, so it must survive whatever fails after it. The access token
     * is only a cache: when it cannot be stored (`store.onCacheFailure` is told why) the refresh
     * token still commits and the caller still gets its result. When the refresh token itself
     * cannot be stored, nothing is written (the old one stays) and an OAuth2TokenStoreError
     * says so; the access token obtained with it is not handed out.
     */
    async withOAuth2Secrets<T>(
      userId: string,
      accountId: string,
      refresh: (secrets: OAuth2Secrets) => Promise<{
        result: T;
        store?: {
          refreshTokenEncrypted?: string;
          accessTokenEncrypted: string;
          accessTokenExpiresAt: Date;
          /** Told why the access token (only a cache) could not be stored. */
          onCacheFailure?: (err: unknown) => void;
        };
      }>,
    ): Promise<T | null> {
      if (!validIds(userId, accountId)) return null;
      let rotated = false;
      try {
        return await withTransaction(pool, async (db) => {
          await db.query("SELECT pg_advisory_xact_lock(hashtextextended('mailroom-oauth2:' || $1, 0))", [accountId]);
          const { rows } = await db.query(
            `SELECT ${OAUTH2_SECRET_COLUMNS} FROM mail_accounts a WHERE a.user_id = $1 AND a.id = $2 AND a.auth_method = 'oauth2'`,
            [userId, accountId],
          );
          const secrets = rows[0] ? toOAuth2Secrets(rows[0]) : null;
          if (!secrets) return null;
          const { result, store } = await refresh(secrets);
          if (!store) return result;
          if (store.refreshTokenEncrypted) {
            rotated = true;
            await db.query(
              `UPDATE mail_accounts SET oauth2_refresh_token_encrypted = $3, updated_at = now() WHERE user_id = $1 AND id = $2`,
              [userId, accountId, store.refreshTokenEncrypted],
            );
          }
          await db.query('SAVEPOINT access_token');
          try {
            // An expiry PostgreSQL cannot hold is stored as unknown: the next login refreshes.
            await db.query(
              `UPDATE mail_accounts SET oauth2_access_token_encrypted = $3, oauth2_access_token_expires_at = $4, updated_at = now()
             WHERE user_id = $1 AND id = $2`,
              [userId, accountId, store.accessTokenEncrypted, storableDate(store.accessTokenExpiresAt)],
            );
            await db.query('RELEASE SAVEPOINT access_token');
          } catch (err) {
            await db.query('ROLLBACK TO SAVEPOINT access_token');
            store.onCacheFailure?.(err);
            // The old access token is not reused in its place (it may be the one the server just refused).
            await db
              .query(
                `UPDATE mail_accounts SET oauth2_access_token_encrypted = NULL, oauth2_access_token_expires_at = NULL
                 WHERE user_id = $1 AND id = $2`,
                [userId, accountId],
              )
              .catch(() => db.query('ROLLBACK TO SAVEPOINT access_token'));
          }
          return result;
        });
      } catch (err) {
        if (!rotated) throw err;
        throw new OAuth2TokenStoreError(
          `The OAuth2 provider issued a new refresh token for account ${accountId} but storing it failed (${serverText(err, 500)}); the stored refresh token was kept and is tried again (if the provider has already invalidated it, the account will ask for a new one with npm run account:token)`,
          { cause: err },
        );
      }
    },

    /**
     * Stores a new OAuth2 refresh token (and, when the caller just obtained one, the access
     * token) and clears needs_attention, like updateAccountPassword. Returns false if no such
     * OAuth2 account.
     */
    async updateOAuth2Credentials(
      userId: string,
      accountId: string,
      c: {
        refreshTokenEncrypted: string;
        clientSecretEncrypted?: string | null;
        accessTokenEncrypted?: string | null;
        accessTokenExpiresAt?: Date | null;
        /** A new token endpoint (checked by the caller: lib/imap/oauth2.ts tokenUrlProblem). */
        tokenUrl?: string;
      },
    ): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query(
        `UPDATE mail_accounts SET oauth2_refresh_token_encrypted = $3, oauth2_token_url = COALESCE($8, oauth2_token_url),
                oauth2_client_secret_encrypted = CASE WHEN $4::boolean THEN $5 ELSE oauth2_client_secret_encrypted END,
                oauth2_access_token_encrypted = $6, oauth2_access_token_expires_at = $7,
                status = 'ok', status_reason = NULL,
                status_changed_at = CASE WHEN status <> 'ok' THEN now() ELSE status_changed_at END, updated_at = now()
         WHERE user_id = $1 AND id = $2 AND auth_method = 'oauth2'`,
        [
          userId,
          accountId,
          c.refreshTokenEncrypted,
          c.clientSecretEncrypted !== undefined,
          c.clientSecretEncrypted ?? null,
          c.accessTokenEncrypted ?? null,
          storableDate(c.accessTokenExpiresAt),
          c.tokenUrl ?? null,
        ],
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
                r.messages_deleted AS run_messages_deleted, r.messages_skipped AS run_messages_skipped, r.error AS run_error,
                w.workflow_id AS watch_workflow_id, w.state AS watch_state, w.state_changed_at AS watch_state_changed_at,
                w.detail AS watch_detail, w.last_event_at AS watch_last_event_at, w.connected AS watch_connected
         FROM mail_accounts a
         LEFT JOIN account_watchers w ON w.user_id = a.user_id AND w.account_id = a.id
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
        watcher:
          r.watch_workflow_id === null
            ? null
            : toWatcher({
                workflow_id: r.watch_workflow_id,
                state: r.watch_state,
                state_changed_at: r.watch_state_changed_at,
                detail: r.watch_detail,
                last_event_at: r.watch_last_event_at,
                connected: r.watch_connected,
              }),
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

    async updateAccountSettings(
      userId: string,
      accountId: string,
      changes: { enabled?: boolean; syncIntervalSeconds?: number },
    ): Promise<Account | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        `UPDATE mail_accounts a SET enabled = COALESCE($3, enabled), sync_interval_seconds = COALESCE($4, sync_interval_seconds), updated_at = now()
         WHERE a.user_id = $1 AND a.id = $2
         RETURNING ${ACCOUNT_COLUMNS}`,
        [userId, accountId, changes.enabled ?? null, changes.syncIntervalSeconds ?? null],
      );
      return rows[0] ? toAccount(rows[0]) : null;
    },

    /** The folders the account's IDLE watcher watches besides INBOX (its next look, within a poll). */
    async setWatchedFolders(userId: string, accountId: string, folders: string[]): Promise<Account | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        `UPDATE mail_accounts a SET watched_folders = $3, updated_at = now()
         WHERE a.user_id = $1 AND a.id = $2
         RETURNING ${ACCOUNT_COLUMNS}`,
        [userId, accountId, folders],
      );
      return rows[0] ? toAccount(rows[0]) : null;
    },

    /** Deletes the account with its folders, messages and runs. Returns false if no such account. */
    async removeAccount(userId: string, accountId: string): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query('DELETE FROM mail_accounts WHERE user_id = $1 AND id = $2', [
        userId,
        accountId,
      ]);
      return rowCount === 1;
    },

    async markNeedsAttention(userId: string, accountId: string, reason: string): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query(
        `UPDATE mail_accounts SET status = 'needs_attention', status_reason = $3,
                status_changed_at = CASE WHEN status <> 'needs_attention' THEN now() ELSE status_changed_at END, updated_at = now()
         WHERE user_id = $1 AND id = $2`,
        // Server text inside (an IMAP NO with a NUL, escape sequences): recording it must not fail.
        [userId, accountId, serverText(reason, REASON_LIMIT) || 'the credential was refused'],
      );
      return rowCount === 1;
    },
  };
}
