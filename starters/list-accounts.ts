// Lists accounts with their state and last sync.
// Usage: tsx starters/list-accounts.ts [--user <email>] [--json]
import { parseArgs } from 'node:util';
import { createStore, type AccountSummary } from '../activities/store';
import { createPool } from '../lib/db';
import { loadSyncConfig } from '../lib/sync-config';

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
  const counts = `+${r.messagesAdded} ~${r.messagesUpdated} -${r.messagesDeleted}`;
  return `${r.status} ${ago(r.finishedAt ?? r.startedAt)} (${counts})${r.error ? `: ${r.error}` : ''}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { user: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const config = loadSyncConfig();
  const pool = createPool(config.databaseUrl, { max: 2 });
  try {
    const store = createStore(pool);
    let users = await store.listUsers();
    if (values.user) {
      const user = await store.findUserByEmail(values.user);
      if (!user) throw new Error(`No mailroom user ${values.user}`);
      users = [user];
    }
    const all: (AccountSummary & { userEmail: string })[] = [];
    for (const user of users) for (const a of await store.listAccounts(user.id)) all.push({ ...a, userEmail: user.email });
    if (values.json) {
      console.log(JSON.stringify(all, null, 2));
      return;
    }
    if (!all.length) {
      console.log('No accounts. Add one with tsx starters/add-account.ts (see docs/account-sync.md).');
      return;
    }
    for (const a of all) {
      const state = !a.enabled ? 'disabled' : a.status === 'needs_attention' ? 'NEEDS ATTENTION' : 'enabled';
      console.log(`${a.id}  ${a.userEmail}  ${a.imapUser}@${a.imapHost}:${a.imapPort}${a.imapTls ? '' : ' (no TLS)'}`);
      console.log(`    ${state}, every ${Math.round(a.syncIntervalSeconds / 60)} min, ${a.messageCount} messages; last sync: ${lastSync(a)}`);
      if (a.status === 'needs_attention') {
        console.log(`    ${a.statusReason ?? 'login rejected'}\n    fix: tsx starters/update-password.ts --user ${a.userEmail} --account ${a.id}`);
      }
    }
  } finally {
    await pool.end();
  }
}

main().catch((err) => {
  console.error(`list-accounts failed: ${(err as Error).message}`);
  process.exit(1);
});
