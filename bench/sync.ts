// `npm run bench` (sync part): fills a Dovecot mailbox with N messages (default 10,000),
// then measures the initial sync into PostgreSQL (messages per second) and an incremental
// sync when nothing changed. Prints a table and writes bench/results/sync-<time>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { addAccountWithPassword } from '../lib/sync-store/credentials';
import { createStore } from '../lib/sync-store';
import { generateKeyEntry, parseKeyring } from '../lib/sync-store/crypto';
import { createSyncWorker } from '../workers/sync';
import type { syncAccount } from '../workflows/syncAccount';
import { syncWorkflowId } from '../contracts/sync';
import { startTestTemporal } from '../test/support/temporal';
import {
  createTestDatabase,
  imapSession,
  quietTemporalLogs,
  startTestDovecot,
  syncWorkflowBundle,
  testMessage,
} from '../test/integration/sync-fixtures';
import { benchArgs } from './args';

async function main() {
  const { values } = benchArgs(__filename, { messages: { type: 'string', default: '10000' } });
  const n = Number(values.messages);
  const user = { user: 'bench@example.test', password: 'bench-imap-secret' };
  quietTemporalLogs();
  const [env, dovecot, db] = await Promise.all([startTestTemporal(), startTestDovecot([user]), createTestDatabase()]);
  const keyEntry = generateKeyEntry('bench');
  const taskQueue = 'sync-bench';
  const worker = await createSyncWorker(env.nativeConnection, env.namespace ?? 'default', {
    env: { ...process.env, DATABASE_URL: db.url, MAILROOM_SECRET_KEYS: keyEntry, SYNC_TASK_QUEUE: taskQueue },
    dataConverter: null,
    pool: db.pool,
    workflowBundle: await syncWorkflowBundle(),
  });
  const running = worker.run();
  const bar = new SingleBar({ format: '{phase} [{bar}] {value}/{total}', hideCursor: true }, Presets.shades_classic);
  try {
    const imap = await imapSession(dovecot, user.user, user.password);
    bar.start(n, 0, { phase: 'fill Dovecot' });
    for (let i = 1; i <= n; i++) {
      await imap.append('INBOX', testMessage('INBOX', i).raw);
      bar.increment();
    }
    bar.stop();
    await imap.logout();

    const store = createStore(db.pool);
    const userId = (await store.ensureUser('bench.owner@example.com')).id;
    const accountId = (
      await addAccountWithPassword(
        store,
        parseKeyring(keyEntry),
        userId,
        {
          imapHost: '127.0.0.1',
          imapPort: dovecot.imapPort,
          imapTls: false,
          imapUser: user.user,
          syncIntervalSeconds: 300,
        },
        user.password,
      )
    ).id;
    const sync = async (label: string) => {
      const t0 = Date.now();
      const handle = await env.client.workflow.start<typeof syncAccount>('syncAccount', {
        taskQueue,
        workflowId: `${syncWorkflowId(accountId)}-${label}`,
        args: [{ userId, accountId }],
      });
      const result = await handle.result();
      return { seconds: (Date.now() - t0) / 1000, result };
    };
    console.log('initial sync ...');
    const initial = await sync('initial');
    console.log('incremental sync (nothing changed) ...');
    const incremental = await sync('incremental');
    const stored = (await store.listMessages(userId, accountId)).length;

    const out = {
      when: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
      },
      messages: n,
      stored,
      initial: {
        seconds: +initial.seconds.toFixed(2),
        messagesPerSecond: +(n / initial.seconds).toFixed(1),
        status: initial.result.status,
      },
      incrementalNoChange: {
        seconds: +incremental.seconds.toFixed(2),
        messagesAdded: incremental.result.messagesAdded,
      },
    };
    console.table({
      'messages in the mailbox': n,
      'rows stored': stored,
      'initial sync, s': out.initial.seconds,
      'initial sync, messages/s': out.initial.messagesPerSecond,
      'incremental sync (no change), s': out.incrementalNoChange.seconds,
    });
    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `sync-${out.when.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    console.log(`written ${file}`);
  } finally {
    bar.stop();
    worker.shutdown();
    await running.catch(() => undefined);
    await env.teardown();
    await dovecot.cleanup();
    await db.drop();
  }
}

main().catch((err) => {
  console.error(`sync bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
