// `npm run bench` (inbound part): N generated emails through the real pipeline on the
// local stack (Temporal dev server, s3rver, dynalite, SMTP target), then the same emails
// through the same activity functions called directly in one process, without Temporal.
// Prints a table and writes bench/results/inbound-<time>.json. Figures only: nothing
// here is asserted, and the numbers depend on the machine (printed with them).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Presets, SingleBar } from 'cli-progress';
import { createInboundActivities } from '../activities';
import { dynamodbRequests } from '../lib/metrics';
import type { EmailStatus } from '../lib/status';
import { DEFAULT_TABLES } from '../scripts/stack/dynamodb';
import { rawMail, sesBounce } from '../scripts/stack/demo-emails';
import { startInbound } from '../lib/start-inbound';
import { BUCKET, DOMAIN, startInboundStack, type InboundStack } from '../test/support/inbound-stack';

const USERS = Array.from({ length: 20 }, (_, i) => `user${i}@${DOMAIN}`);
const OOO = USERS[0];
const FORWARDER = USERS[1];
const BLOCKER = USERS[2];

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A deterministic, realistic mix: sizes, 1-4 recipients, blocked, OOO, forwards, bounces. */
function generate(n: number): Buffer[] {
  const out: Buffer[] = [];
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < n; i++) {
    const kind = rnd();
    const size = [1_000, 5_000, 20_000, 100_000, 400_000][Math.floor(rnd() ** 2 * 5)];
    const to = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => USERS[3 + Math.floor(rnd() * 17)]))];
    if (kind < 0.05) out.push(sesBounce({ to: to[0], sesMessageId: `bench-${i}`, bouncedRecipient: `gone${i}@far.example`, originalSubject: `Offer ${i}` }));
    else if (kind < 0.15) out.push(rawMail({ from: `promo${i}@spam.example`, to: [BLOCKER, ...to.slice(0, 1)], subject: `Spam ${i}` }));
    else if (kind < 0.25) out.push(rawMail({ from: `client${i % 50}@sender.example`, to: [OOO, ...to.slice(0, 1)], subject: `Question ${i}` }));
    else if (kind < 0.35) out.push(rawMail({ from: `friend${i}@sender.example`, to: [FORWARDER], subject: `Photos ${i}` }));
    else out.push(rawMail({ from: `person${i}@sender.example`, to, subject: `Message ${i}`, body: 'x'.repeat(size) }));
  }
  return out;
}

async function seed(stack: InboundStack) {
  await stack.putItem(DEFAULT_TABLES.blocked, { email_address: BLOCKER, blocked_patterns: ['*@spam.example'] });
  await stack.putItem(DEFAULT_TABLES.rules, { email_address: OOO, ooo_active: true, ooo_message: 'Away.', ooo_content_type: 'text', forwards: [] });
  await stack.putItem(DEFAULT_TABLES.rules, { email_address: FORWARDER, ooo_active: false, forwards: [USERS[4], 'me@home.example'] });
}

const dynamoTotal = async () => (await dynamodbRequests.get()).values.reduce((n, v) => n + v.value, 0);

