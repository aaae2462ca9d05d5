// `npm run bench:search [-- --messages 100000 --users 10 --queries 40]`: fills a throw-away
// PostgreSQL database with N synced messages (generated: English-like text with a Zipf word
// distribution, real-sized subjects, address lists and text bodies, flags and three years of
// dates; one user holds 40% of the mail, as a heavy mailbox does) and measures the latency of
// searchMessages (lib/sync-store/search.ts) over a mix of queries: common and rare words, two
// words, a phrase, a sender, filters without text, a date range, relevance order, a second
// page. Prints p50/p95/p99 per query kind and overall, and writes
// bench/results/search-<time>.json. Target: p95 <= 50 ms at 100,000 messages.
//
// Rows are inserted with one multi-row INSERT per 1,000 messages (the messages_search_fields
// trigger computes their search vectors, as it does for every synced message); raw bodies are
// not stored (raw_ref only), since search never reads them and they would only cost disk.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { createStore } from '../lib/sync-store';
import { searchMessages, type SearchQueryInput } from '../lib/sync-store/search';
import { createTestDatabase } from '../test/integration/sync-fixtures';
import { benchArgs } from './args';

/** Deterministic PRNG (mulberry32): the same data set every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(22);
const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];

// Words a query looks for, planted at known rates; the rest of the text is generated words.
const PLANTED = {
  invoice: 0.2, // common: in one message of five
  meeting: 0.1,
  quarterly: 0.03,
  reconciliation: 0.002, // rare: about one in five hundred
  zanzibar: 0.0005,
} as const;

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'sto', 'ri', 'pa', 'ven', 'tor', 'al', 'es', 'un', 'der', 'ma', 'sel', 'qu'];
// 5,000 distinct generated words, used with a Zipf distribution (a few very common, most rare).
const VOCABULARY = Array.from({ length: 5000 }, (_, i) => {
  let w = '';
  let n = i + 7;
  while (n > 0) {
    w += SYLLABLES[n % SYLLABLES.length];
    n = Math.floor(n / SYLLABLES.length);
  }
  return w;
});
const ZIPF_CDF = (() => {
  const weights = VOCABULARY.map((_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  let acc = 0;
  return weights.map((w) => (acc += w / total));
})();
function word(): string {
  const r = random();
  let lo = 0;
  let hi = ZIPF_CDF.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ZIPF_CDF[mid] < r) lo = mid + 1;
    else hi = mid;
  }
  return VOCABULARY[lo];
}
const words = (n: number) => Array.from({ length: n }, word).join(' ');

const SENDERS = Array.from({ length: 800 }, (_, i) => `${VOCABULARY[i * 3]} ${VOCABULARY[i * 5 + 1]}`);
const DOMAINS = Array.from({ length: 60 }, (_, i) => `${VOCABULARY[i * 7 + 2]}.example.com`);
const address = (i: number) => `${SENDERS[i].split(' ')[0]}.${SENDERS[i].split(' ')[1]}@${DOMAINS[i % DOMAINS.length]}`;
const FOLDERS = ['INBOX', 'INBOX', 'INBOX', 'INBOX', 'Archive', 'Archive', 'Sent', 'Newsletters'];
const START = Date.UTC(2023, 11, 1);
const SPAN_MS = 3 * 365 * 86_400_000;

/** Body length in words: mostly short mail, a long tail (about 1.5 KB median, some 30 KB+). */
function bodyWords(): number {
  const r = random();
  if (r < 0.6) return 40 + Math.floor(random() * 200);
  if (r < 0.9) return 240 + Math.floor(random() * 800);
  return 1000 + Math.floor(random() * 5000);
}

