// Shared set-up for the account-sync integration tests: a throw-away PostgreSQL database per
// test file, a private Dovecot, mailbox filling over IMAP, and the server's view of a
// mailbox to compare the store against.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type pino from 'pino';
import { bundleWorkflowCode, DefaultLogger, Runtime, type WorkflowBundle } from '@temporalio/worker';
import { ImapFlow } from 'imapflow';
import type { Pool } from 'pg';
import { createPool, dropDatabase, ensureDatabase, withDatabase } from '../../lib/storage/db';
import { migrate } from '../../lib/storage/migrate';
import {
  startDovecot,
  type DovecotServer,
  type DovecotUser,
  type StartDovecotOptions,
} from '../../scripts/stack/dovecot';
import type { SyncConfig } from '../../lib/config/sync';
import { createSyncWorker } from '../../workers/sync';
import { historyToJSON } from '../replay/history-json';

export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

/** A fresh, migrated database mailroom_test_<random>; drop() removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const url = withDatabase(ADMIN_DATABASE_URL, `mailroom_test_${randomBytes(6).toString('hex')}`);
  await ensureDatabase(url);
  const pool = createPool(url, { max: 5 });
  await migrate(pool);
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      await dropDatabase(url);
    },
  };
}

export interface TestDovecot extends DovecotServer {
  cleanup(): Promise<void>;
}

export async function startTestDovecot(
  users: DovecotUser[],
  options: Pick<StartDovecotOptions, 'oauth2'> = {},
): Promise<TestDovecot> {
  const directory = mkdtempSync(join(tmpdir(), 'mailroom-dovecot-'));
  const server = await startDovecot({ directory, users, ...options });
  return {
    ...server,
    async cleanup() {
      await server.stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

export async function imapSession(dovecot: DovecotServer, user: string, password: string): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: dovecot.imapPort,
    secure: false,
    auth: { user, pass: password },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

export function testMessage(folder: string, n: number, extra = ''): { messageId: string; raw: string } {
  const messageId = `<${folder.replace(/[^A-Za-z0-9]/g, '-')}-${n}-${randomBytes(4).toString('hex')}@test.mailroom>`;
  const raw = [
    `From: Sender ${n} <sender${n}@example.org>`,
    'To: someone@example.test',
    `Subject: ${folder} message ${n}${extra}`,
    `Date: ${new Date(Date.UTC(2024, 0, 1, 0, n % 60)).toUTCString()}`,
    `Message-ID: ${messageId}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Body of message ${n} in ${folder}.`,
    '',
  ].join('\r\n');
  return { messageId, raw };
}

/** Appends `count` messages to each folder (creating folders), returns their Message-IDs. */
export async function fillMailbox(
  client: ImapFlow,
  folders: Record<string, number>,
  startAt = 1,
): Promise<Record<string, string[]>> {
  const ids: Record<string, string[]> = {};
  for (const [folder, count] of Object.entries(folders)) {
    if (folder !== 'INBOX') {
      try {
        await client.mailboxCreate(folder);
      } catch (err) {
        if ((err as { serverResponseCode?: string }).serverResponseCode !== 'ALREADYEXISTS') throw err;
      }
    }
    ids[folder] = [];
    for (let i = startAt; i < startAt + count; i++) {
      const m = testMessage(folder, i);
      await client.append(folder, m.raw);
      ids[folder].push(m.messageId);
    }
  }
  return ids;
}

export interface ServerMessage {
  folder: string;
  uidValidity: number;
  uid: number;
  messageId: string | null;
  flags: string[];
}

/** What the server holds, in the shape the store keeps it (for exact comparison). */
export async function serverView(client: ImapFlow): Promise<ServerMessage[]> {
  const out: ServerMessage[] = [];
  for (const f of await client.list()) {
    if (f.flags.has('\\Noselect')) continue;
    const box = await client.mailboxOpen(f.path, { readOnly: true });
    if (box.exists === 0) continue;
    for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true })) {
      out.push({
        folder: f.path,
        uidValidity: Number(box.uidValidity),
        uid: m.uid,
        messageId: m.envelope?.messageId ?? null,
        flags: [...(m.flags ?? [])].filter((x) => x !== '\\Recent').sort(),
      });
    }
  }
  await client.mailboxClose().catch(() => false);
  return sortMessages(out);
}

export function sortMessages<T extends { folder: string; uid: number }>(list: T[]): T[] {
  return [...list].sort((a, b) => (a.folder === b.folder ? a.uid - b.uid : a.folder < b.folder ? -1 : 1));
}

/**
 * Keeps worker logs to errors: the tests provoke activity failures on purpose. Call before
 * startTestTemporal() (the runtime can be installed only once per process).
 */
export function quietTemporalLogs(): void {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    /* already installed */
  }
}

let bundle: Promise<WorkflowBundle> | undefined;
/** The sync workflow bundle, built once per test process (bundling takes seconds). */
export function syncWorkflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows/sync'), logger: quietLogger });
  return bundle;
}

const noop = () => {};
const quietLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: (m: string) => console.error(m),
  log: noop,
};

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * With RECORD_HISTORIES=1, writes a run's history to test/replay/histories/sync-<name>.json
 * (payloads are plaintext in these tests; machine names replaced). The replay test replays
 * every sync-*.json against the current workflow code.
 */
export async function recordSyncHistory(
  client: Client,
  workflowId: string,
  runId: string | undefined,
  name: string,
): Promise<void> {
  if (!process.env.RECORD_HISTORIES) return;
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  // Machine names and this checkout's path (in failures' stack traces) are not the history's business.
  const root = join(__dirname, '..', '..');
  const json = historyToJSON(history).replaceAll(`@${hostname()}"`, '@recorder"').replaceAll(`${root}/`, '');
  writeFileSync(join(__dirname, '..', 'replay', 'histories', `sync-${name}.json`), json);
}

/** A sync worker in this process on the test database, plaintext payloads (tests read histories); stop() shuts it down. */
export async function startSyncTestWorker(
  env: TestWorkflowEnvironment,
  o: { db: TestDatabase; keyEntry: string; taskQueue: string; config?: Partial<SyncConfig>; logger?: pino.Logger },
): Promise<{ stop(): Promise<void> }> {
  const worker = await createSyncWorker(env.nativeConnection, env.namespace ?? 'default', {
    env: { ...process.env, DATABASE_URL: o.db.url, MAILROOM_SECRET_KEYS: o.keyEntry, SYNC_TASK_QUEUE: o.taskQueue },
    dataConverter: null,
    pool: o.db.pool,
    workflowBundle: await syncWorkflowBundle(),
    config: o.config,
    logger: o.logger,
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running.catch(() => {});
    },
  };
}
