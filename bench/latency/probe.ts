// New mail for the latency benchmark and the watcher chaos scenarios, and the check that
// it arrived: messages with a unique Message-ID appended over IMAP (one session per account)
// or, while Dovecot is down, dropped into the Maildir as an MTA would; PostgreSQL polled
// until each row is there; then every message counted once by (account, folder,
// UIDVALIDITY, UID) and once by Message-ID.
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import type { Pool } from 'pg';
import type { BenchAccount } from './stack';

export interface SentMessage {
  accountId: string;
  messageId: string;
  /** Date.now() when the APPEND completed (or the file was in the Maildir). */
  appendedAt: number;
  /** Date.now() when the poll first saw its row; undefined until then. */
  seenAt?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A message whose Message-ID (and Subject) carry `token`, unique per run. */
export function probeMessage(token: string): { messageId: string; raw: string } {
  const messageId = `<${token}@latency.mailroom.test>`;
  const raw = [
    'From: Latency probe <probe@example.org>',
    'To: someone@example.test',
    `Subject: probe ${token}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: ${messageId}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Probe ${token}.`,
    '',
  ].join('\r\n');
  return { messageId, raw };
}

/** Appends to the accounts' INBOXes over IMAP, straight to Dovecot (never through the fault proxy). */
export class MailDrop {
  private readonly sessions = new Map<string, Promise<ImapFlow>>();
  private readonly run = randomBytes(4).toString('hex');
  private counter = 0;

  constructor(private readonly server: () => { imapPort: number; mailboxPath(user: string): string }) {}

  private session(account: BenchAccount): Promise<ImapFlow> {
    let s = this.sessions.get(account.accountId);
    if (!s) {
      const client = new ImapFlow({
        host: '127.0.0.1',
        port: this.server().imapPort,
        secure: false,
        auth: { user: account.login.user, pass: account.login.password },
        logger: false,
        disableAutoIdle: true,
      });
      client.on('error', () => {});
      client.on('close', () => {
        if (this.sessions.get(account.accountId) === s) this.sessions.delete(account.accountId);
      });
      s = client.connect().then(() => client);
      s.catch(() => this.sessions.delete(account.accountId));
      this.sessions.set(account.accountId, s);
    }
    return s;
  }

  nextToken(label: string): string {
    return `${label}-${this.run}-${++this.counter}`;
  }

  /** APPENDs one message; a broken session (Dovecot restarted) is replaced and the APPEND tried again, up to a minute. */
  async append(account: BenchAccount, label = 'm'): Promise<SentMessage> {
    const m = probeMessage(this.nextToken(label));
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const client = await this.session(account);
        await client.append('INBOX', m.raw);
        return { accountId: account.accountId, messageId: m.messageId, appendedAt: Date.now() };
      } catch (err) {
        const s = this.sessions.get(account.accountId);
        this.sessions.delete(account.accountId);
        void s?.then((c) => c.close()).catch(() => undefined);
        if (Date.now() > deadline)
          throw new Error(`APPEND for ${account.login.user} failed for a minute: ${(err as Error).message}`);
        await sleep(200);
      }
    }
  }

  /**
   * Delivers one message into the account's Maildir `new/` while Dovecot may be down, as an
   * MTA's local delivery would; Dovecot gives it a UID when the mailbox is next opened.
   */
  deliverToMaildir(account: BenchAccount, label = 'd'): SentMessage {
    const m = probeMessage(this.nextToken(label));
    const maildir = this.server().mailboxPath(account.login.user);
    if (!existsSync(join(maildir, 'new')))
      throw new Error(`${maildir}/new does not exist: log in to ${account.login.user} once before delivering`);
    const file = join(maildir, 'new', `${Date.now()}.M${randomBytes(6).toString('hex')}.${hostname()}`);
    writeFileSync(file, m.raw, { mode: 0o644 });
    // Dovecot's mail processes run as the Maildir's owner; as root, hand the file to it.
    if (userInfo().uid === 0) {
      const owner = ownerOf(maildir);
      if (owner) chownSync(file, owner.uid, owner.gid);
    }
    return { accountId: account.accountId, messageId: m.messageId, appendedAt: Date.now() };
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.then((c) => c.logout()).catch(() => undefined)));
  }
}

