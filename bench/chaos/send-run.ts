// The send-sigkill chaos scenario (issue 23): messages sent from 2 accounts through the local
// SMTP submission server (AUTH with the accounts' own logins), while the sync worker process,
// which runs the send worker, is SIGKILLed again and again at the worst moment: the server has
// received DATA and stored the message, and the worker has not recorded the reply. Half the
// kills come before the server's 250 is written (the worker never hears it), half right after
// (the 250 races the worker's commit). The worker is restarted after each kill.
// Two provider variants, each on its own SMTP server (its stored files are the ground truth,
// one file per copy and recipient):
//   send-sigkill          the server files the Sent copy before it answers 250, as Gmail and
//                         Microsoft 365 do (and the demo's server): the retry finds the Message-ID
//                         in Sent, so zero lost and zero duplicates are required;
//   send-sigkill-no-sent  the server files nothing: a retry after an unrecorded acceptance
//                         submits again (docs/sending.md, the residual window). Duplicates are
//                         measured and reported, not failed; zero lost still required.
// Every outbox row must end `sent`. Used by bench/chaos.ts (full length) and
// test/integration/send-chaos.test.ts (scaled down).
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { ImapFlow } from 'imapflow';
import { loadSendConfig } from '../../lib/config/send';
import { createOutboxStore } from '../../lib/outbox';
import { createDraft, sendDraft, type OutboxCommandDeps } from '../../lib/outbox/commands';
import { appendToFolder } from '../../scripts/stack/demo-mailbox';
import { freePort } from '../../scripts/stack/ports';
import { startSmtpTarget, type SmtpTarget } from '../../scripts/stack/smtp-target';
import { startWatchStack, type WatchStack } from '../latency/stack';
import { onInterrupt } from './interrupt';

export const SEND_SCENARIOS = [
  {
    name: 'send-sigkill',
    what: 'sync worker (send worker) SIGKILLed after the SMTP server stored DATA, before or right after its 250; the provider files Sent before 250',
    providerSavesSent: true,
  },
  {
    name: 'send-sigkill-no-sent',
    what: 'as send-sigkill, the provider files nothing in Sent: duplicates measured (the residual window), not failed',
    providerSavesSent: false,
  },
] as const;

export type SendScenarioName = (typeof SEND_SCENARIOS)[number]['name'];

const RECIPIENTS = ['ann@remote.example', 'bob@remote.example'];

export interface SendChaosRow {
  scenario: SendScenarioName;
  what: string;
  providerSavesSent: boolean;
  /** Messages sent. */
  messages: number;
  /** Copies expected: messages × recipients. */
  expected: number;
  /** Copies the SMTP server stored. */
  delivered: number;
  /** (message, recipient) pairs with no copy. */
  lost: number;
  /** Copies beyond the first per (message, recipient). */
  duplicates: number;
  /** Messages with at least one second copy. */
  duplicatedMessages: number;
  kills: { beforeReply: number; afterReply: number };
  /** Outbox rows by final status (all must be `sent`). */
  statuses: Record<string, number>;
  /** submit_recovery of the rows: found_in_sent (closed by the Sent lookup), resubmitted (sent again). */
  recovery: Record<string, number>;
  /** From the last restart to the last row `sent`. */
  recoverSeconds: number | null;
  note: string;
  ok: boolean;
}

export interface SendChaosOptions {
  /** TEMPORAL_ADDRESS of a running server (namespace default). */
  temporalAddress: string;
  scenarios?: SendScenarioName[];
  /** Messages per scenario (default 40). */
  messages?: number;
  /** SIGKILLs per scenario, alternately before and right after the 250 (default 6). */
  kills?: number;
  /** How long the worker stays down after each kill (default 2 s). */
  downMs?: number;
  /** Until every row is final, per scenario (default 10 min). */
  timeoutMs?: number;
  dir?: string;
  log?: (line: string) => void;
}

/** Creates the Sent folder (Dovecot here makes none), so the provider and the worker can file into it. */
async function ensureSent(server: { host: string; port: number }, login: { user: string; password: string }) {
  const c = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    auth: { user: login.user, pass: login.password },
    logger: false,
  });
  c.on('error', () => {});
  await c.connect();
  try {
    await c.mailboxCreate('Sent').catch(() => undefined);
  } finally {
    await c.logout().catch(() => c.close());
  }
}

const bare = (id: string | undefined) => (id ?? '').trim().replace(/^<|>$/g, '');

