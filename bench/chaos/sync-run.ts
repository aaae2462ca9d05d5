// The sync chaos scenario: an account sync whose IMAP connection, and then whose
// PostgreSQL connection, is cut mid-sync (TCP proxies in front of both). The sync must
// resume from its checkpoint and end with the store equal to the server: no duplicate
// rows, no gaps.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { SingleBar } from 'cli-progress';
import type { Client } from '@temporalio/client';
import { createStore } from '../../lib/sync-store';
import { addAccountWithPassword } from '../../lib/sync-store/credentials';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { startTcpFaultProxy } from '../../scripts/stack/fault-proxy';
import { onInterrupt, onlyOnce } from './interrupt';
import type { syncAccount } from '../../workflows/syncAccount';
import { syncWorkflowId } from '../../contracts/sync';
import {
  createTestDatabase,
  fillMailbox,
  imapSession,
  serverView,
  startTestDovecot,
} from '../../test/integration/sync-fixtures';
import { until } from './inbound-run';

const ROOT = join(__dirname, '..', '..');
const USER = { user: 'carol@example.test', password: 'carol-secret' };

export interface SyncOutcome {
  messages: number;
  stored: number;
  duplicates: number;
  lost: number;
  status: string;
  recoverSeconds: number;
  note: string;
}

export async function runSyncScenario(o: {
  client: Client;
  temporalAddress: string;
  dir: string;
  messages: number;
  bar?: SingleBar;
}): Promise<SyncOutcome> {
  const db = await createTestDatabase();
  const dovecot = await startTestDovecot([USER]);
  const keyEntry = generateKeyEntry('chaos');
  const taskQueue = `chaos-sync-${process.pid}`;
  let worker: ChildProcess | undefined;
  const imapProxy = await startTcpFaultProxy({ target: { host: '127.0.0.1', port: dovecot.imapPort } });
  const dbUrl = new URL(db.url);
  const pgProxy = await startTcpFaultProxy({ target: { host: dbUrl.hostname, port: Number(dbUrl.port || 5432) } });
  const cleanup = onlyOnce(async () => {
    if (worker && worker.exitCode === null) worker.kill('SIGKILL');
    await Promise.all([imapProxy.stop(), pgProxy.stop()]);
    await dovecot.cleanup();
    await db.drop();
  });
  const stopped = onInterrupt(cleanup);
  try {
    const inbox = Math.ceil(o.messages * 0.8);
    const imap = await imapSession(dovecot, USER.user, USER.password);
    await fillMailbox(imap, { INBOX: inbox, Sent: o.messages - inbox });
    await imap.logout();

    const store = createStore(db.pool);
    const userId = (await store.ensureUser('carol.owner@example.com')).id;
    const account = await addAccountWithPassword(
      store,
      parseKeyring(keyEntry),
      userId,
      {
        imapHost: '127.0.0.1',
        imapPort: imapProxy.port,
        imapTls: false,
        imapUser: USER.user,
        syncIntervalSeconds: 600,
      },
      USER.password,
    );
    const log = createWriteStream(join(o.dir, 'sync-worker.log'), { flags: 'a' });
    worker = spawn(process.execPath, ['--import', 'tsx', 'workers/sync-main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: o.temporalAddress,
        TEMPORAL_NAMESPACE: 'default',
        // The worker reaches PostgreSQL only through the proxy, so cut() hits its pool.
        DATABASE_URL: `postgres://${dbUrl.username || 'postgres'}@127.0.0.1:${pgProxy.port}${dbUrl.pathname}`,
        MAILROOM_SECRET_KEYS: keyEntry,
        SYNC_TASK_QUEUE: taskQueue,
        SYNC_METRICS_PORT: '0',
        MAILROOM_CODEC_KEYS: 'none',
        // Small batches, so both cuts land in the middle of the sync.
        SYNC_BATCH_SIZE: '25',
        SYNC_BATCH_PAUSE_MS: '20',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.pipe(log);
    worker.stderr!.pipe(log);

    const handle = await o.client.workflow.start<typeof syncAccount>('syncAccount', {
      taskQueue,
      workflowId: syncWorkflowId(account.id),
      args: [{ userId, accountId: account.id, options: { heartbeatTimeoutSeconds: 5 } }],
    });
    let stored = 0;
    const poll = setInterval(() => {
      store.listMessages(userId, account.id).then(
        (l) => {
          stored = l.length;
          o.bar?.update(Math.min(stored, o.messages));
        },
        () => undefined,
      );
    }, 200);
    o.bar?.start(o.messages, 0, { phase: 'imap-pg-cut' });
    await until(() => stored >= o.messages / 3);
    imapProxy.cut();
    const atImapCut = stored;
    await until(() => stored >= (o.messages * 2) / 3);
    pgProxy.cut();
    const liftedAt = Date.now();
    const atPgCut = stored;
    const result = await handle.result();
    const done = Date.now();
    clearInterval(poll);
    o.bar?.stop();

    const rows = await store.listMessages(userId, account.id);
    const key = (m: { folder: string; uidValidity: number | string; uid: number }) =>
      `${m.folder}/${m.uidValidity}/${m.uid}`;
    const distinct = new Set(rows.map(key));
    const imap2 = await imapSession(dovecot, USER.user, USER.password);
    const server = await serverView(imap2);
    await imap2.logout();
    const lost = server.filter((m) => !distinct.has(key(m))).length;
    return {
      messages: server.length,
      stored: distinct.size,
      duplicates: rows.length - distinct.size,
      lost,
      status: result.status,
      recoverSeconds: (done - liftedAt) / 1000,
      note: `IMAP cut at ${atImapCut}, PostgreSQL cut at ${atPgCut} stored messages; run ${result.status}`,
    };
  } finally {
    stopped();
    await cleanup();
  }
}
