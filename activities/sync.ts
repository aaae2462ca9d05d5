// Account-sync activities, created by a factory that receives the pg Pool and the keyring
// (dependency injection as in the samples' activities-dependency-injection): the worker
// builds them once, tests build them against their own database.
//
// Activities receive ids only and load what they need (account, password or OAuth2 tokens)
// themselves, so credentials and message bodies never enter workflow history. Each IMAP
// activity opens its own connection: an activity may be retried on another worker at any time.
//
// Bounded by us, not by the server: imapflow refuses literals above SYNC_MAX_MESSAGE_BYTES
// (the server's size claims are not trusted), answers to FETCH are checked against what was
// asked, and heartbeats come from progress (messages or bytes moved, lib/temporal/heartbeat.ts):
// a server that stalls or drips is given up on and the attempt retried with backoff. A message
// that cannot be stored is recorded in sync_errors and skipped; the rest of its batch commits.
import { ApplicationFailure } from '@temporalio/activity';
import type { FetchMessageObject, ImapFlow } from 'imapflow';
import type { Pool } from 'pg';
import type pino from 'pino';
import { decryptSecret, encryptSecret, SecretKeyError, type Keyring } from '../lib/sync-store/crypto';
import { componentLogger } from '../lib/observability/logger';
import {
  OAuth2ConfigError,
  OAuth2EndpointError,
  OAuth2GrantError,
  refreshAccessToken,
  tokenStillValid,
} from '../lib/imap/oauth2';
import { folderKeyClashes, folderLabel, serverText } from '../lib/imap/server-text';
import type { SyncConfig } from '../lib/config/sync';
import {
  announcedSize,
  folderDataProblem,
  formatBytes,
  isImapLimitError,
  SyncStalledError,
} from '../lib/imap/sync-errors';
import {
  syncCredentialRejections,
  syncFolderErrors,
  syncMessagesSkipped,
  syncTokenRefreshes,
} from '../lib/observability/sync-metrics';
import {
  ERR_ACCOUNT_NOT_FOUND,
  ERR_AUTH,
  ERR_CONNECTION,
  ERR_OAUTH2_ENDPOINT,
  ERR_SECRET_KEY,
  type AuthFailureDetails,
  type FolderPlan,
} from '../contracts/sync';
import {
  closeImap,
  connectImap,
  connectionError,
  describeEndpoint,
  examineFolder,
  fetchFlags,
  fetchMetadata,
  fetchSources,
  ImapProtocolError,
  imapErrorText,
  isAuthenticationFailure,
  isTransientImapError,
  listFolders,
  searchUids,
  toNewMessage,
  uidSet,
  uidsAfter,
  type ImapAuth,
  type ImapEndpoint,
} from '../lib/imap/client';
import { accountSecretContext, oauth2SecretContext } from '../lib/sync-store/credentials';
import {
  createStore,
  OAuth2TokenStoreError,
  UidValidityMismatch,
  type Account,
  type NewMessage,
  type OAuth2Settings,
  type SkippedMessage,
  type Store,
  type SyncRunStatus,
} from '../lib/sync-store';
import { activityContext, heartbeatOnProgress, type ProgressWatch } from '../lib/temporal/heartbeat';

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
    Partial<Pick<SyncConfig, 'activityDeadlineMs' | 'oauth2RefreshMarginMs' | 'oauth2TimeoutMs'>>;
  logger?: pino.Logger;
}

export interface AccountRef {
  userId: string;
  accountId: string;
}

