// Syncs one account now and shows progress (fed by the workflow's `progress` query: a bar on
// a terminal, a line every few seconds otherwise). Goes through the account's Schedule when it
// has one (trigger with overlap SKIP), so a manual sync never runs beside a scheduled one; if a
// sync is already running it is asked for one more pass (syncNow signal) and followed instead.
// Prints the messages the sync skipped; exits 3 when the account waits for a new credential.
import type { Client } from '@temporalio/client';
import {
  AttentionError,
  commandMain,
  emailAddress,
  EXIT,
  printJson,
  progress,
  type ExitCode,
  type OptionValues,
} from '../lib/cli';
import { connectClient } from '../lib/temporal';
import { printableText, serverText } from '../lib/imap/server-text';
import { syncAccount } from '../workflows/syncAccount';
import { progressQuery, type SyncProgress, type SyncResult } from '../contracts/sync';
import { ACCOUNT_OPTIONS, accountIdOption, credentialFix, findAccount, openAccountDb } from './account-common';
import { startSyncNow } from '../lib/account-sync';

// Imported from here by the demo and tests; it lives in lib/account-sync (the watcher uses it too).
export { startSyncNow };

const spec = {
  name: 'sync:now',
  summary:
    'Sync one account now and show progress; then list the messages this sync skipped. Joins a sync that is already running instead of starting another.',
  options: {
    ...ACCOUNT_OPTIONS,
    'no-wait': { type: 'boolean', description: 'start (or join) the sync and return' },
    json: { type: 'boolean', description: 'print the result as JSON (stdout only)' },
  },
  examples: ['npm run sync:now -- --user owner@example.com --account 3f1c...'],
  exitCodes:
    'Exit codes: 0 synced, 1 failed or some folders could not be synced (partial), 2 usage error, 3 the account waits for a new password or token.',
} as const;

/**
 * Shows the sync's progress until it ends, or until it waits for a new credential (it may wait
 * for days; the caller is told what to do instead of being kept waiting).
 */
async function follow(client: Client, workflowId: string): Promise<SyncResult | { waiting: string }> {
  const handle = client.workflow.getHandle<typeof syncAccount>(workflowId);
  const bar = progress('sync', 'new messages | folder {folders} {folder} | {phase}');
  let result: SyncResult | undefined;
  let error: unknown;
  const done = handle.result().then(
    (r) => {
      result = r;
    },
    (err) => {
      error = err;
    },
  );
  try {
    while (result === undefined && error === undefined) {
      let p: SyncProgress | undefined;
      try {
        p = await handle.query(progressQuery);
      } catch {
        /* not queryable yet (no worker has picked it up) */
      }
      if (p?.status === 'needs_attention') return { waiting: serverText(p.reason) || 'the credential was refused' };
      // The total is known once the folders are listed.
      if (p && p.phase !== 'starting' && p.phase !== 'listing') {
        const total = Math.max(p.messagesFound ?? p.messagesPending, p.messagesStored, 1);
        bar.update(
          p.messagesStored,
          {
            folder: printableText(p.folder ?? '', 60),
            folders: `${Math.min(p.foldersDone + 1, p.foldersTotal)}/${p.foldersTotal}`,
            phase: p.phase.replaceAll('_', ' '),
          },
          total,
        );
      }
      await Promise.race([done, new Promise((r) => setTimeout(r, 500))]);
    }
  } finally {
    bar.stop();
  }
  if (error !== undefined) throw error;
  return result as SyncResult;
}

async function main(values: OptionValues<typeof spec.options>): Promise<ExitCode> {
  const owner = emailAddress('user', values.user);
  const accountId = accountIdOption(values.account);
  const db = openAccountDb();
  try {
    const { user, account } = await findAccount(db.store, owner, accountId, db.where);
    if (!account.enabled)
      throw new Error(
        `Account ${account.id} is disabled; enable it first: npm run account:set -- --user ${owner} --account ${account.id} --enable`,
      );
    const client = await connectClient();
    let result: SyncResult | { waiting: string };
    try {
      const { workflowId, joined } = await startSyncNow(client, account, db.config.taskQueue);
      console.error(`${joined ? 'Following the sync already running' : 'Started sync'}: workflow ${workflowId}`);
      if (values['no-wait']) return EXIT.done;
      result = await follow(client, workflowId);
    } finally {
      await client.connection.close();
    }
    if ('waiting' in result) {
      throw new AttentionError(
        `Account ${account.id} needs attention: ${result.waiting}\nThe sync waits for a new credential and resumes once it is given: ${credentialFix(account, owner)}`,
      );
    }
    const skipped =
      result.syncRunId !== null
        ? (await db.store.listSyncErrors(user.id, account.id, { syncRunId: result.syncRunId, limit: 1000 })).reverse()
        : [];
    if (values.json) {
      printJson({ ...result, syncErrors: skipped });
    } else {
      if (result.status === 'skipped') console.log(`Sync skipped: ${serverText(result.reason)}`);
      else if (result.status !== 'needs_attention') {
        console.log(
          `Synced ${account.imapUser}@${account.imapHost}: ${result.folders} folders, ${result.messagesAdded} new, ${result.messagesUpdated} flag changes, ${result.messagesDeleted} deleted, ${result.messagesSkipped ?? 0} skipped`,
        );
      }
      for (const e of skipped) {
        const where =
          e.uid === null
            ? `folder ${printableText(e.folder, 200)} not synced`
            : `skipped ${printableText(e.folder, 200)} UID ${e.uid}${e.kind === 'oversize' ? ' (stored without body)' : ''}`;
        console.log(`  ${where}: ${serverText(e.reason)}`);
      }
    }
    if (result.status === 'needs_attention')
      throw new AttentionError(
        `Account ${account.id} needs attention: ${serverText(result.reason)}\nfix: ${credentialFix(account, owner)}`,
      );
    if (result.status === 'partial') {
      console.error(`sync:now: ${serverText(result.reason)}`);
      return EXIT.failed;
    }
    return EXIT.done;
  } finally {
    await db.close();
  }
}

// Also imported (startSyncNow) by the demo and the tests: run only as a script.
if (require.main === module) commandMain(spec, main);
