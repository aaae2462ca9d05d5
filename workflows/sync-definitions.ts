// The account-sync workflow's contract: input, result, progress, signals and queries, and
// the ids derived from an account. Shared by the workflow, activities and starters; imports
// nothing but @temporalio/workflow's definition helpers, which are safe outside a workflow.
import { defineQuery, defineSignal } from '@temporalio/workflow';

export const SYNC_WORKFLOW_TYPE = 'syncAccount';

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
}

/** Where a continued-as-new run picks up: the remaining folders and the counts so far. */
export interface SyncResumeState {
  syncRunId: number;
  folders: FolderPlan[];
  progress: SyncProgress;
  syncNowRequested: boolean;
}

export interface SyncAccountInput {
  userId: string;
  accountId: string;
  options?: SyncOptions;
  /** Set only by the workflow itself when it continues as new. */
  resume?: SyncResumeState;
}

export interface FolderPlan {
  path: string;
  uidValidity: number;
  /** New messages found on the server when the folder was prepared. */
  pending: number;
}

export type SyncStatus = 'running' | 'succeeded' | 'failed' | 'needs_attention' | 'skipped';

export interface SyncProgress {
  status: SyncStatus;
  phase: 'starting' | 'listing' | 'fetching' | 'waiting_for_password' | 'finishing' | 'done';
  folder: string | null;
  foldersDone: number;
  foldersTotal: number;
  /** New messages stored so far in this sync. */
  messagesStored: number;
  /** New messages the server had when the folders were listed (the progress bar's total). */
  messagesPending: number;
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
}

/** Sent by update-password after storing a new password: a waiting sync retries at once. */
export const passwordUpdatedSignal = defineSignal('passwordUpdated');
/** Asks a running sync for one more pass when it is done (mail arrived meanwhile). */
export const syncNowSignal = defineSignal('syncNow');
export const progressQuery = defineQuery<SyncProgress>('progress');

/** Error types the activities throw; the workflow and retry policy key on them. */
export const ERR_AUTH = 'ImapAuthenticationFailed';
export const ERR_ACCOUNT_NOT_FOUND = 'AccountNotFound';
export const ERR_SECRET_KEY = 'SecretKeyError';
