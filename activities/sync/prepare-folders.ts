// prepareFolders: lists the account's folders and brings each one's stored state up to date
// except for new mail (UIDVALIDITY, flags, deletions). A folder whose session goes wrong is
// recorded in sync_errors and left for the next run; the others go on.
import type { ImapFlow } from 'imapflow';
import type pino from 'pino';
import { folderKeyClashes, folderLabel } from '../../lib/imap/server-text';
import { syncFolderErrors } from '../../lib/observability/sync-metrics';
import type { FolderPlan } from '../../contracts/sync';
import { examineFolder, fetchFlags, listFolders, searchUids, uidsAfter } from '../../lib/imap/client';
import type { Store } from '../../lib/sync-store';
import { heartbeatOnProgress, type ProgressWatch } from '../../lib/temporal/heartbeat';
import type { Sessions } from './session';
import type { AccountRef, PrepareFoldersResult } from './types';

export function createPrepareFolders(deps: {
  store: Store;
  sessions: Sessions;
  log: pino.Logger;
  watchOptions: { deadlineMs: number };
}) {
  const { store, log, watchOptions } = deps;
  const { open, reopen, release, imapFailure, folderLevel } = deps.sessions;

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
      // Not parked for the next activity: its state after a failure is unknown.
      session.dead = true;
      throw imapFailure(account, current, err, watch);
    } finally {
      await release(session);
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

  return {
    /**
     * Lists the server's folders and brings each one's stored state up to date except for new
     * mail: UIDVALIDITY changes (folder resynchronised from scratch), flag changes (CONDSTORE
     * CHANGEDSINCE when available, else all flags compared) and messages deleted on the
     * server. Returns, per folder, how many new messages are waiting.
     */
    async prepareFolders(input: AccountRef & { syncRunId: number; only?: string[] }): Promise<PrepareFoldersResult> {
      return heartbeatOnProgress(watchOptions, (watch) => prepare(input, watch));
    },
  };
}

/** A folder not even tried: recorded as a folder error with this reason. */
class FolderSkipped extends Error {}
