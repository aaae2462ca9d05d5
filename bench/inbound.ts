// `npm run bench` (inbound part): N generated emails through the real pipeline on the
// local stack (versitygw, dynalite, SMTP target) on each Temporal backend in turn (--backend
// dev|postgres|both: the dev server on SQLite, the real server on PostgreSQL), then the
// same emails through the same activity functions called directly in one process, without
// Temporal. Prints a table (a column per backend) and writes
// bench/results/inbound-<time>.json, with a chart beside it (.svg: emails finished over
// time and the latency distribution, per backend). Figures only: nothing here is asserted, and the
// numbers depend on the machine (printed with them).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Presets, SingleBar } from 'cli-progress';
import { createInboundActivities } from '../activities';
import { inboundChart, renderSvg, type Series } from './chart';
import { dynamodbRequests } from '../lib/metrics';
import type { EmailStatus } from '../lib/status';
import { DEFAULT_TABLES } from '../scripts/stack/dynamodb';
import { rawMail, sesBounce } from '../scripts/stack/demo-emails';
import { startInbound } from '../lib/start-inbound';
import { DEFAULT_HISTORY_SHARDS } from '../scripts/stack/temporal-postgres';
import { BUCKET, DOMAIN, startInboundStack, type InboundStack } from '../test/support/inbound-stack';
import type { TemporalBackend } from '../test/support/temporal';

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

const STACK_ENV = { MAILROOM_CODEC_KEYS: '', AUTOREPLY_INTERVAL_HOURS: '1' };
const BACKEND_NAMES: Record<TemporalBackend, string> = {
  dev: 'temporal dev server (SQLite, 1 history shard)',
  postgres: `temporal-server on PostgreSQL (${DEFAULT_HISTORY_SHARDS} history shards)`,
};

type Bar = SingleBar;

/** Workflow starts in flight at once (see runTemporal). */
const START_LANES = 32;

/** Calls `work(i)` for i = 0..count-1, at most `lanes` at a time, in order of i. */
async function inLanes(count: number, lanes: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < count; i = next++) await work(i);
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}

/** A tuning variant: worker settings (lib/config.ts WORKER_*, SMTP_POOL_SIZE, ...) and eager start. */
interface Tuning {
  label: string;
  env: Record<string, string>;
  eager: boolean;
}

/**
 * CPU seconds used so far, by who used them (Linux /proc; empty elsewhere): this process
 * (worker, bench, dynalite and the SMTP targets all share its event loop), its
 * Temporal server and S3 server (versitygw) child processes, and every PostgreSQL backend
 * on the machine.
 */
function cpuSeconds(): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (who: string, ticks: number) => (out[who] = (out[who] ?? 0) + ticks / 100); // USER_HZ is 100 on Linux
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[1] = ppid, f[11] = utime, f[12] = stime
    const ticks = Number(f[11]) + Number(f[12]);
    if (Number(pid) === process.pid) add('worker + bench process', ticks);
    else if (Number(f[1]) === process.pid && comm.startsWith('temporal')) add(comm.startsWith('temporal-ui') ? 'temporal web ui' : 'temporal server', ticks);
    else if (Number(f[1]) === process.pid && comm === 'versitygw') add('s3 server', ticks);
    else if (comm === 'postgres') add('postgresql (all)', ticks);
  }
  return out;
}