async function main() {
  const { values } = parseArgs({ options: { emails: { type: 'string', default: '1000' }, rate: { type: 'string', default: '0' } } });
  const n = Number(values.emails);
  const rate = Number(values.rate); // starts per second; 0 = all at once
  const mails = generate(n);
  const stack = await startInboundStack({ mailboxes: USERS, env: { MAILROOM_CODEC_KEYS: '', AUTOREPLY_INTERVAL_HOURS: '1' } });
  await seed(stack);
  const bar = new SingleBar({ format: '{phase} [{bar}] {value}/{total}', hideCursor: true }, Presets.shades_classic);
  let peakRss = 0;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
  try {
    // Temporal path.
    const keys: string[] = [];
    bar.start(n, 0, { phase: 'upload  ' });
    for (const [i, raw] of mails.entries()) {
      keys.push(await stack.put(raw, `bench-${Date.now().toString(36)}-${i}`));
      bar.increment();
    }
    const dynamoBefore = await dynamoTotal();
    const connBefore = stack.mail.connections;
    bar.start(n, 0, { phase: 'temporal' });
    const t0 = Date.now();
    const ids: string[] = [];
    for (const [i, key] of keys.entries()) {
      if (rate > 0) {
        const due = t0 + (i / rate) * 1000;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
      ids.push((await startInbound(stack.env.client, stack.config.taskQueue, { domain: DOMAIN, bucket: BUCKET, key })).workflowId);
    }
    const statuses: Record<string, number> = {};
    await Promise.all(
      ids.map(async (id) => {
        const r = await stack.env.client.workflow.getHandle(id).result();
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        bar.increment();
      }),
    );
    const temporalSeconds = (Date.now() - t0) / 1000;
    bar.stop();
    const latencies: number[] = [];
    let events = 0;
    let historyBytes = 0;
    for (const id of ids) {
      const d = await stack.env.client.workflow.getHandle(id).describe();
      latencies.push(d.closeTime!.getTime() - d.startTime.getTime());
      events += d.historyLength;
      historyBytes += d.historySize ?? 0;
    }
    latencies.sort((a, b) => a - b);
    const dynamoPerEmail = ((await dynamoTotal()) - dynamoBefore) / n;
    const connectionsPer100 = ((stack.mail.connections - connBefore) / n) * 100;

    // Direct path: the same activities, in order, no Temporal.
    const direct = createInboundActivities({ s3: stack.s3, dynamo: stack.dynamo, config: stack.config, transports: stack.transports });
    const env = new MockActivityEnvironment();
    // Activities need an activity context (heartbeats); the mock gives one, no Temporal.
    const call = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A): Promise<R> => env.run(fn, ...a) as Promise<R>;
    const keys2: string[] = [];
    for (const [i, raw] of mails.entries()) keys2.push(await stack.put(raw, `direct-${Date.now().toString(36)}-${i}`));
    bar.start(n, 0, { phase: 'direct  ' });
    const t1 = Date.now();
    let next = 0;
    const lane = async () => {
      while (next < keys2.length) {
        const key = keys2[next++];
        const ref = { domain: DOMAIN, bucket: BUCKET, key };
        const f = await call(direct.fetchEmail, ref);
        if (f.kind === 'email') {
          const s = f.summary;
          const blocked = await call(direct.checkBlocklist, { senders: [s.from ?? ''], recipients: s.recipients });
          const active = s.recipients.filter((r) => !blocked.some((b) => b.recipient === r));
          if (active.length) await call(direct.deliverEmail, { domain: DOMAIN, bucket: BUCKET, key, recipients: active, envelopeFrom: s.sender });
          if (!s.bounce && active.length) await call(direct.loadRules, { recipients: active });
          await call(direct.tagEmail, { domain: DOMAIN, bucket: BUCKET, key, record: { status: (active.length ? 'delivered' : 'blocked') as EmailStatus } });
        }
        bar.increment();
      }
    };
    await Promise.all(Array.from({ length: 20 }, lane));
    const directSeconds = (Date.now() - t1) / 1000;
    bar.stop();

    const result = {
      when: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      backend: 'temporal dev server (SQLite)',
      emails: n,
      rate: rate || 'all at once',
      statuses,
      temporal: {
        emailsPerSecond: +(n / temporalSeconds).toFixed(1),
        latencyMs: { p50: pct(latencies, 50), p95: pct(latencies, 95), p99: pct(latencies, 99) },
        historyEventsPerEmail: +(events / n).toFixed(1),
        historyBytesPerEmail: Math.round(historyBytes / n),
        dynamodbRequestsPerEmail: +dynamoPerEmail.toFixed(2),
        smtpConnectionsPer100Emails: +connectionsPer100.toFixed(1),
      },
      direct: { emailsPerSecond: +(n / directSeconds).toFixed(1) },
      durabilityCost: +(directSeconds > 0 ? temporalSeconds / directSeconds : NaN).toFixed(2),
      peakRssMiB: Math.round(peakRss / 2 ** 20),
    };
    console.table({
      'emails/s (Temporal)': result.temporal.emailsPerSecond,
      'emails/s (direct, no Temporal)': result.direct.emailsPerSecond,
      'time ratio Temporal/direct': result.durabilityCost,
      'latency p50 ms': result.temporal.latencyMs.p50,
      'latency p95 ms': result.temporal.latencyMs.p95,
      'latency p99 ms': result.temporal.latencyMs.p99,
      'history events/email': result.temporal.historyEventsPerEmail,
      'history bytes/email': result.temporal.historyBytesPerEmail,
      'DynamoDB requests/email': result.temporal.dynamodbRequestsPerEmail,
      'SMTP connections/100 emails': result.temporal.smtpConnectionsPer100Emails,
      'peak RSS MiB (worker + bench)': result.peakRssMiB,
    });
    console.log('statuses:', JSON.stringify(statuses));
    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `inbound-${result.when.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    console.log(`written ${file}`);
  } finally {
    clearInterval(rssTimer);
    bar.stop();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