function message(uid: number) {
  const sender = Math.floor(random() * random() * SENDERS.length);
  const planted = Object.entries(PLANTED)
    .filter(([, rate]) => random() < rate)
    .map(([w]) => w);
  const subjectWords = words(3 + Math.floor(random() * 6)).split(' ');
  const bodyParts = words(bodyWords()).split(' ');
  for (const w of planted) {
    // A third of planted words land in the subject, the rest in the body.
    if (random() < 0.33) subjectWords.splice(Math.floor(random() * subjectWords.length), 0, w);
    else bodyParts.splice(Math.floor(random() * bodyParts.length), 0, w);
  }
  const flags = [
    ...(random() < 0.7 ? ['\\Seen'] : []),
    ...(random() < 0.05 ? ['\\Flagged'] : []),
    ...(random() < 0.15 ? ['\\Answered'] : []),
    ...(random() < 0.02 ? ['$Work'] : []),
  ].sort();
  const date = new Date(START + Math.floor(random() * SPAN_MS));
  return {
    uid,
    folder: pick(FOLDERS),
    messageId: `<bench-${uid}@example.com>`,
    from: `${SENDERS[sender]} <${address(sender)}>`,
    to: Array.from({ length: 1 + Math.floor(random() * random() * 6) }, () =>
      address(Math.floor(random() * SENDERS.length)),
    ),
    subject: subjectWords.join(' '),
    date,
    flags,
    size: 0,
    body: bodyParts.join(' '),
  };
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return +sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)].toFixed(2);
}
const stats = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: percentile(s, 100),
  };
};