/** The Temporal part for one backend, on a stack of its own: upload, start all, wait for all, read the histories. */
async function runTemporal(backend: TemporalBackend, mails: Buffer[], rate: number, bar: Bar, tuning: Tuning) {
  const n = mails.length;
  const stack = await startInboundStack({ mailboxes: USERS, env: { ...STACK_ENV, ...tuning.env }, temporalBackend: backend });
  // Eager start needs the worker's own NativeConnection under the client (same process).
  const starter = tuning.eager ? new Client({ connection: stack.env.nativeConnection, namespace: stack.env.namespace ?? 'default' }) : stack.env.client;
  let peakRss = 0;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
  try {
    await seed(stack);
    const keys: string[] = [];
    bar.start(n, 0, { phase: `upload ${backend.padEnd(8)}` });
    for (const [i, raw] of mails.entries()) {
      keys.push(await stack.put(raw, `bench-${Date.now().toString(36)}-${i}`));
      bar.increment();
    }
    const dynamoBefore = await dynamoTotal();
    const connBefore = stack.mail.connections;
    bar.start(n, 0, { phase: `${backend.padEnd(15)}` });
    const cpuBefore = cpuSeconds();
    const t0 = Date.now();
    // Starts go out from START_LANES lanes at once: one after another, each start waits on a
    // busy server and the figure would measure the starter instead of the pipeline. At a
    // rate, start i is due at i/rate seconds; "all at once" is as fast as the server takes them.
    const ids: string[] = new Array<string>(n);
    await inLanes(n, START_LANES, async (i) => {
      const due = rate > 0 ? t0 + (i / rate) * 1000 : 0;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      ids[i] = (await startInbound(starter, stack.config.taskQueue, { domain: DOMAIN, bucket: BUCKET, key: keys[i] }, undefined, {}, { requestEagerStart: tuning.eager })).workflowId;
    });
    const statuses: Record<string, number> = {};
    await Promise.all(
      ids.map(async (id) => {
        const r = await stack.env.client.workflow.getHandle(id).result();
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        bar.increment();
      }),
    );
    const seconds = (Date.now() - t0) / 1000;
    const cpuAfter = cpuSeconds();
    bar.stop();
    const latencies: number[] = [];
    const finishedAt: number[] = [];
    let events = 0;
    let historyBytes = 0;
    for (const id of ids) {
      const d = await stack.env.client.workflow.getHandle(id).describe();
      latencies.push(d.closeTime!.getTime() - d.startTime.getTime());
      finishedAt.push((d.closeTime!.getTime() - t0) / 1000);
      events += d.historyLength;
      historyBytes += d.historySize ?? 0;
    }
    latencies.sort((a, b) => a - b);
    // CPU used during the run, in cores (2 = both cores of a two-core machine busy throughout).
    const coresUsed = Object.fromEntries(Object.entries(cpuAfter).map(([who, s]) => [who, +((s - (cpuBefore[who] ?? 0)) / seconds).toFixed(2)]));
    return {
      stack,
      // For the chart only (the JSON keeps the summary figures).
      timeline: { finishedAt, latencySeconds: latencies.map((ms) => ms / 1000) },
      run: {
        backend,
        server: BACKEND_NAMES[backend],
        statuses,
        seconds,
        temporal: {
          emailsPerSecond: +(n / seconds).toFixed(1),
          latencyMs: { p50: pct(latencies, 50), p95: pct(latencies, 95), p99: pct(latencies, 99) },
          historyEventsPerEmail: +(events / n).toFixed(1),
          historyBytesPerEmail: Math.round(historyBytes / n),
          dynamodbRequestsPerEmail: +(((await dynamoTotal()) - dynamoBefore) / n).toFixed(2),
          smtpConnectionsPer100Emails: +(((stack.mail.connections - connBefore) / n) * 100).toFixed(1),
        },
        coresUsed,
        peakRssMiB: Math.round(peakRss / 2 ** 20),
      },
    };
  } catch (err) {
    await stack.stop();
    throw err;
  } finally {
    clearInterval(rssTimer);
    bar.stop();
  }
}

/** Direct path: the same activities, in order, no Temporal, 20 lanes, on the given stack's S3, DynamoDB and SMTP. */
async function runDirect(stack: InboundStack, mails: Buffer[], bar: Bar) {
  const n = mails.length;
  const direct = createInboundActivities({ s3: stack.s3, dynamo: stack.dynamo, config: stack.config, transports: stack.transports });
  const env = new MockActivityEnvironment();
  // Activities need an activity context (heartbeats); the mock gives one, no Temporal.
  const call = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A): Promise<R> => env.run(fn, ...a) as Promise<R>;
  const keys2: string[] = [];
  for (const [i, raw] of mails.entries()) keys2.push(await stack.put(raw, `direct-${Date.now().toString(36)}-${i}`));
  bar.start(n, 0, { phase: 'direct         ' });
  const t1 = Date.now();
  const finishedAt: number[] = [];
  await inLanes(keys2.length, 20, async (i) => {
    const key = keys2[i];
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
    finishedAt.push((Date.now() - t1) / 1000);
    bar.increment();
  });
  const seconds = (Date.now() - t1) / 1000;
  bar.stop();
  return { seconds, emailsPerSecond: +(n / seconds).toFixed(1), finishedAt };
}

