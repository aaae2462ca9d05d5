// Account-sync activities, created by a factory that receives the pg Pool and the keyring
// (dependency injection as in the samples' activities-dependency-injection): the worker
// builds them once, tests build them against their own database.
//
// Activities receive ids only and load what they need (account, password) themselves, so
// passwords and message bodies never enter workflow history. Each IMAP activity opens its
// own connection: an activity may be retried on another worker at any time.
import { ApplicationFailure } from '@temporalio/activity';
import type { ImapFlow } from 'imapflow';
import type { Pool } from 'pg';
import type pino from 'pino';
import { randomUUID } from 'node:crypto';
import { decryptSecret, encryptSecret, SecretKeyError, type Keyring } from '../lib/crypto';
import { componentLogger } from '../lib/logger';
import type { SyncConfig } from '../lib/sync-config';
import { ERR_ACCOUNT_NOT_FOUND, ERR_AUTH, ERR_SECRET_KEY, type FolderPlan } from '../workflows/sync-definitions';
import {
  closeImap,
  connectImap,
  describeEndpoint,
  examineFolder,
  fetchFlags,
  fetchMessages,
  imapErrorText,
  isAuthenticationFailure,
  isTransientImapError,
  listFolders,
  searchUids,
  uidsAfter,
  type ImapEndpoint,
} from './imap';
import { createStore, UidValidityMismatch, type Account, type Store, type SyncRunStatus } from './store';
import { activityContext, keepAlive } from './heartbeat';

export interface SyncActivityDeps {
  pool: Pool;
  keyring: Keyring;
  config: Pick<SyncConfig, 'batchSize' | 'batchMaxBytes' | 'maxMessageBytes' | 'batchesPerActivity' | 'batchPauseMs' | 'imapConnectTimeoutMs' | 'imapSocketTimeoutMs'>;
  logger?: pino.Logger;
}

/** Context the password ciphertext is bound to (AES-GCM additional data). */
export function accountSecretContext(accountId: string): string {
  return `mailroom:mail_accounts:${accountId}`;
}

export interface AccountRef {
  userId: string;
  accountId: string;
}

export interface BeginSyncResult {
  syncRunId: number | null;
  state: 'ready' | 'needs_attention' | 'disabled' | 'missing';
  reason: string | null;
}

export interface PrepareFoldersResult {
  folders: FolderPlan[];
  condstore: boolean;
  flagsUpdated: number;
  messagesDeleted: number;
  foldersReset: string[];
  foldersRemoved: string[];
}

export interface FetchNewResult {
  stored: number;
  lastUid: number;
  remaining: number;
  done: boolean;
  uidValidityChanged: boolean;
}

interface FetchHeartbeat {
  folder: string;
  lastUid: number;
  stored: number;
}