function ownerOf(path: string): { uid: number; gid: number } | undefined {
  try {
    const st = statSync(path);
    return { uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  }
}

/**
 * Polls PostgreSQL (every `intervalMs`) for the rows of the messages handed to track(): the
 * latency is from APPEND completion to the first poll that sees the row, so it includes up to
 * one poll interval.
 */
export class ArrivalTracker {
  readonly sent: SentMessage[] = [];
  private readonly pending = new Map<string, SentMessage>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    private readonly pool: Pool,
    private readonly intervalMs = 50,
  ) {}

  track(m: SentMessage): void {
    this.sent.push(m);
    this.pending.set(m.messageId, m);
    this.timer ??= setInterval(() => void this.poll(), this.intervalMs);
  }

  get outstanding(): number {
    return this.pending.size;
  }

  private async poll(): Promise<void> {
    if (this.polling || this.pending.size === 0) return;
    this.polling = true;
    try {
      const r = await this.pool.query<{ message_id: string }>(
        'SELECT DISTINCT message_id FROM messages WHERE message_id = ANY($1::text[])',
        [[...this.pending.keys()]],
      );
      const now = Date.now();
      for (const { message_id } of r.rows) {
        const m = this.pending.get(message_id);
        if (m) {
          m.seenAt = now;
          this.pending.delete(message_id);
        }
      }
    } catch {
      // PostgreSQL busy or a connection dropped: the next poll asks again.
    } finally {
      this.polling = false;
    }
  }

  /** Resolves when every tracked message has been seen, or at the deadline (what is left is missed). */
  async waitAll(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0 && Date.now() < deadline) await sleep(this.intervalMs);
    await this.poll();
  }

  /** Latencies in ms of the messages seen. */
  latencies(): number[] {
    return this.sent.filter((m) => m.seenAt !== undefined).map((m) => m.seenAt! - m.appendedAt);
  }

  missed(): SentMessage[] {
    return [...this.pending.values()];
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export interface Duplicates {
  /** Rows beyond the first per (account, folder, UIDVALIDITY, UID). */
  byUid: number;
  /** Rows beyond the first per (account, Message-ID), over the tracked messages. */
  byMessageId: number;
  /** Tracked messages with no row at all. */
  missing: number;
}

/** Counts duplicate and missing rows for the tracked messages. */
export async function countDuplicates(pool: Pool, sent: SentMessage[]): Promise<Duplicates> {
  const ids = sent.map((m) => m.messageId);
  const byUid = await pool.query<{ n: string }>(
    `SELECT coalesce(sum(c - 1), 0) AS n FROM (
       SELECT count(*) AS c FROM messages GROUP BY account_id, folder, uidvalidity, uid HAVING count(*) > 1) d`,
  );
  const rows = await pool.query<{ account_id: string; message_id: string; c: string }>(
    'SELECT account_id, message_id, count(*) AS c FROM messages WHERE message_id = ANY($1::text[]) GROUP BY 1, 2',
    [ids],
  );
  const found = new Map(rows.rows.map((r) => [`${r.account_id} ${r.message_id}`, Number(r.c)]));
  let byMessageId = 0;
  let missing = 0;
  for (const m of sent) {
    const c = found.get(`${m.accountId} ${m.messageId}`) ?? 0;
    if (c === 0) missing++;
    else byMessageId += c - 1;
  }
  return { byUid: Number(byUid.rows[0].n), byMessageId, missing };
}

export interface LatencySummary {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Nearest-rank percentiles in ms. */
export function summarize(latenciesMs: number[]): LatencySummary {
  const s = [...latenciesMs].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : null);
  return {
    count: s.length,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: s.length ? s[s.length - 1] : null,
    mean: s.length ? Math.round(s.reduce((a, b) => a + b, 0) / s.length) : null,
  };
}

/** Reads a file that may not exist (Dovecot's log for diagnostics). */
export function tail(path: string, chars = 3000): string {
  try {
    return readFileSync(path, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}
