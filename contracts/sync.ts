// The account-sync workflow family's contract (workflows/syncAccount.ts): input, result,
// progress, signals and queries, the ids derived from an account, its task queue and the error
// types its activities throw. Shared by the workflow, activities, starters and workers; imports
// nothing but @temporalio/workflow's definition helpers, which are safe outside a workflow.
import { defineQuery, defineSignal } from '@temporalio/workflow';

/** The workflow's type name, as the server stores it (starters start it by function reference; listings filter on this). */
export const SYNC_WORKFLOW_TYPE = 'syncAccount';

/** Default task queue of the sync worker (SYNC_TASK_QUEUE overrides it, lib/config/sync.ts). */
export const SYNC_TASK_QUEUE = 'mailroom-sync';

/** Workflow id of an account's sync (a Schedule appends the scheduled time to it). */
export function syncWorkflowId(accountId: string): string {
  return `sync-account-${accountId}`;
}

/** Id of the Temporal Schedule that syncs an account periodically. */
export function syncScheduleId(accountId: string): string {
  return `sync-account-${accountId}`;
}

export const SYNC_SCHEDULE_PREFIX = 'sync-account-';

/** Tuning knobs; ids and numbers only. Defaults suit production. */
export interface SyncOptions {
  /** How long to wait for a new password after the server rejected the old one. Default 7 days. */
  authWaitSeconds?: number;
  /** Heartbeat timeout of the IMAP activities: how fast a dead worker's work is taken over. Default 30. */
  heartbeatTimeoutSeconds?: number;
  /** Continue-as-new after this many fetch activities, to keep history small. Default 100. */
  fetchCallsPerRun?: number;
  /**
   * Attempts of an IMAP activity before its folder is given up on for this run (network
   * errors, stalled or misbehaving servers; backoff 1 s doubling to 2 min). Default 8.
   */
  imapMaxAttempts?: number;
}

/** Where a continued-as-new run picks up: the remaining folders and the counts so far. */
export interface SyncResumeState {
  syncRunId: number;
  folders: FolderPlan[];
  progress: SyncProgress;
  syncNowRequested: boolean;
  /** Folders recorded as failed so far in this sync (absent in runs continued by older code). */
  failedFolders?: string[];
  /**
   * What syncNow asked for beyond the current pass (SYNC_EXCLUSIVE_PATCH): every folder, or
   * these. Absent in runs continued by older code (they carry syncNowRequested alone).
   */
  pending?: { all: boolean; folders: string[] };
}

export interface SyncAccountInput {
  userId: string;
  accountId: string;
  options?: SyncOptions;
  /**
   * Only these folders this run (the IDLE watcher asks for INBOX); absent: every folder. Runs
   * started by older code never set it.
   */
  folders?: string[];
  /** Set only by the workflow itself when it continues as new. */
  resume?: SyncResumeState;
}

export interface FolderPlan {
  path: string;
  uidValidity: number;
  /** New messages found on the server when the folder was prepared. */
  pending: number;
}

/** 'partial': some folders could not be synced this run (sync_errors says why), the others were. */
export type SyncStatus = 'running' | 'succeeded' | 'partial' | 'failed' | 'needs_attention' | 'skipped';

export interface SyncProgress {
  status: SyncStatus;
  /** waiting_for_password / waiting_for_token: the credential was refused, the sync waits for a new one. */
  phase: 'starting' | 'listing' | 'fetching' | 'waiting_for_password' | 'waiting_for_token' | 'finishing' | 'done';
  folder: string | null;
  foldersDone: number;
  foldersTotal: number;
  /** New messages stored so far in this sync. */
  messagesStored: number;
  /** New messages still to fetch (0 once the sync is done). */
  messagesPending: number;
  /** New messages the server had when the folders were listed (the progress bar's total). Absent in runs that continued from older code. */
  messagesFound?: number;
  /** Messages recorded in sync_errors and skipped (not stored, or stored without body). */
  messagesSkipped?: number;
  /** Folders that could not be synced in this run. */
  foldersFailed?: number;
  flagsUpdated: number;
  messagesDeleted: number;
  /** How many times the workflow continued as new. */
  continuedAsNew: number;
  /** Why the account needs attention, when it does. */
  reason: string | null;
}

export interface SyncResult {
  accountId: string;
  syncRunId: number | null;
  status: Exclude<SyncStatus, 'running' | 'failed'>;
  /** Needs-attention or skip reason. */
  reason: string | null;
  folders: number;
  messagesAdded: number;
  messagesUpdated: number;
  messagesDeleted: number;
  /** Messages recorded in sync_errors in this run (absent in results of older code). */
  messagesSkipped?: number;
  /** Folders that could not be synced in this run (status 'partial'). */
  foldersFailed?: number;
}

/** Sent by update-password after storing a new password: a waiting sync retries at once. */
export const passwordUpdatedSignal = defineSignal('passwordUpdated');
/** Sent by set-token (and any starter that stores new credentials): a waiting sync retries at once. */
export const credentialsUpdatedSignal = defineSignal('credentialsUpdated');
/**
 * What a syncNow signal asks for: one more pass over these folders, or (no folders, or no
 * argument, as older senders send it) over every folder.
 */
export interface SyncNowRequest {
  folders?: string[];
}

/** Asks a running sync for one more pass when it is done (mail arrived meanwhile). */
export const syncNowSignal = defineSignal<[SyncNowRequest?]>('syncNow');
export const progressQuery = defineQuery<SyncProgress>('progress');

/** Error types the activities throw; the workflow and retry policy key on them. */
export const ERR_AUTH = 'ImapAuthenticationFailed';
export const ERR_ACCOUNT_NOT_FOUND = 'AccountNotFound';
export const ERR_SECRET_KEY = 'SecretKeyError';
/** Cannot connect or log in at all (also: OAuth2 token endpoint unreachable): the whole run fails after retries. */
export const ERR_CONNECTION = 'ImapConnectionError';
export const ERR_OAUTH2_ENDPOINT = 'OAuth2EndpointError';
/**
 * Failures inside one folder's session (network errors mid-folder, a server that stalls or
 * drips, answers over our limits, endless responses): after the retries, that folder is
 * recorded in sync_errors and the sync goes on with the others.
 */
export const FOLDER_LEVEL_ERRORS = ['ImapNetworkError', 'ImapError', 'ImapStalled', 'ImapLimit', 'ImapProtocolError'];

/** Details of an ERR_AUTH failure: which credential was refused. */
export interface AuthFailureDetails {
  authMethod: 'password' | 'oauth2';
}