async function main() {
  const { values } = parseArgs({
    options: {
      emails: { type: 'string', default: '1000' },
      rate: { type: 'string', default: '0' },
      backend: { type: 'string', default: 'both' },
      // Tuning runs: --set WORKER_MAX_CACHED_WORKFLOWS=200 (repeatable), --eager, --label name.
      set: { type: 'string', multiple: true, default: [] },
      eager: { type: 'boolean', default: false },
      label: { type: 'string', default: 'default settings' },
    },
  });
  const tuning: Tuning = { label: values.label, eager: values.eager, env: {} };
  for (const kv of values.set) {
    const at = kv.indexOf('=');
    if (at <= 0) throw new Error(`--set expects KEY=VALUE, got ${JSON.stringify(kv)}`);
    tuning.env[kv.slice(0, at)] = kv.slice(at + 1);
  }
  const n = Number(values.emails);
  const rate = Number(values.rate); // starts per second; 0 = all at once
  if (!['dev', 'postgres', 'both'].includes(values.backend)) throw new Error(`--backend must be dev, postgres or both, not ${values.backend}`);
  const backends: TemporalBackend[] = values.backend === 'both' ? ['dev', 'postgres'] : [values.backend as TemporalBackend];
  const mails = generate(n);
  const bar = new SingleBar({ format: '{phase} [{bar}] {value}/{total}', hideCursor: true }, Presets.shades_classic);
  try {
    // Each backend on a fresh stack, one after the other (never both servers at once on
    // the machine); the direct part once, on the last stack, before it stops.
    const runs = [];
    const throughput: Series[] = [];
    const latencies: { name: string; seconds: number[] }[] = [];
    let direct: Awaited<ReturnType<typeof runDirect>> | undefined;
    for (const [i, backend] of backends.entries()) {
      const { stack, run, timeline } = await runTemporal(backend, mails, rate, bar, tuning);
      throughput.push({ name: BACKEND_NAMES[backend], finishedAt: timeline.finishedAt });
      latencies.push({ name: BACKEND_NAMES[backend], seconds: timeline.latencySeconds });
      try {
        if (i === backends.length - 1) direct = await runDirect(stack, mails, bar);
      } finally {
        await stack.stop();
      }
      runs.push(run);
    }

    const result = {
      when: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      emails: n,
      rate: rate || 'all at once',
      tuning,
      runs: runs.map(({ seconds, ...run }) => ({ ...run, durabilityCost: +(direct!.seconds > 0 ? seconds / direct!.seconds : NaN).toFixed(2) })),
      direct: { emailsPerSecond: direct!.emailsPerSecond },
    };
    const table: Record<string, Record<string, number | string>> = {};
    const row = (label: string, get: (r: (typeof result.runs)[number]) => number | string) => (table[label] = Object.fromEntries(result.runs.map((r) => [r.backend, get(r)])));
    row('emails/s (Temporal)', (r) => r.temporal.emailsPerSecond);
    row('emails/s (direct, no Temporal)', () => result.direct.emailsPerSecond);
    row('time ratio Temporal/direct', (r) => r.durabilityCost);
    row('latency p50 ms', (r) => r.temporal.latencyMs.p50);
    row('latency p95 ms', (r) => r.temporal.latencyMs.p95);
    row('latency p99 ms', (r) => r.temporal.latencyMs.p99);
    row('history events/email', (r) => r.temporal.historyEventsPerEmail);
    row('history bytes/email', (r) => r.temporal.historyBytesPerEmail);
    row('DynamoDB requests/email', (r) => r.temporal.dynamodbRequestsPerEmail);
    row('SMTP connections/100 emails', (r) => r.temporal.smtpConnectionsPer100Emails);
    for (const who of [...new Set(result.runs.flatMap((r) => Object.keys(r.coresUsed)))].sort()) row(`cores used: ${who}`, (r) => r.coresUsed[who] ?? 0);
    row('peak RSS MiB (worker + bench)', (r) => r.peakRssMiB);
    console.table(table);
    for (const r of result.runs) console.log(`statuses (${r.backend}):`, JSON.stringify(r.statuses));
    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `inbound-${result.when.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    console.log(`written ${file}`);
    throughput.push({ name: 'direct, no Temporal', finishedAt: direct!.finishedAt });
    const title = `${n} emails, ${rate ? `${rate} starts/s` : 'all started at once'}, ${tuning.label} (${result.machine.cpus} cores, ${result.machine.cpu})`;
    const svg = file.replace(/\.json$/, '.svg');
    writeFileSync(svg, await renderSvg(inboundChart(title, throughput, latencies)));
    console.log(`written ${svg}`);
  } finally {
    bar.stop();
  }
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
