// Lists accounts with their state: how they log in, whether one waits for a new password or
// token (and since when, with the command that fixes it), the last sync, and how many
// messages were skipped (recorded in sync_errors), and the IMAP IDLE watcher's state (idle,
// reconnecting, unsupported, ...; account_watchers). --skipped lists the skipped records.
import { type AccountSummary, type SyncError, type WatcherInfo } from '../lib/sync-store';
import { commandMain, emailAddress, EXIT, positiveInteger, printJson } from '../lib/cli';
import { printableText, serverText } from '../lib/imap/server-text';
import { createOutboxStore, type SmtpSettings } from '../lib/outbox';
import { credentialFix, openAccountDb } from './account-common';
import { describeSmtp } from './smtp-options';

// Folder names, reasons and errors quote IMAP servers (and, in rows written by older versions,
// raw): printed as one printable line each, so no escape sequence reaches the terminal.

const spec = {
  name: 'account:list',
  summary:
    'List mailroom accounts: login method, state (NEEDS ATTENTION when a password or token was refused), last sync, skipped messages.',
  options: {
    user: { type: 'string', value: '<email>', description: "only this user's accounts" },
    skipped: {
      type: 'boolean',
      description: 'also list the recorded sync errors: skipped messages (folder, UID, reason) and folders that failed',
    },
    limit: { type: 'string', value: '<n>', description: 'sync errors shown per account with --skipped', default: '20' },
    json: { type: 'boolean', description: 'print JSON (stdout only)' },
  },
  examples: ['npm run account:list', 'npm run account:list -- --user owner@example.com --skipped'],
  notes: ['Exit code 3 when an account listed needs attention, so scripts and cron can alert on it.'],
} as const;

function ago(date: Date | null): string {
  if (!date) return '-';
  const s = Math.round((Date.now() - date.getTime()) / 1000);
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 129600) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function lastSync(a: AccountSummary): string {
  const r = a.lastRun;
  if (!r) return 'never synced';
  const counts = `+${r.messagesAdded} ~${r.messagesUpdated} -${r.messagesDeleted}${r.messagesSkipped ? ` skipped ${r.messagesSkipped}` : ''}`;
  const when = r.status === 'running' ? `since ${ago(r.startedAt)}` : ago(r.finishedAt ?? r.startedAt);
  return `${r.status} ${when} (${counts})${r.error ? `: ${serverText(r.error)}` : ''}`;
}

function describeWatcher(w: WatcherInfo, watchedFolders: string[]): string {
  const last = w.lastEventAt ? `, last change ${ago(w.lastEventAt)}` : ', no change seen yet';
  // An idle watcher's detail names watched folders the server does not have.
  const detail = w.detail ? `: ${serverText(w.detail)}` : '';
  const folders = ['INBOX', ...watchedFolders].map((f) => printableText(f, 100)).join(', ');
  return `IDLE watcher (${folders}): ${w.state} since ${ago(w.stateChangedAt)}${last}${detail}`;
}

function describeError(e: SyncError): string {
  const folder = printableText(e.folder, 200);
  const where = e.uid === null ? `folder ${folder}` : `${folder} UID ${e.uid}`;
  return `${e.createdAt.toISOString()}  ${e.kind.padEnd(8)} ${where}${e.size !== null ? ` (${e.size} bytes)` : ''}: ${serverText(e.reason)}`;
}

commandMain(spec, async (values) => {
  const limit = positiveInteger('limit', values.limit ?? '20');
  const only = values.user !== undefined ? emailAddress('user', values.user) : undefined;
  const db = openAccountDb();
  try {
    let users = await db.store.listUsers();
    if (only) {
      const user = await db.store.findUserByEmail(only);
      if (!user)
        throw new Error(`No mailroom user ${only} in ${db.where}; add an account for it with npm run account:add`);
      users = [user];
    }
    const outbox = createOutboxStore(db.pool);
    const all: (AccountSummary & { userEmail: string; smtp: SmtpSettings | null; syncErrors?: SyncError[] })[] = [];
    for (const user of users) {
      for (const a of await db.store.listAccounts(user.id)) {
        all.push({
          ...a,
          userEmail: user.email,
          // Where it sends through (docs/sending.md); no host: it only syncs.
          smtp: await outbox.getSmtpSettings(user.id, a.id),
          ...(values.skipped ? { syncErrors: await db.store.listSyncErrors(user.id, a.id, { limit }) } : {}),
        });
      }
    }
    const attention = all.some((a) => a.enabled && a.status === 'needs_attention');
    if (values.json) {
      printJson(all);
      return attention ? EXIT.attention : EXIT.done;
    }
    if (!all.length) {
      console.log(`No accounts in ${db.where}. Add one with npm run account:add (see docs/account-sync.md).`);
      return EXIT.done;
    }
    for (const a of all) {
      const state = !a.enabled
        ? 'disabled'
        : a.status === 'needs_attention'
          ? `NEEDS ATTENTION since ${ago(a.statusChangedAt)}`
          : 'enabled';
      const login = a.authMethod === 'oauth2' ? `OAuth2 ${a.oauth2?.provider ?? ''}`.trim() : 'password';
      console.log(
        `${a.id}  ${printableText(a.userEmail)}  ${printableText(`${a.imapUser}@${a.imapHost}`)}:${a.imapPort}${a.imapTls ? '' : ' (no TLS)'}  ${printableText(login)}`,
      );
      console.log(
        `    ${state}, every ${Math.round(a.syncIntervalSeconds / 60)} min, ${a.messageCount} messages, ${a.skippedCount} skipped; last sync: ${lastSync(a)}`,
      );
      if (a.watcher) console.log(`    ${describeWatcher(a.watcher, a.watchedFolders)}`);
      if (a.smtp?.host) console.log(`    sends through ${printableText(describeSmtp(a.smtp))}`);
      if (a.status === 'needs_attention') {
        console.log(
          `    ${serverText(a.statusReason) || 'its credential was refused'}\n    fix: ${credentialFix(a, a.userEmail)}`,
        );
      }
      for (const e of a.syncErrors ?? []) console.log(`    ${describeError(e)}`);
    }
    return attention ? EXIT.attention : EXIT.done;
  } finally {
    await db.close();
  }
});