export function createSyncActivities(deps: SyncActivityDeps) {
  const store: Store = createStore(deps.pool);
  const cfg = deps.config;
  const log = deps.logger ?? componentLogger('sync-activities');

  async function pause(ms: number): Promise<void> {
    if (ms <= 0) return;
    const ctx = activityContext();
    if (ctx) await ctx.sleep(ms); // rejects when the activity is cancelled
    else await new Promise((r) => setTimeout(r, ms));
  }

  function accountMissing(ref: AccountRef): never {
    throw ApplicationFailure.nonRetryable(
      `Account ${ref.accountId} does not exist for user ${ref.userId} (removed while syncing?); nothing to sync. Run starters/reconcile-schedules.ts to drop its schedule.`,
      ERR_ACCOUNT_NOT_FOUND,
    );
  }

  /** Loads the account, decrypts its password and logs in; classifies what goes wrong. */
  async function open(ref: AccountRef): Promise<{ client: ImapFlow; account: Account; endpoint: ImapEndpoint }> {
    const found = await store.getAccountSecret(ref.userId, ref.accountId);
    if (!found) accountMissing(ref);
    const { account } = found;
    const endpoint: ImapEndpoint = { host: account.imapHost, port: account.imapPort, tls: account.imapTls, user: account.imapUser };
    let password: string;
    try {
      password = decryptSecret(deps.keyring, found.passwordEncrypted, accountSecretContext(account.id));
    } catch (err) {
      if (err instanceof SecretKeyError) {
        throw ApplicationFailure.nonRetryable(
          `Cannot decrypt the IMAP password of account ${account.id} (${describeEndpoint(endpoint)}): ${err.message}. Fix MAILROOM_SECRET_KEYS on the sync worker, or set the password again with starters/update-password.ts.`,
          ERR_SECRET_KEY,
        );
      }
      throw err;
    }
    try {
      const client = await connectImap(endpoint, password, { connectTimeoutMs: cfg.imapConnectTimeoutMs, socketTimeoutMs: cfg.imapSocketTimeoutMs }, (err) =>
        log.warn({ accountId: account.id, err: imapErrorText(err) }, 'IMAP connection error'),
      );
      // Cancellation (account removed, operator) reaches the activity through heartbeats;
      // closing the connection ends whatever IMAP command is running.
      activityContext()?.cancellationSignal.addEventListener('abort', () => client.close(), { once: true });
      return { client, account, endpoint };
    } catch (err) {
      if (isAuthenticationFailure(err)) {
        const reason = `IMAP server ${account.imapHost} rejected the login of ${account.imapUser}: ${imapErrorText(err)}`;
        // Recorded before the workflow even sees the failure, so list-accounts shows it.
        await store.markNeedsAttention(ref.userId, account.id, reason);
        throw ApplicationFailure.nonRetryable(
          `${reason}. Not retrying with the same password; account ${account.id} is marked needs_attention. Set the new password with: tsx starters/update-password.ts --user <owner email> --account ${account.id}`,
          ERR_AUTH,
        );
      }
      const kind = isTransientImapError(err) ? 'network error or server timeout, will retry with backoff' : 'connection failed';
      throw ApplicationFailure.retryable(
        `Cannot connect to IMAP server for account ${account.id} (${describeEndpoint(endpoint)}): ${imapErrorText(err)} (${kind}). Check the host, port and TLS setting if this persists.`,
        'ImapConnectionError',
      );
    }
  }

  /** Adds the account and folder to errors from the middle of a session. */
  function imapFailure(account: Account, folder: string | null, err: unknown): Error {
    if (err instanceof ApplicationFailure || err instanceof UidValidityMismatch) return err as Error;
    const where = folder ? ` in folder "${folder}"` : '';
    return ApplicationFailure.retryable(
      `IMAP error for account ${account.id} (${account.imapUser}@${account.imapHost})${where}: ${imapErrorText(err)}`,
      isTransientImapError(err) ? 'ImapNetworkError' : 'ImapError',
    );
  }

  async function prepare(input: AccountRef & { syncRunId: number; only?: string[] }, beat: (details: unknown) => void): Promise<PrepareFoldersResult> {
    const { client, account } = await open(input);
    const result: PrepareFoldersResult = { folders: [], condstore: false, flagsUpdated: 0, messagesDeleted: 0, foldersReset: [], foldersRemoved: [] };
    let current: string | null = null;
    try {
      result.condstore = client.enabled.has('CONDSTORE');
      const listed = await listFolders(client);
      if (!input.only) {
        const removed = await store.removeFoldersExcept(input.userId, input.accountId, listed.map((f) => f.path), input.syncRunId);
        result.foldersRemoved = removed.folders;
        result.messagesDeleted += removed.messages;
      }
      const wanted = input.only ? listed.filter((f) => input.only?.includes(f.path)) : listed;
      for (const folder of wanted) {
        current = folder.path;
        beat({ folder: folder.path });
        let box;
        try {
          box = await examineFolder(client, folder.path);
        } catch (err) {
          if ((err as { mailboxMissing?: boolean }).mailboxMissing) continue; // deleted since LIST
          throw err;
        }
        const begun = await store.beginFolder(input.userId, input.accountId, folder.path, box.uidValidity, input.syncRunId);
        if (begun.reset) {
          result.foldersReset.push(folder.path);
          result.messagesDeleted += begun.dropped;
          log.info({ accountId: account.id, folder: folder.path, uidValidity: box.uidValidity }, 'UIDVALIDITY changed: folder resynchronised from scratch');
        }
        const lastUid = begun.state.lastUid;
        if (lastUid > 0 && box.exists > 0) {
          const onServer = await searchUids(client, `1:${lastUid}`);
          result.messagesDeleted += await store.deleteMissingMessages(input.userId, input.accountId, folder.path, box.uidValidity, onServer, lastUid, input.syncRunId);
          const since = result.condstore && box.highestModseq && begun.state.highestModseq ? begun.state.highestModseq : undefined;
          const unchanged = since !== undefined && since === box.highestModseq;
          if (!unchanged) {
            const changes = await fetchFlags(client, `1:${lastUid}`, since, () => beat({ folder: folder.path }));
            result.flagsUpdated += await store.applyFlagChanges(input.userId, input.accountId, folder.path, box.uidValidity, changes, box.highestModseq, input.syncRunId);
          }
        } else {
          if (lastUid > 0) {
            result.messagesDeleted += await store.deleteMissingMessages(input.userId, input.accountId, folder.path, box.uidValidity, [], lastUid, input.syncRunId);
          }
          await store.applyFlagChanges(input.userId, input.accountId, folder.path, box.uidValidity, [], box.highestModseq, input.syncRunId);
        }
        const pending = box.exists > 0 && box.uidNext > lastUid + 1 ? (await uidsAfter(client, lastUid)).length : 0;
        result.folders.push({ path: folder.path, uidValidity: box.uidValidity, pending });
      }
      return result;
    } catch (err) {
      throw imapFailure(account, current, err);
    } finally {
      await closeImap(client);
    }
  }

  async function fetchNew(input: AccountRef & { syncRunId: number; folder: string; uidValidity: number }, beat: (details: unknown) => void): Promise<FetchNewResult> {
    // Counted by an earlier attempt that died (only for progress; sync_runs counts are exact).
    const previous = activityContext()?.info.heartbeatDetails as FetchHeartbeat | undefined;
    const priorStored = previous?.folder === input.folder ? previous.stored : 0;
    const state = await store.getFolderState(input.userId, input.accountId, input.folder);
    if (!state || state.uidValidity !== input.uidValidity) {
      return { stored: priorStored, lastUid: state?.lastUid ?? 0, remaining: 0, done: false, uidValidityChanged: true };
    }
    const { client, account, endpoint } = await open(input);
    try {
      const box = await examineFolder(client, input.folder);
      if (box.uidValidity !== input.uidValidity) {
        return { stored: priorStored, lastUid: state.lastUid, remaining: 0, done: false, uidValidityChanged: true };
      }
      let lastUid = state.lastUid;
      const uids = box.exists > 0 && box.uidNext > lastUid + 1 ? await uidsAfter(client, lastUid) : [];
      let index = 0;
      let stored = 0;
      for (let batch = 0; index < uids.length && batch < cfg.batchesPerActivity; batch++) {
        const wanted = uids.slice(index, index + cfg.batchSize);
        const fetched = await fetchMessages(client, endpoint, input.folder, input.uidValidity, wanted, cfg, () =>
          beat({ folder: input.folder, lastUid, stored: priorStored + stored } satisfies FetchHeartbeat),
        );
        const saved = await store.storeMessages(input.userId, input.accountId, input.folder, input.uidValidity, fetched.messages, fetched.coveredUpTo, input.syncRunId);
        lastUid = saved.lastUid;
        stored += saved.inserted;
        index += uids.slice(index).findIndex((u) => u === fetched.coveredUpTo) + 1;
        beat({ folder: input.folder, lastUid, stored: priorStored + stored } satisfies FetchHeartbeat);
        if (index < uids.length) await pause(cfg.batchPauseMs);
      }
      return { stored: priorStored + stored, lastUid, remaining: uids.length - index, done: index >= uids.length, uidValidityChanged: false };
    } catch (err) {
      if (err instanceof UidValidityMismatch) return { stored: priorStored, lastUid: state.lastUid, remaining: 0, done: false, uidValidityChanged: true };
      throw imapFailure(account, input.folder, err);
    } finally {
      await closeImap(client);
    }
  }

  return {
    /** Opens a sync_runs record and tells the workflow whether the account can be synced now. */
    async beginSync(input: AccountRef & { workflowId: string; workflowRunId: string }): Promise<BeginSyncResult> {
      const account = await store.getAccount(input.userId, input.accountId);
      if (!account) return { syncRunId: null, state: 'missing', reason: `account ${input.accountId} does not exist` };
      if (!account.enabled) return { syncRunId: null, state: 'disabled', reason: `account ${input.accountId} is disabled` };
      const syncRunId = await store.beginSyncRun(input.userId, input.accountId, input.workflowId, input.workflowRunId);
      if (syncRunId === null) return { syncRunId: null, state: 'missing', reason: `account ${input.accountId} does not exist` };
      if (account.status === 'needs_attention') return { syncRunId, state: 'needs_attention', reason: account.statusReason };
      return { syncRunId, state: 'ready', reason: null };
    },

    /**
     * Lists the server's folders and brings each one's stored state up to date except for new
     * mail: UIDVALIDITY changes (folder resynchronised from scratch), flag changes (CONDSTORE
     * CHANGEDSINCE when available, else all flags compared) and messages deleted on the
     * server. Returns, per folder, how many new messages are waiting.
     */
    async prepareFolders(input: AccountRef & { syncRunId: number; only?: string[] }): Promise<PrepareFoldersResult> {
      return keepAlive((beat) => prepare(input, beat));
    },

    /**
     * Fetches messages with UIDs above the folder's checkpoint, in batches; each batch is
     * stored and the checkpoint advanced in one transaction, then heartbeated. A retry (for
     * instance after the worker was killed) starts from the committed checkpoint, so nothing
     * is stored twice and nothing is skipped.
     */
    async fetchNewMessages(input: AccountRef & { syncRunId: number; folder: string; uidValidity: number }): Promise<FetchNewResult> {
      return keepAlive((beat) => fetchNew(input, beat));
    },

    /** Closes the sync_runs record; its counters were kept up to date by each transaction. */
    async finishSync(input: AccountRef & { syncRunId: number; status: Exclude<SyncRunStatus, 'running'>; folders?: number; error?: string | null }) {
      const run = await store.finishSyncRun(input.userId, input.syncRunId, { status: input.status, folders: input.folders, error: input.error });
      return run
        ? { messagesAdded: run.messagesAdded, messagesUpdated: run.messagesUpdated, messagesDeleted: run.messagesDeleted, folders: run.folders }
        : null;
    },
  };
}

export type SyncActivities = ReturnType<typeof createSyncActivities>;

export interface AccountSettings {
  imapHost: string;
  imapPort: number;
  imapTls: boolean;
  imapUser: string;
  syncIntervalSeconds: number;
  enabled?: boolean;
}

/** Adds an account for a user, encrypting the password (bound to the new account's id). */
export async function addAccountWithPassword(store: Store, keyring: Keyring, userId: string, settings: AccountSettings, password: string): Promise<Account> {
  const id = randomUUID();
  return store.addAccount(userId, { id, ...settings, passwordEncrypted: encryptSecret(keyring, password, accountSecretContext(id)) });
}

/** Stores a new password for the account and clears needs_attention. */
export async function setAccountPassword(store: Store, keyring: Keyring, userId: string, accountId: string, password: string): Promise<boolean> {
  return store.updateAccountPassword(userId, accountId, encryptSecret(keyring, password, accountSecretContext(accountId)));
}