async function main() {
  const { values } = benchArgs(__filename, {
    messages: { type: 'string', default: '100000' },
    users: { type: 'string', default: '10' },
    queries: { type: 'string', default: '40' },
  });
  const total = Number(values.messages);
  const userCount = Number(values.users);
  const perKind = Number(values.queries);
  if (![total, userCount, perKind].every((n) => Number.isInteger(n) && n > 0))
    throw new Error('--messages, --users and --queries must be positive whole numbers');
  const db = await createTestDatabase();
  try {
    const store = createStore(db.pool);
    // User 0 holds 40% of the mail; the others share the rest.
    const users: { id: string; accounts: string[]; share: number }[] = [];
    for (let u = 0; u < userCount; u++) {
      const id = (await store.ensureUser(`bench${u}@example.com`)).id;
      const accounts: string[] = [];
      for (let a = 0; a < 2; a++) {
        const account = crypto.randomUUID();
        await store.addAccount(id, {
          id: account,
          imapHost: 'imap.example.com',
          imapPort: 993,
          imapTls: true,
          imapUser: `bench${u}-${a}`,
          passwordEncrypted: 'v1:bench:unused',
          syncIntervalSeconds: 900,
        });
        accounts.push(account);
      }
      users.push({ id, accounts, share: userCount === 1 ? 1 : u === 0 ? 0.4 : 0.6 / (userCount - 1) });
    }

    const t0 = Date.now();
    let uid = 0;
    let bodyBytes = 0;
    const BATCH = 1000;
    for (const user of users) {
      const count = Math.round(total * user.share);
      for (let done = 0; done < count;) {
        const n = Math.min(BATCH, count - done);
        const rows = Array.from({ length: n }, () => ({ ...message(++uid), account: pick(user.accounts) }));
        bodyBytes += rows.reduce((a, r) => a + Buffer.byteLength(r.body), 0);
        await db.pool.query(
          `INSERT INTO messages (account_id, user_id, folder, uidvalidity, uid, message_id, from_address, to_addresses,
                                 subject, sent_at, internal_date, flags, size, raw_ref, body_text)
           SELECT r.account_id, $1, r.folder, 1, r.uid, r.message_id, r.from_address, r.to_addresses, r.subject,
                  r.date, r.date, r.flags, octet_length(r.body_text), 'imap://bench/' || r.uid, r.body_text
           FROM jsonb_to_recordset($2::jsonb) AS r(account_id uuid, folder text, uid bigint, message_id text,
             from_address text, to_addresses text[], subject text, date timestamptz, flags text[], body_text text)`,
          [
            user.id,
            JSON.stringify(
              rows.map((r) => ({
                account_id: r.account,
                folder: r.folder,
                uid: r.uid,
                message_id: r.messageId,
                from_address: r.from,
                to_addresses: r.to,
                subject: r.subject,
                date: r.date,
                flags: r.flags,
                body_text: r.body,
              })),
            ),
          ],
        );
        done += n;
        if (uid % 10_000 < BATCH) process.stderr.write(`filled ${uid}/${total}\n`);
      }
    }
    await db.pool.query('VACUUM ANALYZE messages');
    const fillSeconds = (Date.now() - t0) / 1000;
    const { rows: sizeRows } = await db.pool.query(
      `SELECT pg_total_relation_size('messages') AS total, pg_relation_size('messages_search_vector_idx') AS gin`,
    );

    // Query kinds, each run against the heavy user and against the others in turn.
    const heavy = users[0];
    const someSender = (await db.pool.query('SELECT from_address FROM messages WHERE user_id = $1 LIMIT 1', [heavy.id]))
      .rows[0].from_address as string;
    const senderAddress = /<(.*)>/.exec(someSender)?.[1] ?? someSender;
    const kinds: Record<string, (userIndex: number) => Promise<SearchQueryInput>> = {
      'common word': async () => ({ text: 'invoice' }),
      'rare word': async () => ({ text: 'reconciliation' }),
      'very rare word': async () => ({ text: 'zanzibar' }),
      'two words': async () => ({ text: 'invoice meeting' }),
      'phrase + exclusion': async () => ({ text: '"quarterly invoice" -meeting' }),
      sender: async () => ({ text: senderAddress }),
      'unread in INBOX (no text)': async () => ({ folders: ['INBOX'], withoutFlags: ['\\Seen'] }),
      'flagged, one account (no text)': async (u) => ({ flags: ['\\Flagged'], accountIds: [users[u].accounts[0]] }),
      'word + last 90 days': async () => ({
        text: 'meeting',
        since: new Date(START + SPAN_MS - 90 * 86_400_000),
      }),
      'relevance order': async () => ({ text: 'quarterly', sort: 'relevance' }),
      'newest 50 (no filter)': async () => ({}),
      'second page, common word': async (u) => {
        const first = await searchMessages(db.pool, users[u].id, { text: 'invoice' });
        return { text: 'invoice', ...(first.nextCursor ? { cursor: first.nextCursor } : {}) };
      },
    };
    // Warm-up: one of each (plans and caches), not measured.
    for (const make of Object.values(kinds)) await searchMessages(db.pool, heavy.id, await make(0));

    const latency: Record<string, number[]> = {};
    const hits: Record<string, number> = {};
    const all: number[] = [];
    for (let i = 0; i < perKind; i++) {
      // Half of the queries against the heavy user, half spread over the others.
      const u = i % 2 === 0 || users.length === 1 ? 0 : 1 + (i % (users.length - 1));
      for (const [kind, make] of Object.entries(kinds)) {
        const query = { ...(await make(u)), limit: 50 };
        const start = process.hrtime.bigint();
        const result = await searchMessages(db.pool, users[u].id, query);
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        (latency[kind] ??= []).push(ms);
        all.push(ms);
        if (u === 0) hits[kind] = result.messages.length;
      }
    }

    const perKindStats = Object.fromEntries(Object.entries(latency).map(([k, ms]) => [k, stats(ms)]));
    const overall = stats(all);
    const out = {
      when: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        postgres: (await db.pool.query('SHOW server_version')).rows[0].server_version as string,
      },
      messages: uid,
      users: userCount,
      heavyUserMessages: Math.round(total * heavy.share),
      fill: {
        seconds: +fillSeconds.toFixed(1),
        averageBodyBytes: Math.round(bodyBytes / uid),
        tableBytes: Number(sizeRows[0].total),
        ginIndexBytes: Number(sizeRows[0].gin),
      },
      queriesPerKind: perKind,
      latencyMs: { overall, perKind: perKindStats },
      heavyUserFirstPageHits: hits,
      targetP95Ms: 50,
      meetsTarget: overall.p95 <= 50,
    };
    console.table(
      Object.fromEntries(
        [...Object.entries(perKindStats), ['ALL', overall] as const].map(([k, s]) => [
          k,
          { 'p50 ms': s.p50, 'p95 ms': s.p95, 'p99 ms': s.p99, 'max ms': s.max },
        ]),
      ),
    );
    console.log(
      `${uid} messages (${users.length} users, the heaviest ${out.heavyUserMessages}), filled in ${out.fill.seconds} s; ` +
        `p95 ${overall.p95} ms (target 50 ms: ${out.meetsTarget ? 'met' : 'MISSED'})`,
    );
    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `search-${out.when.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    console.log(`written ${file}`);
  } finally {
    await db.drop();
  }
}

main().catch((err) => {
  console.error(`search bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
