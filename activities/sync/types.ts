// What the account activities share: their injected dependencies, the account reference every
// activity receives, and the results the sync workflow records. Ids and counts only.
import type { Client } from '@temporalio/client';
import type { ImapFlow } from 'imapflow';
import type { Pool } from 'pg';
import type pino from 'pino';
import type { Keyring } from '../../lib/sync-store/crypto';
import type { SyncConfig } from '../../lib/config/sync';
import type { FolderPlan } from '../../contracts/sync';
import type { ImapEndpoint } from '../../lib/imap/client';
import type { Account } from '../../lib/sync-store';

export interface SyncActivityDeps {
  pool: Pool;
  keyring: Keyring;
  config: Pick<
    SyncConfig,
    | 'batchSize'
    | 'batchMaxBytes'
    | 'maxMessageBytes'
    | 'batchesPerActivity'
    | 'batchPauseMs'
    | 'imapConnectTimeoutMs'
    | 'imapSocketTimeoutMs'
  > &
    Partial<
      Pick<
        SyncConfig,
        | 'activityDeadlineMs'
        | 'oauth2RefreshMarginMs'
        | 'oauth2TimeoutMs'
        | 'events'
        | 'taskQueue'
        | 'watchCoalesceMs'
        | 'watchMaxIdleSeconds'
        | 'watchReissueIdleSeconds'
        | 'watchReconnectWithinSeconds'
        | 'watchFolderPollSeconds'
        | 'watchNotify'
        | 'runsKeepDays'
        | 'connectionsPerAccount'
        | 'sessionReuseMs'
      >
    >;
  logger?: pino.Logger;
  /**
   * Starts new-message event workflows (activities/sync/events.ts) and the IDLE watcher's sync
   * requests; the worker passes a client on its connection (default for the watcher: the
   * activity context's).
   */
  temporal?: Client;
}

export interface AccountRef {
  userId: string;
  accountId: string;
}

export interface BeginSyncResult {
  syncRunId: number | null;
  /** 'busy' (asked with `exclusive` only): another sync of the account is running, `running` names it. */
  state: 'ready' | 'needs_attention' | 'disabled' | 'missing' | 'busy';
  reason: string | null;
  /** How the account logs in (absent in results recorded by older code: password). */
  authMethod?: 'password' | 'oauth2';
  /** The sync that holds the account (state 'busy'). */
  running?: { workflowId: string; syncRunId: number };
}

export interface PrepareFoldersResult {
  folders: FolderPlan[];
  condstore: boolean;
  flagsUpdated: number;
  messagesDeleted: number;
  foldersReset: string[];
  foldersRemoved: string[];
  /** Folders that could not be prepared (recorded in sync_errors); not fetched this run. */
  foldersFailed?: string[];
}

export interface FetchNewResult {
  stored: number;
  /** Messages recorded as skipped (sync_errors) by this call. */
  skipped?: number;
  lastUid: number;
  remaining: number;
  done: boolean;
  uidValidityChanged: boolean;
}

/** An open IMAP session of an activity: reconnects after the server or the watch closed it. */
export interface Session {
  client: ImapFlow;
  account: Account;
  endpoint: ImapEndpoint;
  /** The connection is closed or in an unknown state (abandoned FETCH, refused literal). */
  dead: boolean;
  /** Stops the progress watch from watching this connection. */
  unguard: () => void;
  /** The sync run the session serves: only that run's next activity may take it over (session.ts). */
  syncRunId?: number;
  /** OAuth2: the login's token is fresh enough to reuse the session until then (login.ts). */
  validUntil?: number;
}
