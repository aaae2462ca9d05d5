// IMAP IDLE watchers' rows (table account_watchers, migration 004): the state account:list
// shows, and the small handshake that keeps an account within its connection budget when only
// one IMAP connection is allowed (a sync asks the watcher to let go, and waits until it has).
// Every query takes the owning userId, like the rest of the store.
import type { Pool } from 'pg';
import type { WatcherState } from '../../contracts/watch';
import { folderKey, serverText } from '../imap/server-text';
import { validIds, type Row } from './rows';
import type { WatcherInfo } from './types';

/** A watcher whose heartbeat is older than this is dead (worker killed): the budget ignores its connection. */
export const WATCHER_STALE_SECONDS = 60;

const DETAIL_LIMIT = 500;

export function toWatcher(r: Row): WatcherInfo {
  return {
    workflowId: String(r.workflow_id),
    state: r.state as WatcherState,
    stateChangedAt: r.state_changed_at as Date,
    detail: (r.detail as string | null) ?? null,
    lastEventAt: (r.last_event_at as Date | null) ?? null,
    connected: Boolean(r.connected),
  };
}

export function createWatcherStore(pool: Pool) {
  return {
    /**
     * Records the watcher's state (and whether it holds a connection). Creates the row on first
     * use; an account that no longer exists matches nothing (false). The state's time moves only
     * when the state changes, so account:list says "idle since ...".
     */
    async setWatcherState(
      userId: string,
      accountId: string,
      change: { workflowId: string; state: WatcherState; connected: boolean; detail?: string | null },
    ): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rowCount } = await pool.query(
        `INSERT INTO account_watchers (account_id, user_id, workflow_id, state, detail, connected)
         SELECT id, user_id, $3, $4, $5, $6 FROM mail_accounts WHERE user_id = $1 AND id = $2
         ON CONFLICT (account_id) DO UPDATE SET
           workflow_id = EXCLUDED.workflow_id,
           state_changed_at = CASE WHEN account_watchers.state <> EXCLUDED.state THEN now() ELSE account_watchers.state_changed_at END,
           state = EXCLUDED.state, detail = EXCLUDED.detail, connected = EXCLUDED.connected,
           heartbeat_at = now()`,
        [
          userId,
          accountId,
          change.workflowId,
          change.state,
          change.detail ? serverText(change.detail, DETAIL_LIMIT) : null,
          change.connected,
        ],
      );
      return rowCount === 1;
    },

    /**
     * The watcher is about to connect: marks the connection as held under `token` (one per
     * claim) and, in the same statement (one row lock, so a sync asking at the same moment is
     * ordered before or after), says whether a sync asked for it first. null: the account is gone.
     */
    async claimWatcherConnection(
      userId: string,
      accountId: string,
      workflowId: string,
      token: string,
    ): Promise<{ releaseRequested: boolean } | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        `INSERT INTO account_watchers (account_id, user_id, workflow_id, connected, connection_token)
         SELECT id, user_id, $3, true, $4 FROM mail_accounts WHERE user_id = $1 AND id = $2
         ON CONFLICT (account_id) DO UPDATE SET connected = true, workflow_id = EXCLUDED.workflow_id,
           connection_token = EXCLUDED.connection_token, heartbeat_at = now()
         RETURNING release_requested_at IS NOT NULL AS release_requested`,
        [userId, accountId, workflowId, token],
      );
      return rows[0] ? { releaseRequested: Boolean(rows[0].release_requested) } : null;
    },

    /**
     * The watcher closed the connection it claimed with `token` (its state stays as recorded).
     * A claim made since by another watcher (one that replaced this one while it was stopping)
     * is left as it is: that watcher holds a connection now.
     */
    async releaseWatcherConnection(userId: string, accountId: string, token: string): Promise<void> {
      if (!validIds(userId, accountId)) return;
      await pool.query(
        `UPDATE account_watchers SET connected = false, connection_token = NULL, heartbeat_at = now()
         WHERE user_id = $1 AND account_id = $2 AND connection_token = $3`,
        [userId, accountId, token],
      );
    },

    /** The server reported a change now. */
    async recordWatcherEvent(userId: string, accountId: string): Promise<void> {
      if (!validIds(userId, accountId)) return;
      await pool.query(
        'UPDATE account_watchers SET last_event_at = now(), heartbeat_at = now() WHERE user_id = $1 AND account_id = $2',
        [userId, accountId],
      );
    },

    /**
     * Keeps the row fresh while the watcher holds its connection; says whether a sync asked for
     * the connection, and the account's watched folders as they are now (a change ends the watch).
     */
    async watcherHeartbeat(
      userId: string,
      accountId: string,
    ): Promise<{ releaseRequested: boolean; watchedFolders?: string[] }> {
      if (!validIds(userId, accountId)) return { releaseRequested: false };
      const { rows } = await pool.query(
        `UPDATE account_watchers w SET heartbeat_at = now() FROM mail_accounts a
         WHERE w.user_id = $1 AND w.account_id = $2 AND a.id = w.account_id
         RETURNING w.release_requested_at IS NOT NULL AS release_requested, a.watched_folders`,
        [userId, accountId],
      );
      if (!rows[0]) return { releaseRequested: false };
      return {
        releaseRequested: Boolean(rows[0].release_requested),
        watchedFolders: (rows[0].watched_folders as string[] | null) ?? [],
      };
    },

    /**
     * A sync that may not open a connection beside the watcher's asks for it (the request stays
     * until the watcher sees no sync running): returns true while a live watcher still holds its
     * connection (the caller waits and asks again), false once none does.
     */
    async requestWatcherRelease(userId: string, accountId: string): Promise<boolean> {
      if (!validIds(userId, accountId)) return false;
      const { rows } = await pool.query(
        `UPDATE account_watchers SET release_requested_at = COALESCE(release_requested_at, now())
         WHERE user_id = $1 AND account_id = $2
         RETURNING connected AND heartbeat_at > now() - make_interval(secs => $3) AS held`,
        [userId, accountId, WATCHER_STALE_SECONDS],
      );
      return Boolean(rows[0]?.held);
    },

    /** The sync that asked for the connection is done with it. */
    async clearWatcherRelease(userId: string, accountId: string): Promise<void> {
      if (!validIds(userId, accountId)) return;
      await pool.query(
        'UPDATE account_watchers SET release_requested_at = NULL WHERE user_id = $1 AND account_id = $2',
        [userId, accountId],
      );
    },

    async getWatcher(userId: string, accountId: string): Promise<WatcherInfo | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query('SELECT * FROM account_watchers WHERE user_id = $1 AND account_id = $2', [
        userId,
        accountId,
      ]);
      return rows[0] ? toWatcher(rows[0]) : null;
    },

    /** Stored messages of one folder generation: compared with the server's EXISTS after a reconnect. */
    async countFolderMessages(userId: string, accountId: string, folder: string, uidValidity: number): Promise<number> {
      if (!validIds(userId, accountId)) return 0;
      const { rows } = await pool.query(
        'SELECT count(*) AS n FROM messages WHERE user_id = $1 AND account_id = $2 AND folder = $3 AND uidvalidity = $4',
        [userId, accountId, folderKey(folder), uidValidity],
      );
      return Number(rows[0].n);
    },
  };
}
