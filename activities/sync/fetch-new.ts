// fetchNewMessages: fetches messages above a folder's checkpoint in batches, bounded by our
// limits (not the server's claims); each batch and its checkpoint commit in one transaction,
// so a retry after a killed worker starts from the committed checkpoint: nothing is stored
// twice and nothing is skipped without a sync_errors record.
import type { FetchMessageObject, ImapFlow } from 'imapflow';
import { announcedSize, formatBytes, isImapLimitError } from '../../lib/imap/sync-errors';
import { syncMessagesSkipped } from '../../lib/observability/sync-metrics';
import {
  connectionError,
  examineFolder,
  fetchMetadata,
  fetchSources,
  imapErrorText,
  searchUids,
  toNewMessage,
  uidSet,
  uidsAfter,
} from '../../lib/imap/client';
import { UidValidityMismatch, type NewMessage, type SkippedMessage, type Store } from '../../lib/sync-store';
import { activityContext, heartbeatOnProgress, type ProgressWatch } from '../../lib/temporal/heartbeat';
import type { MessageEvents } from './events';
import type { Sessions } from './session';
import type { AccountRef, FetchNewResult, Session, SyncActivityDeps } from './types';

interface FetchHeartbeat {
  folder: string;
  lastUid: number;
  stored: number;
  skipped?: number;
}

export function createFetchNew(deps: {
  store: Store;
  sessions: Sessions;
  config: Pick<
    SyncActivityDeps['config'],
    'batchSize' | 'batchMaxBytes' | 'maxMessageBytes' | 'batchesPerActivity' | 'batchPauseMs'
  >;
  watchOptions: { deadlineMs: number };
  events?: Pick<MessageEvents, 'dispatch' | 'eventsByDefault'>;
}) {
  const { store, watchOptions, events } = deps;
  const cfg = deps.config;
  const { open, reopen, release, imapFailure } = deps.sessions;

  async function pause(ms: number): Promise<void> {
    if (ms <= 0) return;
    const ctx = activityContext();
    if (ctx)
      await ctx.sleep(ms); // rejects when the activity is cancelled
    else await new Promise((r) => setTimeout(r, ms));
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
              { eventsByDefault: events?.eventsByDefault },
            ),
          );
          // New-message events of the committed batch (and any left pending): never fails the fetch.
          if (events && saved.events > 0)
            await watch.quiet(() => events.dispatch(input, { deadlineMs: 10_000, beat: () => watch.progress() }));
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
      // Not parked for the next activity: its state after a failure is unknown.
      session.dead = true;
      throw imapFailure(account, input.folder, err, watch);
    } finally {
      await release(session);
    }
  }

  return {
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
  };
}

/** The limit error behind `err`: itself, or what closed the client's connection (the command then only says "Connection not available"). */
function limitError(err: unknown, client: ImapFlow): unknown {
  if (isImapLimitError(err)) return err;
  const closedBy = connectionError(client);
  return isImapLimitError(closedBy) ? closedBy : undefined;
}

function storableSize(n: number | undefined): number | null {
  return n !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : null;
}