export interface BeginSyncResult {
  syncRunId: number | null;
  state: 'ready' | 'needs_attention' | 'disabled' | 'missing';
  reason: string | null;
  /** How the account logs in (absent in results recorded by older code: password). */
  authMethod?: 'password' | 'oauth2';
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

interface FetchHeartbeat {
  folder: string;
  lastUid: number;
  stored: number;
  skipped?: number;
}

/** An open IMAP session of an activity: reconnects after the server or the watch closed it. */
interface Session {
  client: ImapFlow;
  account: Account;
  endpoint: ImapEndpoint;
  /** The connection is closed or in an unknown state (abandoned FETCH, refused literal). */
  dead: boolean;
  /** Stops the progress watch from watching this connection. */
  unguard: () => void;
}

export function createSyncActivities(deps: SyncActivityDeps) {
  const store: Store = createStore(deps.pool);
  const cfg = deps.config;
  const log = deps.logger ?? componentLogger('sync-activities');
  const refreshMarginMs = cfg.oauth2RefreshMarginMs ?? 300_000;
  const deadlineMs = cfg.activityDeadlineMs ?? 1_800_000;

  async function pause(ms: number): Promise<void> {
    if (ms <= 0) return;
    const ctx = activityContext();
    if (ctx)
      await ctx.sleep(ms); // rejects when the activity is cancelled
    else await new Promise((r) => setTimeout(r, ms));
  }

  function accountMissing(ref: AccountRef): never {
    throw ApplicationFailure.nonRetryable(
      `Account ${ref.accountId} does not exist for user ${ref.userId} (removed while syncing?); nothing to sync. Run npm run sync:reconcile to drop its schedule.`,
      ERR_ACCOUNT_NOT_FOUND,
    );
  }

  function decrypt(
    account: Account,
    endpoint: ImapEndpoint,
    ciphertext: string,
    context: string,
    what: string,
    fix: string,
  ): string {
    try {
      return decryptSecret(deps.keyring, ciphertext, context);
    } catch (err) {
      if (err instanceof SecretKeyError) {
        throw ApplicationFailure.nonRetryable(
          `Cannot decrypt the ${what} of account ${account.id} (${describeEndpoint(endpoint)}): ${err.message}. Fix MAILROOM_SECRET_KEYS on the sync worker, or ${fix}.`,
          ERR_SECRET_KEY,
        );
      }
      throw err;
    }
  }

  /** The credential was refused for good: recorded at once (list-accounts, the metric), then the workflow waits. */
  async function credentialRefused(ref: AccountRef, account: Account, reason: string, fix: string): Promise<never> {
    await store.markNeedsAttention(ref.userId, account.id, reason);
    syncCredentialRejections.inc({ method: account.authMethod });
    throw ApplicationFailure.create({
      message: `${reason}. Not retrying with the same credential; account ${account.id} is marked needs_attention. ${fix}`,
      type: ERR_AUTH,
      nonRetryable: true,
      details: [{ authMethod: account.authMethod } satisfies AuthFailureDetails],
    });
  }

  /**
   * An OAuth2 access token for a login: the stored one while it outlives the refresh margin,
   * otherwise (or when `rejected`, the token the server just refused) a fresh one from the
   * provider, stored encrypted for the next login. Never logged, never returned to a workflow.
   */
  async function accessToken(
    ref: AccountRef,
    account: Account & { oauth2: OAuth2Settings },
    endpoint: ImapEndpoint,
    rejected?: string,
  ): Promise<{ token: string; fresh: boolean }> {
    const fix = 'give a new refresh token with npm run account:token';
    const got = await store.withOAuth2Secrets(ref.userId, account.id, async (secrets) => {
      if (secrets.accessTokenEncrypted && tokenStillValid(secrets.accessTokenExpiresAt, refreshMarginMs)) {
        const current = decrypt(
          account,
          endpoint,
          secrets.accessTokenEncrypted,
          oauth2SecretContext(account.id, 'access_token'),
          'OAuth2 access token',
          fix,
        );
        // Another attempt may have refreshed it since this one was refused.
        if (current !== rejected) return { result: { token: current, fresh: rejected !== undefined } };
      }
      const refreshToken = decrypt(
        account,
        endpoint,
        secrets.refreshTokenEncrypted,
        oauth2SecretContext(account.id, 'refresh_token'),
        'OAuth2 refresh token',
        fix,
      );
      const clientSecret = secrets.clientSecretEncrypted
        ? decrypt(
            account,
            endpoint,
            secrets.clientSecretEncrypted,
            oauth2SecretContext(account.id, 'client_secret'),
            'OAuth2 client secret',
            fix,
          )
        : null;
      const t = await refreshAccessToken({ ...account.oauth2, clientSecret }, refreshToken, {
        timeoutMs: cfg.oauth2TimeoutMs,
      });
      syncTokenRefreshes.inc({ outcome: 'ok' });
      return {
        result: { token: t.accessToken, fresh: true },
        store: {
          accessTokenEncrypted: encryptSecret(
            deps.keyring,
            t.accessToken,
            oauth2SecretContext(account.id, 'access_token'),
          ),
          accessTokenExpiresAt: t.expiresAt,
          // A rotated refresh token replaces the old one in the same transaction.
          refreshTokenEncrypted: t.refreshToken
            ? encryptSecret(deps.keyring, t.refreshToken, oauth2SecretContext(account.id, 'refresh_token'))
            : undefined,
          // Only the cache: the next login refreshes again; the rotated refresh token is stored.
          onCacheFailure: (err: unknown) =>
            log.warn({ accountId: account.id, err: serverText(err, 500) }, 'OAuth2 access token not cached'),
        },
      };
    });
    if (!got) accountMissing(ref);
    return got;
  }

  /** Loads the account, obtains its credential and logs in; classifies what goes wrong. */
  async function open(ref: AccountRef, watch?: ProgressWatch): Promise<Session> {
    const found = await store.getAccountSecret(ref.userId, ref.accountId);
    if (!found) accountMissing(ref);
    const { account } = found;
    const endpoint: ImapEndpoint = {
      host: account.imapHost,
      port: account.imapPort,
      tls: account.imapTls,
      user: account.imapUser,
    };
    const oauth2 = account.authMethod === 'oauth2' && account.oauth2 ? { ...account, oauth2: account.oauth2 } : null;

    let auth: ImapAuth;
    let freshToken = false;
    try {
      if (oauth2) {
        const t = await accessToken(ref, oauth2, endpoint);
        auth = { accessToken: t.token };
        freshToken = t.fresh;
      } else {
        if (!found.passwordEncrypted) throw new SecretKeyError('the account has no stored password');
        auth = {
          password: decrypt(
            account,
            endpoint,
            found.passwordEncrypted,
            accountSecretContext(account.id),
            'IMAP password',
            'set the password again with npm run account:password',
          ),
        };
      }
    } catch (err) {
      throw await credentialFailure(ref, account, endpoint, err);
    }

    const connect = (a: ImapAuth) =>
      connectImap(
        endpoint,
        a,
        {
          connectTimeoutMs: cfg.imapConnectTimeoutMs,
          socketTimeoutMs: cfg.imapSocketTimeoutMs,
          maxMessageBytes: cfg.maxMessageBytes,
        },
        (err) => log.warn({ accountId: account.id, err: imapErrorText(err) }, 'IMAP connection error'),
      );
    try {
      let client: ImapFlow;
      try {
        client = await connect(auth);
      } catch (err) {
        // A stored access token the server refuses (revoked early, clock skew): one fresh token
        // decides whether the grant itself is gone.
        if (!oauth2 || freshToken || !isAuthenticationFailure(err) || !('accessToken' in auth)) throw err;
        let retry;
        try {
          retry = await accessToken(ref, oauth2, endpoint, auth.accessToken);
        } catch (e) {
          throw await credentialFailure(ref, account, endpoint, e);
        }
        client = await connect({ accessToken: retry.token });
      }
      // Cancellation (account removed, operator) reaches the activity through heartbeats;
      // closing the connection ends whatever IMAP command is running.
      activityContext()?.cancellationSignal.addEventListener('abort', () => client.close(), { once: true });
      const unguard = watch?.guard(client) ?? (() => {});
      watch?.progress();
      return { client, account, endpoint, dead: false, unguard };
    } catch (err) {
      if (isAuthenticationFailure(err)) {
        if (oauth2) {
          return credentialRefused(
            ref,
            account,
            `IMAP server ${account.imapHost} rejected a freshly issued OAuth2 access token for ${account.imapUser}: ${imapErrorText(err)} (are the scopes "${oauth2.oauth2.scopes}" enough, and was the token issued for this mailbox?)`,
            `Give a new refresh token with: npm run account:token -- --user <owner email> --account ${account.id}`,
          );
        }
        return credentialRefused(
          ref,
          account,
          `IMAP server ${account.imapHost} rejected the login of ${account.imapUser}: ${imapErrorText(err)}`,
          `Set the new password with: npm run account:password -- --user <owner email> --account ${account.id}`,
        );
      }
      const kind = isTransientImapError(err)
        ? 'network error or server timeout, will retry with backoff'
        : 'connection failed';
      throw ApplicationFailure.retryable(
        `Cannot connect to IMAP server for account ${account.id} (${describeEndpoint(endpoint)}): ${imapErrorText(err)} (${kind}). Check the host, port and TLS setting if this persists.`,
        ERR_CONNECTION,
      );
    }
  }

  /** What failing to obtain a credential means: waiting for a new one, a key problem, or retry. */
  async function credentialFailure(
    ref: AccountRef,
    account: Account,
    endpoint: ImapEndpoint,
    err: unknown,
  ): Promise<Error> {
    if (err instanceof ApplicationFailure) return err;
    if (err instanceof OAuth2GrantError) {
      syncTokenRefreshes.inc({ outcome: 'rejected' });
      return credentialRefused(
        ref,
        account,
        err.message,
        `Give a new refresh token with: npm run account:token -- --user <owner email> --account ${account.id}`,
      );
    }
    if (err instanceof OAuth2ConfigError) {
      // Never sent there: waits, like a refused token, for the operator to give another URL.
      return credentialRefused(
        ref,
        account,
        `Account ${account.id}: its OAuth2 token URL (setting oauth2_token_url, --token-url) is not used: ${err.message}`,
        `Give an https:// token endpoint with: npm run account:token -- --user <owner email> --account ${account.id} --token-url https://...`,
      );
    }
    if (err instanceof OAuth2TokenStoreError) {
      return ApplicationFailure.retryable(`${err.message}; will retry with backoff.`, 'OAuth2TokenStoreError');
    }
    if (err instanceof OAuth2EndpointError) {
      syncTokenRefreshes.inc({ outcome: 'error' });
      return ApplicationFailure.retryable(
        `Cannot get an OAuth2 access token for account ${account.id} (${describeEndpoint(endpoint)}): ${err.message}; will retry with backoff.`,
        ERR_OAUTH2_ENDPOINT,
      );
    }
    if (err instanceof SecretKeyError) {
      return ApplicationFailure.nonRetryable(
        `Account ${account.id} (${describeEndpoint(endpoint)}): ${err.message}. Set its credential again (npm run account:password / account:token).`,
        ERR_SECRET_KEY,
      );
    }
    return err as Error;
  }

  async function reopen(ref: AccountRef, session: Session, watch: ProgressWatch): Promise<void> {
    session.unguard();
    session.client.close();
    const next = await open(ref, watch);
    session.client = next.client;
    session.unguard = next.unguard;
    session.dead = false;
  }

  /** Adds the account and folder to errors from the middle of a session, and names a stall or a refused answer as such. */
  function imapFailure(account: Account, folder: string | null, err: unknown, watch?: ProgressWatch): Error {
    const where = folder ? ` in folder "${folderLabel(folder)}"` : '';
    const who = `account ${account.id} (${account.imapUser}@${account.imapHost})${where}`;
    const stalled = watch?.takeFailure() ?? (err instanceof SyncStalledError ? err : undefined);
    if (stalled) {
      return ApplicationFailure.retryable(
        `IMAP server for ${who}: ${stalled.message}; gave up on this attempt, retried with backoff`,
        'ImapStalled',
      );
    }
    if (err instanceof ApplicationFailure || err instanceof UidValidityMismatch) return err as Error;
    if (isImapLimitError(err)) {
      return ApplicationFailure.retryable(
        `IMAP server for ${who} sent more than mailroom accepts: ${imapErrorText(err)} (limits follow SYNC_MAX_MESSAGE_BYTES)`,
        'ImapLimit',
      );
    }
    if (err instanceof ImapProtocolError)
      return ApplicationFailure.retryable(`IMAP server for ${who}: ${err.message}`, 'ImapProtocolError');
    return ApplicationFailure.retryable(
      `IMAP error for ${who}: ${imapErrorText(err)}`,
      isTransientImapError(err) ? 'ImapNetworkError' : 'ImapError',
    );
  }

  /** A failure inside one folder that says nothing about the others: the server stalled, dripped, or answered beyond our limits. */
  function folderLevel(err: unknown, stalled: SyncStalledError | undefined): string | null {
    if (stalled) return stalled.kind === 'stall' ? stalled.message : null;
    if (isImapLimitError(err)) return `the server sent more than mailroom accepts: ${imapErrorText(err)}`;
    if (err instanceof ImapProtocolError) return err.message;
    return folderDataProblem(err);
  }

  async function prepare(
    input: AccountRef & { syncRunId: number; only?: string[] },
    watch: ProgressWatch,
  ): Promise<PrepareFoldersResult> {
    const session = await open(input, watch);
    const { account } = session;
    const result: PrepareFoldersResult = {
      folders: [],
      condstore: false,
      flagsUpdated: 0,
      messagesDeleted: 0,
      foldersReset: [],
      foldersRemoved: [],
      foldersFailed: [],
    };
    let current: string | null = null;
    try {
      result.condstore = session.client.enabled.has('CONDSTORE');
      const listed = await listFolders(session.client);
      watch.progress();
      if (!input.only) {
        const removed = await store.removeFoldersExcept(
          input.userId,
          input.accountId,
          listed.map((f) => f.path),
          input.syncRunId,
        );
        result.foldersRemoved = removed.folders;
        result.messagesDeleted += removed.messages;
      }
      const wanted = input.only ? listed.filter((f) => input.only?.includes(f.path)) : listed;
      const clashes = folderKeyClashes(listed.map((f) => f.path));
      for (const folder of wanted) {
        current = folder.path;
        watch.progress({ folder: folder.path });
        if (session.dead) await reopen(input, session, watch);
        try {
          const clash = clashes.get(folder.path);
          if (clash !== undefined)
            throw new FolderSkipped(
              `its name is stored as that of folder "${folderLabel(clash)}" (the server's name holds a NUL or an unpaired surrogate, stored as U+FFFD); rename one of them on the server`,
            );
          const plan = await prepareFolder(input, session.client, folder.path, result, watch);
          if (plan) result.folders.push(plan);
        } catch (err) {
          // One folder whose server session goes wrong (stall, drip, an answer over our limits)
          // is recorded and left for the next run; the other folders go on. Anything else
          // (connection refused, PostgreSQL) fails the attempt as before.
          const stalled = watch.takeFailure();
          const reason = err instanceof FolderSkipped ? err.message : folderLevel(err, stalled);
          if (reason === null) throw stalled ?? err;
          await store.recordFolderError(
            input.userId,
            input.accountId,
            input.syncRunId,
            folder.path,
            `preparing the folder failed: ${reason}`,
          );
          syncFolderErrors.inc();
          result.foldersFailed?.push(folder.path);
          log.warn({ accountId: account.id, folder: folderLabel(folder.path), reason }, 'folder skipped for this run');
          if (!(err instanceof FolderSkipped)) session.dead = true;
        }
      }
      return result;
    } catch (err) {
      throw imapFailure(account, current, err, watch);
    } finally {
      session.unguard();
      await closeImap(session.client, session.dead);
    }
  }

  async function prepareFolder(
    input: AccountRef & { syncRunId: number },
    client: ImapFlow,
    path: string,
    result: PrepareFoldersResult,
    watch: ProgressWatch,
  ): Promise<FolderPlan | null> {
    let box;
    try {
      box = await examineFolder(client, path);
    } catch (err) {
      if ((err as { mailboxMissing?: boolean }).mailboxMissing) return null; // deleted since LIST
      throw err;
    }
    const begun = await store.beginFolder(input.userId, input.accountId, path, box.uidValidity, input.syncRunId);
    if (begun.reset) {
      result.foldersReset.push(path);
      result.messagesDeleted += begun.dropped;
      log.info(
        { accountId: input.accountId, folder: path, uidValidity: box.uidValidity },
        'UIDVALIDITY changed: folder resynchronised from scratch',
      );
    }
    const lastUid = begun.state.lastUid;
    if (lastUid > 0 && box.exists > 0) {
      const onServer = await searchUids(client, `1:${lastUid}`);
      result.messagesDeleted += await store.deleteMissingMessages(
        input.userId,
        input.accountId,
        path,
        box.uidValidity,
        onServer,
        lastUid,
        input.syncRunId,
      );
      const since =
        result.condstore && box.highestModseq && begun.state.highestModseq ? begun.state.highestModseq : undefined;
      const unchanged = since !== undefined && since === box.highestModseq;
      if (!unchanged) {
        const changes = await fetchFlags(client, `1:${lastUid}`, since, () => watch.progress({ folder: path }));
        result.flagsUpdated += await store.applyFlagChanges(
          input.userId,
          input.accountId,
          path,
          box.uidValidity,
          changes,
          box.highestModseq,
          input.syncRunId,
        );
      }
    } else {
      if (lastUid > 0) {
        result.messagesDeleted += await store.deleteMissingMessages(
          input.userId,
          input.accountId,
          path,
          box.uidValidity,
          [],
          lastUid,
          input.syncRunId,
        );
      }
      await store.applyFlagChanges(
        input.userId,
        input.accountId,
        path,
        box.uidValidity,
        [],
        box.highestModseq,
        input.syncRunId,
      );
    }
    const pending = box.exists > 0 && box.uidNext > lastUid + 1 ? (await uidsAfter(client, lastUid)).length : 0;
    watch.progress({ folder: path });
    return { path, uidValidity: box.uidValidity, pending };
  }

  /**
   * Fetches one batch: metadata, then the bodies that fit the limits. Returns the rows to
   * store, the messages to record as skipped, how far the batch is covered (every UID up to
   * `coveredUpTo` is stored, skipped or gone from the server) and, when the server failed
   * part way, the error to raise once what did arrive is committed.
   */
  async function fetchBatch(
    ref: AccountRef,
    session: Session,
    folder: string,
    uidValidity: number,
    wanted: number[],
    watch: ProgressWatch,
  ): Promise<{ messages: NewMessage[]; skipped: SkippedMessage[]; coveredUpTo: number; failure?: unknown }> {
    const skips = new Map<number, SkippedMessage>();
    const beat = () => watch.progress();
    const ensureOpen = async () => {
      if (!session.dead) return;
      await reopen(ref, session, watch);
      await session.client.mailboxOpen(folder, { readOnly: true });
      const now =
        session.client.mailbox && typeof session.client.mailbox === 'object'
          ? Number(session.client.mailbox.uidValidity)
          : uidValidity;
      if (now !== uidValidity)
        throw new UidValidityMismatch(`folder ${folder}: UIDVALIDITY changed to ${now} during the sync`);
    };

    // 1. Metadata. An answer over our limits cannot be pinned on a message when several are
    //    asked for at once: ask one by one, and skip the one whose answer is refused alone.
    let meta: Map<number, FetchMessageObject>;
    try {
      meta = await fetchMetadata(session.client, wanted, beat);
    } catch (err) {
      if (!limitError(err, session.client)) throw err;
      session.dead = true;
      meta = new Map();
      for (const uid of wanted) {
        await ensureOpen();
        try {
          for (const [k, v] of await fetchMetadata(session.client, [uid], beat)) meta.set(k, v);
        } catch (e) {
          const limit = limitError(e, session.client);
          if (!limit) throw e;
          session.dead = true;
          skips.set(uid, {
            uid,
            kind: 'data',
            size: announcedSize(limit),
            reason: `the server's answer for this message's metadata was refused: ${imapErrorText(limit)}`,
          });
        }
      }
    }

    // 2. The prefix of the batch that fits the byte budget, by claimed size. Messages claiming
    //    more than SYNC_MAX_MESSAGE_BYTES are stored without their body.
    const taken: number[] = [];
    let claimed = 0;
    for (const uid of wanted) {
      const size = meta.get(uid)?.size ?? 0;
      const rawBytes = size <= cfg.maxMessageBytes ? size : 0;
      if (taken.length > 0 && claimed + rawBytes > cfg.batchMaxBytes) break;
      taken.push(uid);
      claimed += rawBytes;
      if (meta.has(uid) && size > cfg.maxMessageBytes) {
        skips.set(uid, {
          uid,
          kind: 'oversize',
          size,
          reason: `${formatBytes(size)}, larger than SYNC_MAX_MESSAGE_BYTES (${formatBytes(cfg.maxMessageBytes)}): stored without its body (raw_ref points at the server copy)`,
        });
      }
    }

    // 3. Bodies. The limit is the connection's maxLiteralSize: a server that claimed 100 bytes
    //    and announces 64 MiB is refused before those bytes are read; which message it was is
    //    found by asking for the rest one by one.
    const wantSource = taken.filter((uid) => meta.has(uid) && !skips.has(uid));
    const sources = new Map<number, Buffer>();
    let failure: unknown;
    let stoppedEarly = false;
    try {
      await ensureOpen();
      stoppedEarly = (await fetchSources(session.client, wantSource, cfg.batchMaxBytes, sources, beat)).stoppedEarly;
      if (stoppedEarly) session.dead = true;
    } catch (err) {
      session.dead = true;
      if (!limitError(err, session.client)) {
        failure = err;
      } else {
        for (const uid of wantSource) {
          if (sources.has(uid)) continue;
          try {
            await ensureOpen();
            await fetchSources(session.client, [uid], Infinity, sources, beat);
          } catch (e) {
            session.dead = true;
            const limit = limitError(e, session.client);
            if (!limit) {
              failure = e;
              break;
            }
            const real = announcedSize(limit);
            const said = meta.get(uid)?.size;
            skips.set(uid, {
              uid,
              kind: 'oversize',
              size: real,
              reason: `the server sent ${real !== null ? formatBytes(real) : 'a body'} for a message it listed as ${said !== undefined ? formatBytes(said) : 'smaller'}; over SYNC_MAX_MESSAGE_BYTES (${formatBytes(cfg.maxMessageBytes)}), not fetched: stored without its body`,
            });
          }
        }
      }
    }

    // 4. Messages the server did not answer for: gone (expunged meanwhile), or listed but not
    //    answered (an unparseable response imapflow dropped): the latter are recorded.
    const unanswered = taken.filter(
      (uid) => !skips.has(uid) && (!meta.has(uid) || (!sources.has(uid) && !failure && !stoppedEarly)),
    );
    if (unanswered.length && !failure) {
      try {
        await ensureOpen();
        const still = new Set(await searchUids(session.client, uidSet(unanswered)));
        for (const uid of unanswered) {
          if (!still.has(uid)) continue;
          const what = meta.has(uid) ? 'its body' : 'its metadata';
          skips.set(uid, {
            uid,
            kind: 'data',
            size: storableSize(meta.get(uid)?.size),
            reason: `the server lists this message but did not return ${what} (or returned it in a form that could not be parsed)`,
          });
        }
      } catch (err) {
        session.dead = true;
        failure = err;
      }
    }

    // 5. Rows in UID order, up to the first message whose body did not arrive because the
    //    transfer broke off (or the batch's real bytes reached the budget).
    const messages: NewMessage[] = [];
    const skipped: SkippedMessage[] = [];
    let coveredUpTo = 0;
    for (const uid of taken) {
      const m = meta.get(uid);
      const skip = skips.get(uid);
      if (m && !skip && !sources.has(uid) && (failure !== undefined || stoppedEarly)) break;
      if (skip) {
        skipped.push(skip);
        syncMessagesSkipped.inc({ kind: skip.kind });
        if (skip.kind === 'oversize' && m) messages.push(toNewMessage(m, null, session.endpoint, folder, uidValidity));
      } else if (m) {
        messages.push(toNewMessage(m, sources.get(uid) ?? null, session.endpoint, folder, uidValidity));
      }
      coveredUpTo = uid;
    }
    return { messages, skipped, coveredUpTo, failure };
  }

  async function fetchNew(
    input: AccountRef & { syncRunId: number; folder: string; uidValidity: number },
    watch: ProgressWatch,
  ): Promise<FetchNewResult> {
    // Counted by an earlier attempt that died (only for progress; sync_runs counts are exact).
    const previous = activityContext()?.info.heartbeatDetails as FetchHeartbeat | undefined;
    const priorStored = previous?.folder === input.folder ? previous.stored : 0;
    const priorSkipped = previous?.folder === input.folder ? (previous.skipped ?? 0) : 0;
    const state = await store.getFolderState(input.userId, input.accountId, input.folder);
    if (!state || state.uidValidity !== input.uidValidity) {
      return {
        stored: priorStored,
        skipped: priorSkipped,
        lastUid: state?.lastUid ?? 0,
        remaining: 0,
        done: false,
        uidValidityChanged: true,
      };
    }
    const session = await open(input, watch);
    const { account } = session;
    let lastUid = state.lastUid;
    let stored = 0;
    let skipped = 0;
    const details = (): FetchHeartbeat => ({
      folder: input.folder,
      lastUid,
      stored: priorStored + stored,
      skipped: priorSkipped + skipped,
    });
    try {
      const box = await examineFolder(session.client, input.folder);
      if (box.uidValidity !== input.uidValidity) {
        return {
          stored: priorStored,
          skipped: priorSkipped,
          lastUid: state.lastUid,
          remaining: 0,
          done: false,
          uidValidityChanged: true,
        };
      }
      const uids = box.exists > 0 && box.uidNext > lastUid + 1 ? await uidsAfter(session.client, lastUid) : [];
      watch.progress(details());
      let index = 0;
      for (let batch = 0; index < uids.length && batch < cfg.batchesPerActivity; batch++) {
        // Past a quarter of the deadline, hand back what is done; the workflow calls again.
        if (batch > 0 && watch.deadlineNear()) break;
        const wanted = uids.slice(index, index + cfg.batchSize);
        const outcome = await fetchBatch(input, session, input.folder, input.uidValidity, wanted, watch);
        if (outcome.coveredUpTo > 0) {
          const saved = await watch.quiet(() =>
            store.storeMessages(
              input.userId,
              input.accountId,
              input.folder,
              input.uidValidity,
              outcome.messages,
              outcome.coveredUpTo,
              input.syncRunId,
              outcome.skipped,
            ),
          );
          lastUid = saved.lastUid;
          stored += saved.inserted;
          skipped += saved.skipped;
          index = uids.findIndex((u) => u > outcome.coveredUpTo);
          if (index < 0) index = uids.length;
        }
        watch.progress(details());
        // What arrived before the server broke off is committed; now the attempt fails.
        if (outcome.failure !== undefined) throw outcome.failure;
        if (index < uids.length) await pause(cfg.batchPauseMs);
      }
      return {
        stored: priorStored + stored,
        skipped: priorSkipped + skipped,
        lastUid,
        remaining: uids.length - index,
        done: index >= uids.length,
        uidValidityChanged: false,
      };
    } catch (err) {
      if (err instanceof UidValidityMismatch) {
        return {
          stored: priorStored + stored,
          skipped: priorSkipped + skipped,
          lastUid,
          remaining: 0,
          done: false,
          uidValidityChanged: true,
        };
      }
      throw imapFailure(account, input.folder, err, watch);
    } finally {
      session.unguard();
      await closeImap(session.client, session.dead);
    }
  }

  const watchOptions = { deadlineMs };

  return {
    /** Opens a sync_runs record and tells the workflow whether the account can be synced now. */
    async beginSync(input: AccountRef & { workflowId: string; workflowRunId: string }): Promise<BeginSyncResult> {
      const account = await store.getAccount(input.userId, input.accountId);
      if (!account) return { syncRunId: null, state: 'missing', reason: `account ${input.accountId} does not exist` };
      if (!account.enabled)
        return { syncRunId: null, state: 'disabled', reason: `account ${input.accountId} is disabled` };
      const syncRunId = await store.beginSyncRun(input.userId, input.accountId, input.workflowId, input.workflowRunId);
      if (syncRunId === null)
        return { syncRunId: null, state: 'missing', reason: `account ${input.accountId} does not exist` };
      if (account.status === 'needs_attention')
        return { syncRunId, state: 'needs_attention', reason: account.statusReason, authMethod: account.authMethod };
      return { syncRunId, state: 'ready', reason: null, authMethod: account.authMethod };
    },

    /**
     * Lists the server's folders and brings each one's stored state up to date except for new
     * mail: UIDVALIDITY changes (folder resynchronised from scratch), flag changes (CONDSTORE
     * CHANGEDSINCE when available, else all flags compared) and messages deleted on the
     * server. Returns, per folder, how many new messages are waiting.
     */
    async prepareFolders(input: AccountRef & { syncRunId: number; only?: string[] }): Promise<PrepareFoldersResult> {
      return heartbeatOnProgress(watchOptions, (watch) => prepare(input, watch));
    },

    /**
     * Fetches messages with UIDs above the folder's checkpoint, in batches; each batch is
     * stored and the checkpoint advanced in one transaction, then heartbeated. A retry (for
     * instance after the worker was killed) starts from the committed checkpoint, so nothing
     * is stored twice and nothing is skipped without a sync_errors record.
     */
    async fetchNewMessages(
      input: AccountRef & { syncRunId: number; folder: string; uidValidity: number },
    ): Promise<FetchNewResult> {
      return heartbeatOnProgress(watchOptions, (watch) => fetchNew(input, watch));
    },

    /** Records that a folder could not be synced in this run (its fetch failed after every retry). */
    async recordFolderError(input: AccountRef & { syncRunId: number; folder: string; reason: string }): Promise<void> {
      await store.recordFolderError(input.userId, input.accountId, input.syncRunId, input.folder, input.reason);
      syncFolderErrors.inc();
    },

    /** Closes the sync_runs record; its counters were kept up to date by each transaction. */
    async finishSync(
      input: AccountRef & {
        syncRunId: number;
        status: Exclude<SyncRunStatus, 'running'>;
        folders?: number;
        error?: string | null;
      },
    ) {
      const run = await store.finishSyncRun(input.userId, input.syncRunId, {
        status: input.status,
        folders: input.folders,
        error: input.error,
      });
      return run
        ? {
            messagesAdded: run.messagesAdded,
            messagesUpdated: run.messagesUpdated,
            messagesDeleted: run.messagesDeleted,
            messagesSkipped: run.messagesSkipped,
            folders: run.folders,
          }
        : null;
    },
  };
}

/** A folder not even tried: recorded as a folder error with this reason. */
class FolderSkipped extends Error {}

/** The limit error behind `err`: itself, or what closed the client's connection (the command then only says "Connection not available"). */
function limitError(err: unknown, client: ImapFlow): unknown {
  if (isImapLimitError(err)) return err;
  const closedBy = connectionError(client);
  return isImapLimitError(closedBy) ? closedBy : undefined;
}

function storableSize(n: number | undefined): number | null {
  return n !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : null;
}

export type SyncActivities = ReturnType<typeof createSyncActivities>;