export async function runSendScenarios(o: SendChaosOptions): Promise<SendChaosRow[]> {
  const say = o.log ?? (() => {});
  const wanted = o.scenarios ?? SEND_SCENARIOS.map((s) => s.name);
  const sendQueue = `send-chaos-${process.pid}-${randomBytes(3).toString('hex')}`;
  const stack: WatchStack = await startWatchStack({
    temporalAddress: o.temporalAddress,
    accounts: 2,
    watch: false,
    // Schedules at an hour: they take no part.
    intervalSeconds: 3600,
    env: { SEND_TASK_QUEUE: sendQueue, SEND_RATE_PER_MINUTE: '0', LOG_LEVEL: 'info' },
    dir: o.dir,
    label: 'send',
  });
  const connection = await Connection.connect({ address: o.temporalAddress });
  const targets: SmtpTarget[] = [];
  const cleanup = async () => {
    for (const t of targets) await t.stop().catch(() => undefined);
    await connection.close().catch(() => undefined);
    await stack.stop();
  };
  const stopped = onInterrupt(cleanup);
  const rows: SendChaosRow[] = [];
  try {
    await stack.addAccounts();
    await stack.startWorker();
    const server = { host: stack.dovecot().host, port: stack.dovecot().imapPort };
    for (const a of stack.accounts) await ensureSent(server, a.login);
    const client = new Client({ connection, namespace: 'default' });
    const outbox = createOutboxStore(stack.db.pool);
    const cfg = loadSendConfig({});
    const deps: OutboxCommandDeps = {
      store: outbox,
      client,
      taskQueue: sendQueue,
      maxAttachmentBytes: cfg.maxAttachmentBytes,
      maxRecipients: cfg.maxRecipients,
      attachmentDir: null,
      defaultUploadDir: join(stack.dir, 'uploads'),
      // A killed attempt is retried at once once its heartbeat times out; waits between
      // temporary failures kept short so a run ends in minutes.
      sendOptions: { initialRetryIntervalSeconds: 1, maxRetryIntervalSeconds: 5, maxAgeSeconds: 3600 },
    };
    const logins = new Map(stack.accounts.map((a) => [a.login.user.toLowerCase(), a.login]));
    const n = o.messages ?? 40;
    const kills = o.kills ?? 6;

    for (const sc of SEND_SCENARIOS.filter((s) => wanted.includes(s.name))) {
      const dir = join(stack.dir, `smtp-${sc.name}`);
      mkdirSync(dir, { recursive: true });
      const target = await startSmtpTarget({
        directory: dir,
        localDomains: [],
        mailboxes: [],
        port: await freePort(),
        auth: { users: stack.accounts.map((a) => a.login) },
      });
      targets.push(target);
      for (const a of stack.accounts)
        await outbox.updateSmtpSettings(a.userId, a.accountId, {
          host: '127.0.0.1',
          port: target.port,
          tls: 'none',
          sentFolder: 'Sent',
        });

      // The kill switch: armed before each batch, fired by the first DATA the server stores.
      let armed: { mode: 'before' | 'after'; fired: () => void } | null = null;
      const killed = { beforeReply: 0, afterReply: 0 };
      let providerFiled = 0;
      target.onBeforeAccept(async (info) => {
        if (sc.providerSavesSent) {
          const login = info.from ? logins.get(info.from.toLowerCase()) : undefined;
          if (!login) throw new Error(`send chaos: no login for envelope sender ${info.from}`);
          await appendToFolder(server, login, 'Sent', info.raw);
          providerFiled++;
        }
        const k = armed;
        if (!k) return;
        armed = null;
        if (k.mode === 'before') {
          // The worker dies with the message stored and the 250 not yet written.
          await stack.killWorker();
          killed.beforeReply++;
          k.fired();
        } else {
          // After this hook returns the server writes 250; the kill follows on the next turn.
          setTimeout(() => {
            void stack.killWorker().then(() => {
              killed.afterReply++;
              k.fired();
            });
          }, 0);
        }
      });

      // Messages in kills + 1 batches; each batch but the last with one kill armed.
      const sent: { userId: string; id: string; messageId: string }[] = [];
      let lastRestart = Date.now();
      const batches = kills + 1;
      for (let b = 0; b < batches; b++) {
        const from = Math.floor((b * n) / batches);
        const to = Math.floor(((b + 1) * n) / batches);
        let fired: Promise<void> | undefined;
        if (b < kills) {
          const mode = b % 2 === 0 ? 'before' : 'after';
          fired = new Promise<void>((resolve) => (armed = { mode, fired: resolve }));
        }
        for (let i = from; i < to; i++) {
          const a = stack.accounts[i % stack.accounts.length];
          const m = await createDraft(deps, a.userId, a.accountId, {
            to: [RECIPIENTS[0]],
            cc: [RECIPIENTS[1]],
            subject: `${sc.name} ${i + 1}`,
            text: `Message ${i + 1} of ${n} of the ${sc.name} chaos run.`,
          });
          await sendDraft(deps, a.userId, m.id);
          sent.push({ userId: a.userId, id: m.id, messageId: m.messageId });
        }
        if (fired) {
          // The switch is armed before the batch's first message is created, so a submission
          // reaches it unless the worker sends nothing at all: say so rather than hang.
          const waitMs = o.timeoutMs ?? 600_000;
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            fired,
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () =>
                  reject(
                    new Error(
                      `${sc.name}: no submission reached the SMTP server within ${waitMs / 1000} s of batch ${b + 1}, so the kill never fired; see ${stack.workerLog}`,
                    ),
                  ),
                waitMs,
              );
            }),
          ]).finally(() => clearTimeout(timer));
          await sleep(o.downMs ?? 2000);
          await stack.startWorker();
          lastRestart = Date.now();
          say(`${sc.name}: kill ${b + 1}/${kills} (${b % 2 === 0 ? 'before' : 'after'} the 250), worker restarted`);
        }
      }
      armed = null;

      // Every row final (sent, or failed/partial, which is a finding), within the deadline.
      const deadline = Date.now() + (o.timeoutMs ?? 600_000);
      const final = new Set(['sent', 'failed', 'partial', 'cancelled']);
      let statuses: Record<string, number> = {};
      let recovery: Record<string, number> = {};
      let lastSentAt = 0;
      for (;;) {
        statuses = {};
        recovery = {};
        let finished = 0;
        for (const s of sent) {
          const m = await outbox.get(s.userId, s.id);
          const st = m?.status ?? 'missing';
          statuses[st] = (statuses[st] ?? 0) + 1;
          if (m?.submitRecovery) recovery[m.submitRecovery] = (recovery[m.submitRecovery] ?? 0) + 1;
          if (final.has(st)) finished++;
          if (m?.finishedAt) lastSentAt = Math.max(lastSentAt, m.finishedAt.getTime());
        }
        if (finished === sent.length || Date.now() > deadline) break;
        await sleep(1000);
      }
      target.onBeforeAccept(null);

      // Ground truth: the server's stored copies, counted per Message-ID and recipient.
      const copies = new Map<string, number>();
      for (const d of await target.deliveries()) {
        const key = `${bare(d.messageId)} ${d.recipient.toLowerCase()}`;
        copies.set(key, (copies.get(key) ?? 0) + 1);
      }
      let lost = 0;
      let duplicates = 0;
      let delivered = 0;
      const duplicatedIds = new Set<string>();
      for (const s of sent)
        for (const r of RECIPIENTS) {
          const c = copies.get(`${bare(s.messageId)} ${r}`) ?? 0;
          delivered += c;
          if (c === 0) lost++;
          if (c > 1) {
            duplicates += c - 1;
            duplicatedIds.add(s.id);
          }
        }
      const allSent = (statuses.sent ?? 0) === sent.length;
      const row: SendChaosRow = {
        scenario: sc.name,
        what: sc.what,
        providerSavesSent: sc.providerSavesSent,
        messages: sent.length,
        expected: sent.length * RECIPIENTS.length,
        delivered,
        lost,
        duplicates,
        duplicatedMessages: duplicatedIds.size,
        kills: killed,
        statuses,
        recovery,
        recoverSeconds: allSent && lastSentAt ? +Math.max(0, (lastSentAt - lastRestart) / 1000).toFixed(1) : null,
        note: [
          `${stack.accounts.length} accounts, ${RECIPIENTS.length} recipients each`,
          `killed ${killed.beforeReply} before and ${killed.afterReply} right after the 250`,
          sc.providerSavesSent ? `provider filed ${providerFiled} Sent copies` : 'provider files nothing in Sent',
          `recovery ${JSON.stringify(recovery)}`,
          `rows ${JSON.stringify(statuses)}`,
          sc.providerSavesSent ? '' : `${duplicates} duplicate copies measured (residual window)`,
        ]
          .filter(Boolean)
          .join('; '),
        ok: lost === 0 && allSent && (!sc.providerSavesSent || duplicates === 0),
      };
      rows.push(row);
      say(
        `${row.ok ? 'ok  ' : 'FAIL'} ${row.scenario}: ${row.messages} messages, ${row.expected} copies expected, delivered ${row.delivered}, lost ${row.lost}, duplicates ${row.duplicates} — ${row.note}`,
      );
    }
  } finally {
    stopped();
    await cleanup();
  }
  return rows;
}
