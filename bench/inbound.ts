// `npm run bench` (inbound part): N generated emails through the real pipeline on each
// Temporal backend in turn (--backend dev|postgres|both: the dev server on SQLite, the real
// server on PostgreSQL), then the same emails through the same activity functions called
// directly in one process, without Temporal. Each process does one job, so each can be
// measured alone: the emulators (S3, DynamoDB, two SMTP targets) run in processes of their
// own (bench/emulators.ts), the worker is the real worker process (workers/main.ts; --workers N
// runs N of them on one task queue, each with its own WORKER_NAME, and the JSON gives each
// one's emails, CPU, DynamoDB requests and memory beside the total), and this process only
// starts workflows and reads results.
//
// Per backend: throughput and latency with every email started at once (from 32 lanes), then,
// in the same run, latency at half that throughput (--half-load-emails, started at a steady
// rate); CPU milliseconds per email for the worker, the Temporal server, PostgreSQL, the
// emulators and this process; the worker's RSS while the emails are in flight; and a check
// that every email completed once (copies stored by the SMTP targets = what the results say).
// Prints a table (a column per backend) and writes bench/results/inbound-<time>.json, with a
// chart beside it (.svg). Figures only: nothing here is asserted, and the numbers depend on
// the machine and on what else runs on it (the JSON says how busy the machine was besides).
//   --emails N            emails per backend (default 1000)
//   --backend dev|postgres|both   which Temporal backend(s) (default both)
//   --rate R              starts per second in the first phase (default 0: all at once)
//   --half-load-emails N  emails of the half-load phase (default half of --emails; 0 skips it)
//   --workers N           worker processes on the task queue (default 1)
//   --compiled            run the production build as the image does (npm run build first)
//   --set KEY=VALUE       the worker's environment (repeatable); --eager: the worker in this
//                         process; --label NAME names the run in the JSON
//   --shards N, --server-set key=value, --max-conns N, --pg-url URL, --sql-plugin NAME,
//   --server-profile S    the PostgreSQL-backed server's settings and a Go CPU profile
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { Presets, SingleBar } from 'cli-progress';
import { createInboundActivities } from '../activities';
import { createAwsClients } from '../lib/aws/clients';
import { createTransports } from '../lib/smtp/transports';
import { bucketForDomain, type Config, loadConfig } from '../lib/config';
import type { BounceRewriteInfo, InboundResult } from '../contracts/inbound';
import { blockedRecord, deliveryRequest, notBlockedRecipients } from '../lib/mail/plain-delivery';
import { autoReplyTarget, reportedRecipient } from '../lib/mail/rule-gates';
import type { EmailStatus } from '../contracts/email-status';
import { startInbound } from '../starters/start-inbound';
import { DEFAULT_TABLES, ensureTables } from '../scripts/stack/dynamodb';
import { rawMail, sesBounce } from '../scripts/stack/demo-emails';
import { freePort } from '../scripts/stack/ports';
import { S3_CREDENTIALS } from '../scripts/stack/s3';
import { workerCommand } from '../scripts/stack/image-command';
import {
  DEFAULT_HISTORY_SHARDS,
  DEFAULT_TEMPORAL_PG_URL,
  type TemporalPostgresOptions,
} from '../scripts/stack/temporal-postgres';
import { dropDatabase, withDatabase } from '../lib/storage/db';
import { Client as PgClient } from 'pg';
import { localStackEnv } from '../scripts/stack/worker-env';
import { startTestTemporal, type TemporalBackend } from '../test/support/temporal';
import { createInboundWorker } from '../workers/inbound';
import { activitySteps } from '../test/support/history-steps';
import { inboundChart, renderSvg, type Series } from './chart';
import { type EmulatorProcess, startEmulatorProcess } from './emulators';
import { cpuSecondsOf, machineBusy, memoryOf, processTree, serverCpuSeconds, threadCpuSeconds } from './procstat';
import { benchArgs } from './args';

const ROOT = join(__dirname, '..');
const DOMAIN = 'example.com';
const OTHER_DOMAIN = 'example.org';
const BUCKET = bucketForDomain(DOMAIN);
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
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < n; i++) {
    const kind = rnd();
    const size = [1_000, 5_000, 20_000, 100_000, 400_000][Math.floor(rnd() ** 2 * 5)];
    const to = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => USERS[3 + Math.floor(rnd() * 17)]))];
    if (kind < 0.05)
      out.push(
        sesBounce({
          to: to[0],
          sesMessageId: `bench-${i}`,
          bouncedRecipient: `gone${i}@far.example`,
          originalSubject: `Offer ${i}`,
        }),
      );
    else if (kind < 0.15)
      out.push(rawMail({ from: `promo${i}@spam.example`, to: [BLOCKER, ...to.slice(0, 1)], subject: `Spam ${i}` }));
    else if (kind < 0.25)
      out.push(
        rawMail({ from: `client${i % 50}@sender.example`, to: [OOO, ...to.slice(0, 1)], subject: `Question ${i}` }),
      );
    else if (kind < 0.35)
      out.push(rawMail({ from: `friend${i}@sender.example`, to: [FORWARDER], subject: `Photos ${i}` }));
    else out.push(rawMail({ from: `person${i}@sender.example`, to, subject: `Message ${i}`, body: 'x'.repeat(size) }));
  }
  return out;
}

async function seed(dynamo: DynamoDBClient) {
  const put = (table: string, item: Record<string, unknown>) =>
    dynamo.send(new PutItemCommand({ TableName: table, Item: marshall(item) }));
  await put(DEFAULT_TABLES.blocked, { email_address: BLOCKER, blocked_patterns: ['*@spam.example'] });
  await put(DEFAULT_TABLES.rules, {
    email_address: OOO,
    ooo_active: true,
    ooo_message: 'Away.',
    ooo_content_type: 'text',
    forwards: [],
  });
  await put(DEFAULT_TABLES.rules, {
    email_address: FORWARDER,
    ooo_active: false,
    forwards: [USERS[4], 'me@home.example'],
  });
}

const BACKEND_NAMES: Record<TemporalBackend, string> = {
  dev: 'temporal dev server (SQLite, 1 history shard)',
  postgres: `temporal-server on PostgreSQL`,
};

type Bar = SingleBar;

/** Workflow starts in flight at once (see runPhase). */
const START_LANES = 32;

/** Calls `work(i)` for i = 0..count-1, at most `lanes` at a time, in order of i. */
async function inLanes(count: number, lanes: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < count; i = next++) await work(i);
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}

/** A tuning variant: worker settings (lib/config/index.ts WORKER_*, SMTP_POOL_SIZE, ...), server settings, eager start. */
interface Tuning {
  label: string;
  env: Record<string, string>;
  eager: boolean;
  workers: number;
  /** Run the compiled worker (npm run build) instead of the sources. */
  compiled: boolean;
  /** The PostgreSQL backend's settings (scripts/stack/temporal-postgres.ts); empty = its defaults. */
  postgres: Partial<
    Pick<TemporalPostgresOptions, 'historyShards' | 'dynamicConfig' | 'maxConns' | 'databaseUrl' | 'sqlPlugin'>
  >;
}

/** A worker: a process of its own, or (--eager) a Worker inside this process. */
interface RunningWorker {
  pid: number;
  /** Its WORKER_NAME: the identity the server records on the workflow tasks it completes. */
  name: string;
  metricsPort?: number;
  log?: string;
  stop(): Promise<void>;
}

/**
 * Starts the worker as an operator would, on the stack's settings; resolves once it polls.
 * From the sources (node --import tsx workers/main.ts: workflows bundled at start), or
 * --compiled, the production build as the image runs it (the Dockerfile's CMD: node with its options, dist/workers/main.js).
 */
async function spawnWorker(
  env: NodeJS.ProcessEnv,
  name: string,
  log: string,
  compiled: boolean,
): Promise<RunningWorker> {
  const metricsPort = await freePort();
  const out = createWriteStream(log, { flags: 'a' });
  // The image's command line (Dockerfile CMD, V8 memory settings included), or the sources with the same options.
  const args = workerCommand(compiled);
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      ...env,
      // Each process its own name, so the per-worker figures and the histories tell them apart.
      WORKER_NAME: name,
      HEALTH_PORT: String(await freePort()),
      METRICS_PORT: String(metricsPort),
      TEMPORAL_METRICS_BIND: `127.0.0.1:${await freePort()}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen = (seen + d.toString()).slice(-4096);
      if (seen.includes('worker started')) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code, signal) => {
      // The directory goes when the bench ends: the reason goes into the error.
      out.end(() =>
        reject(
          new Error(
            `worker exited (${signal ?? code}) before it started; the end of its log:\n${readFileSync(log, 'utf8').split('\n').slice(-15).join('\n')}`,
          ),
        ),
      );
    });
  });
  return {
    pid: child.pid!,
    name,
    metricsPort,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM'); // graceful: in-flight tasks finish
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A counter of a worker process so far (its /metrics), summed over its labels: DynamoDB requests, workflow activations. */
async function workerCounter(w: RunningWorker, name: string): Promise<number> {
  if (!w.metricsPort) return NaN;
  const text = await (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** What each worker process has done so far: emails it finished (tagged), DynamoDB requests it made, workflow activations. */
async function workerCounts(stack: BenchStack): Promise<{ emails: number; dynamodb: number; activations: number }[]> {
  return Promise.all(
    stack.workers.map(async (w) => ({
      emails: await workerCounter(w, 'emails_processed_total'),
      dynamodb: await workerCounter(w, 'dynamodb_requests_total'),
      activations: await workerCounter(w, 'workflow_activations_total'),
    })),
  );
}

interface BenchStack {
  backend: TemporalBackend;
  temporal: TestWorkflowEnvironment;
  client: Client;
  config: Config;
  s3: S3Client;
  dynamo: DynamoDBClient;
  emulators: EmulatorProcess[];
  mail: EmulatorProcess;
  internal: EmulatorProcess;
  workers: RunningWorker[];
  /** PostgreSQL backend: the server's databases and its Prometheus metrics port. */
  postgres?: { url: string; databases: string[]; metricsPort: number; pprofPort: number };
  put(raw: Buffer, key: string): Promise<void>;
  /** Workers and Temporal only: the direct run uses the emulators after. */
  stopTemporal(): Promise<void>;
  stop(): Promise<void>;
}

async function startBenchStack(backend: TemporalBackend, tuning: Tuning, dir: string): Promise<BenchStack> {
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  const smtp = (name: string) => ({
    kind: 'smtp' as const,
    name,
    directory: join(dir, name),
    localDomains: [DOMAIN, OTHER_DOMAIN],
    mailboxes: USERS,
  });
  const emulators = await Promise.all([
    startEmulatorProcess({ kind: 's3', directory: join(dir, 's3') }),
    startEmulatorProcess({ kind: 'dynamodb' }),
    startEmulatorProcess(smtp('smtp-mail')),
    startEmulatorProcess(smtp('smtp-internal')),
  ]);
  const [s3srv, dyn, mail, internal] = emulators;
  let temporal: TestWorkflowEnvironment | undefined;
  const workers: RunningWorker[] = [];
  // Databases of our own on the PostgreSQL backend, so its connections can be told from other users' of the same PostgreSQL.
  const postgres =
    backend === 'postgres'
      ? {
          url: tuning.postgres.databaseUrl ?? DEFAULT_TEMPORAL_PG_URL,
          databases: [`bench_temporal_${process.pid}`, `bench_temporal_${process.pid}_vis`],
          metricsPort: await freePort(),
          pprofPort: await freePort(),
        }
      : undefined;
  let inProcess: { worker: Worker; running: Promise<void>; close(): void } | undefined;
  const stopTemporal = async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    if (inProcess) {
      inProcess.worker.shutdown();
      await inProcess.running;
      inProcess.close();
      inProcess = undefined;
    }
    await temporal?.teardown();
    temporal = undefined;
    if (postgres) for (const name of postgres.databases) await dropDatabase(withDatabase(postgres.url, name));
  };
  const stop = async () => {
    await stopTemporal();
    await Promise.all(emulators.map((e) => e.stop()));
  };
  try {
    temporal = await startTestTemporal({
      backend,
      postgres: postgres
        ? {
            ...tuning.postgres,
            databases: { default: postgres.databases[0], visibility: postgres.databases[1] },
            metricsPort: postgres.metricsPort,
            pprofPort: postgres.pprofPort,
          }
        : undefined,
    });
    const settings: Record<string, string> = {
      ...localStackEnv({
        s3: s3srv.endpoint,
        dynamodb: dyn.endpoint,
        domains: [DOMAIN, OTHER_DOMAIN],
        smtpPort: mail.port,
        internalSmtpPort: internal.port,
      }),
      TASK_QUEUE: `bench-${process.pid}-${backend}`,
      WORKER_NAME: 'bench-worker',
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace ?? 'default',
      // Plaintext payloads, as in earlier runs of this bench (the codec's cost is not measured).
      MAILROOM_CODEC_KEYS: 'none',
      AUTOREPLY_INTERVAL_HOURS: '1',
      // As in production (a log line per email is part of the worker's cost); into a file.
      LOG_LEVEL: 'info',
      ...tuning.env,
    };
    const config = loadConfig(settings);
    const aws = createAwsClients(config);
    await ensureTables(aws.dynamo, config.tables);
    for (const d of [DOMAIN, OTHER_DOMAIN]) await aws.s3.send(new CreateBucketCommand({ Bucket: bucketForDomain(d) }));
    await seed(aws.dynamo);
    if (tuning.eager) {
      // Eager start hands the first workflow task to a worker sharing the client's NativeConnection: same process only.
      const transports = createTransports(config);
      const worker = await createInboundWorker({
        connection: temporal.nativeConnection,
        namespace: temporal.namespace ?? 'default',
        client: temporal.client,
        deps: { ...aws, config, transports },
        deployment: null,
      });
      inProcess = { worker, running: worker.run(), close: () => transports.close() };
    } else {
      const env = { ...process.env, ...settings };
      for (let i = 0; i < tuning.workers; i++)
        workers.push(
          await spawnWorker(env, `bench-worker-${i}`, join(dir, `worker-${backend}-${i}.log`), tuning.compiled),
        );
    }
    const client = tuning.eager
      ? new Client({ connection: temporal.nativeConnection, namespace: temporal.namespace ?? 'default' })
      : temporal.client;
    return {
      backend,
      temporal,
      client,
      config,
      s3: aws.s3,
      dynamo: aws.dynamo,
      emulators,
      mail,
      internal,
      workers: inProcess ? [{ pid: process.pid, name: 'bench-worker', stop: async () => {} }] : workers,
      postgres,
      async put(raw, key) {
        await aws.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: raw, ContentType: 'message/rfc822' }));
      },
      stopTemporal,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * PostgreSQL processes by pid (pg_stat_activity): the backends connected to this server's
 * databases, and the instance's background processes (WAL writer, checkpointer, autovacuum;
 * shared with whoever else uses the instance).
 */
async function postgresPids(
  pg: NonNullable<BenchStack['postgres']>,
): Promise<{ ours: number[]; background: number[] }> {
  const client = new PgClient({ connectionString: withDatabase(pg.url, 'postgres') });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number; datname: string | null; backend_type: string }>(
      'SELECT pid, datname, backend_type FROM pg_stat_activity',
    );
    return {
      ours: rows.filter((r) => r.datname !== null && pg.databases.includes(r.datname)).map((r) => r.pid),
      background: rows.filter((r) => r.backend_type !== 'client backend' && r.datname === null).map((r) => r.pid),
    };
  } finally {
    await client.end();
  }
}

/** CPU seconds used so far, by role and process (pid → seconds); the Temporal server's processes as one. */
async function cpuByRole(stack: BenchStack): Promise<Record<string, Record<number, number>>> {
  const of = (pids: number[]) => Object.fromEntries(pids.map((p) => [p, cpuSecondsOf(p)]));
  const servers = serverCpuSeconds();
  const out: Record<string, Record<number, number>> = {
    worker: of(stack.workers.map((w) => w.pid)),
    'temporal server': { 0: servers.temporal },
    'temporal web ui': { 0: servers.temporalUi },
  };
  if (stack.postgres) {
    const pids = await postgresPids(stack.postgres);
    out["postgresql: this server's connections"] = of(pids.ours);
    out['postgresql: background (whole instance)'] = of(pids.background);
  }
  for (const e of stack.emulators) out[`emulator: ${e.name}`] = of(processTree(e.pid));
  // With --eager the worker is this process: counted once, as the worker.
  if (stack.workers[0]?.pid !== process.pid) out['bench (starter, results)'] = of([process.pid]);
  return out;
}

/** The worker processes' CPU seconds so far by thread role (bench/procstat.ts threadCpuSeconds), summed over the workers. */
function workerThreadCpu(stack: BenchStack): Record<string, number> {
  const out: Record<string, number> = {};
  for (const w of stack.workers)
    for (const [role, sec] of Object.entries(threadCpuSeconds(w.pid))) out[role] = (out[role] ?? 0) + sec;
  return out;
}

/** CPU seconds per role between two snapshots, over the processes alive at the end (one that started meanwhile counts from 0). */
function cpuDelta(
  before: Record<string, Record<number, number>>,
  after: Record<string, Record<number, number>>,
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after).map(([role, pids]) => [
      role,
      Object.entries(pids).reduce((n, [pid, s]) => n + s - (before[role]?.[Number(pid)] ?? 0), 0),
    ]),
  );
}

/** The PostgreSQL-backed server's persistence requests so far, by operation (its Prometheus metrics). */
async function persistenceRequests(stack: BenchStack): Promise<Record<string, number>> {
  if (!stack.postgres) return {};
  const text = await (await fetch(`http://127.0.0.1:${stack.postgres.metricsPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('persistence_requests{')) continue;
    const op = /operation="([^"]+)"/.exec(line)?.[1] ?? '?';
    out[op] = (out[op] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

interface Phase {
  ids: string[];
  seconds: number;
  results: InboundResult[];
  latencies: number[];
  finishedAt: number[];
  events: number;
  historyBytes: number;
  /** From each run's history: workflow tasks completed, activities and local activities. */
  steps: { workflowTasks: number; activities: number; localActivities: number };
}

/** Starts every key (at `rate` per second, or all at once from START_LANES lanes) and waits for all. */
async function runPhase(
  stack: BenchStack,
  keys: string[],
  rate: number,
  bar: Bar,
  label: string,
  eager: boolean,
): Promise<Phase> {
  bar.start(keys.length, 0, { phase: label.padEnd(22) });
  // Completion is read from visibility (closed runs on this task queue), not by waiting on each
  // run's result: a production starter does not wait, and a thousand result long-polls would load
  // the machine being measured. The phase ends at the last close time the server recorded.
  const closedQuery = `TaskQueue = "${stack.config.taskQueue}" AND ExecutionStatus != "Running"`;
  const closed = async () => (await stack.temporal.client.workflow.count(closedQuery)).count;
  const closedBefore = await closed();
  const t0 = Date.now();
  const ids: string[] = new Array<string>(keys.length);
  // Starts go out from START_LANES lanes at once: one after another, each start waits on a
  // busy server and the figure would measure the starter instead of the pipeline. At a
  // rate, start i is due at i/rate seconds; "all at once" is as fast as the server takes them.
  await inLanes(keys.length, START_LANES, async (i) => {
    const due = rate > 0 ? t0 + (i / rate) * 1000 : 0;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    ids[i] = (
      await startInbound(
        stack.client,
        stack.config.taskQueue,
        { domain: DOMAIN, bucket: BUCKET, key: keys[i] },
        undefined,
        {},
        { requestEagerStart: eager },
      )
    ).workflowId;
  });
  for (let done = 0; done < keys.length;) {
    await new Promise((r) => setTimeout(r, 500));
    done = (await closed()) - closedBefore;
    bar.update(Math.min(done, keys.length));
  }
  bar.stop();
  const results: InboundResult[] = new Array<InboundResult>(keys.length);
  const latencies: number[] = [];
  const finishedAt: number[] = [];
  let events = 0;
  let historyBytes = 0;
  const steps = { workflowTasks: 0, activities: 0, localActivities: 0 };
  await inLanes(ids.length, 16, async (i) => {
    const handle: WorkflowHandle = stack.temporal.client.workflow.getHandle(ids[i]);
    const d = await handle.describe();
    results[i] = (await handle.result()) as InboundResult;
    latencies.push(d.closeTime!.getTime() - d.startTime.getTime());
    finishedAt.push((d.closeTime!.getTime() - t0) / 1000);
    events += d.historyLength;
    historyBytes += d.historySize ?? 0;
    const history = await handle.fetchHistory();
    for (const e of history.events ?? []) if (e.workflowTaskCompletedEventAttributes) steps.workflowTasks++;
    for (const s of activitySteps(history))
      if (s.local) steps.localActivities++;
      else steps.activities++;
  });
  const seconds = Math.max(...finishedAt);
  latencies.sort((a, b) => a - b);
  return { ids, seconds, results, latencies, finishedAt, events, historyBytes, steps };
}

const latencyMs = (sorted: number[]) => ({ p50: pct(sorted, 50), p95: pct(sorted, 95), p99: pct(sorted, 99) });

/** What the SMTP targets must have stored if every email completed once: one copy per delivered recipient, sent auto-reply and forward. */
function expectedCopies(results: InboundResult[]): { mail: number; internal: number } {
  let mail = 0;
  let internal = 0;
  for (const r of results) {
    mail += r.recipients.filter((x) => x.outcome === 'delivered').length + r.autoReplies.filter((a) => a.sent).length;
    for (const f of r.forwards) {
      if (f.route === 'internal') internal++;
      else mail++;
    }
  }
  return { mail, internal };
}

/** The Temporal part for one backend, on a stack of its own. */
async function runTemporal(
  backend: TemporalBackend,
  mails: Buffer[],
  halfMails: Buffer[],
  rate: number,
  bar: Bar,
  tuning: Tuning,
  dir: string,
  profileSeconds = 0,
) {
  const n = mails.length;
  const stack = await startBenchStack(backend, tuning, dir);
  const rss = new Map<number, number>();
  const sampleRss = () => {
    for (const w of stack.workers) rss.set(w.pid, Math.max(rss.get(w.pid) ?? 0, memoryOf(w.pid).rssMiB));
  };
  let rssTimer: NodeJS.Timeout | undefined;
  // Before any email: the workflow bundle is built at start, and V8 keeps what that took.
  const idleRss = stack.workers.map((w) => memoryOf(w.pid).rssMiB);
  try {
    const tag = Date.now().toString(36);
    const keys: string[] = [];
    const halfKeys: string[] = [];
    bar.start(n + halfMails.length, 0, { phase: `upload ${backend}`.padEnd(22) });
    for (const [i, raw] of mails.entries()) {
      keys.push(`bench-${tag}-${i}`);
      await stack.put(raw, keys[i]);
      bar.increment();
    }
    for (const [i, raw] of halfMails.entries()) {
      halfKeys.push(`bench-half-${tag}-${i}`);
      await stack.put(raw, halfKeys[i]);
      bar.increment();
    }
    bar.stop();

    const countsBefore = await workerCounts(stack);
    const smtpBefore = await stack.mail.stats();
    const cpuBefore = await cpuByRole(stack);
    const threadsBefore = workerThreadCpu(stack);
    const persistenceBefore = await persistenceRequests(stack);
    const busy = machineBusy();
    rssTimer = setInterval(sampleRss, 200);
    const profile =
      profileSeconds > 0 && stack.postgres
        ? fetch(`http://127.0.0.1:${stack.postgres.pprofPort}/debug/pprof/profile?seconds=${profileSeconds}`).then(
            async (r) => Buffer.from(await r.arrayBuffer()),
          )
        : undefined;
    const all = await runPhase(stack, keys, rate, bar, `${backend}: all at once`, tuning.eager);
    clearInterval(rssTimer);
    const machineCores = busy() * cpus().length;
    const cpuAfter = await cpuByRole(stack);
    const threadsAfter = workerThreadCpu(stack);
    const persistenceAfter = await persistenceRequests(stack);
    const smtpAfter = await stack.mail.stats();
    const countsAfter = await workerCounts(stack);
    const dynamoBefore = countsBefore.reduce((a, c) => a + c.dynamodb, 0);
    const dynamoAfter = countsAfter.reduce((a, c) => a + c.dynamodb, 0);
    const activationsBefore = countsBefore.reduce((a, c) => a + c.activations, 0);
    const activationsAfter = countsAfter.reduce((a, c) => a + c.activations, 0);
    const emailsPerSecond = n / all.seconds;

    // Half load: a steady rate, half the throughput just measured.
    const halfRate = emailsPerSecond / 2;
    const half = halfKeys.length
      ? await runPhase(stack, halfKeys, halfRate, bar, `${backend}: at ${halfRate.toFixed(1)}/s`, tuning.eager)
      : undefined;

    const expected = expectedCopies([...all.results, ...(half?.results ?? [])]);
    const stored = {
      mail: (await stack.mail.stats()).deliveries ?? NaN,
      internal: (await stack.internal.stats()).deliveries ?? NaN,
    };
    const statuses: Record<string, number> = {};
    for (const r of all.results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;

    const cpu = cpuDelta(cpuBefore, cpuAfter);
    const cpuMs = Object.fromEntries(Object.entries(cpu).map(([who, sec]) => [who, Math.round((sec * 1000) / n)]));
    const coresUsed = Object.fromEntries(
      Object.entries(cpu).map(([who, sec]) => [who, +(sec / all.seconds).toFixed(2)]),
    );
    const ours = Object.values(coresUsed).reduce((a, b) => a + b, 0);
    const otherCores = +Math.max(0, machineCores - ours).toFixed(2);
    // Per worker process (--workers N): the emails it finished (tagged), its CPU and memory.
    // The fast path runs an email's steps in one workflow task, so an email is one worker's work.
    const perWorker = stack.workers.map((w, i) => {
      const cpuSeconds = (cpuAfter.worker?.[w.pid] ?? 0) - (cpuBefore.worker?.[w.pid] ?? 0);
      const emails = countsAfter[i].emails - countsBefore[i].emails;
      return {
        name: w.name,
        emailsFinished: emails,
        shareOfEmails: +(emails / n).toFixed(3),
        cpuSeconds: +cpuSeconds.toFixed(2),
        cpuMsPerEmailFinished: emails > 0 ? Math.round((cpuSeconds * 1000) / emails) : null,
        coresUsed: +(cpuSeconds / all.seconds).toFixed(2),
        dynamodbRequests: countsAfter[i].dynamodb - countsBefore[i].dynamodb,
        rssMiBAfterStart: idleRss[i],
        peakRssMiBWhileInFlight: rss.get(w.pid) ?? null,
      };
    });
    const emulatorMs = Object.entries(cpuMs)
      .filter(([k]) => k.startsWith('emulator'))
      .reduce((a, [, v]) => a + v, 0);
    return {
      stack,
      serverProfile: await profile,
      timeline: {
        finishedAt: all.finishedAt,
        latencySeconds: all.latencies.map((ms) => ms / 1000),
        halfLatencySeconds: half?.latencies.map((ms) => ms / 1000) ?? [],
      },
      seconds: all.seconds,
      run: {
        backend,
        server:
          backend === 'postgres'
            ? `${BACKEND_NAMES.postgres} (${tuning.postgres.historyShards ?? DEFAULT_HISTORY_SHARDS} history shards)`
            : BACKEND_NAMES.dev,
        statuses,
        temporal: {
          emailsPerSecond: +emailsPerSecond.toFixed(1),
          latencyMs: latencyMs(all.latencies),
          historyEventsPerEmail: +(all.events / n).toFixed(1),
          historyBytesPerEmail: Math.round(all.historyBytes / n),
          dynamodbRequestsPerEmail: +((dynamoAfter - dynamoBefore) / n).toFixed(2),
          // Each activation enters the workflow sandbox (issue 24); NaN with --eager (no worker process to read).
          workflowActivationsPerEmail: +((activationsAfter - activationsBefore) / n).toFixed(2),
          workflowTasksPerEmail: +(all.steps.workflowTasks / n).toFixed(2),
          activitiesPerEmail: +(all.steps.activities / n).toFixed(2),
          localActivitiesPerEmail: +(all.steps.localActivities / n).toFixed(2),
          smtpConnectionsPer100Emails: +(
            (((smtpAfter.connections ?? 0) - (smtpBefore.connections ?? 0)) / n) *
            100
          ).toFixed(1),
        },
        halfLoad: half
          ? { startsPerSecond: +halfRate.toFixed(1), emails: halfKeys.length, latencyMs: latencyMs(half.latencies) }
          : undefined,
        cpuMsPerEmail: { ...cpuMs, 'emulators (total)': emulatorMs },
        // The worker's CPU split by thread (issue 24: where it goes); empty with --eager or off Linux.
        workerCpuMsPerEmailByThread: tuning.eager
          ? {}
          : Object.fromEntries(
              Object.entries(threadsAfter).map(([role, sec]) => [
                role,
                +(((sec - (threadsBefore[role] ?? 0)) * 1000) / n).toFixed(1),
              ]),
            ),
        persistenceRequestsPerEmail: Object.fromEntries(
          Object.entries(persistenceAfter)
            .map(([op, v]) => [op, +((v - (persistenceBefore[op] ?? 0)) / n).toFixed(2)] as const)
            .filter(([, v]) => v > 0)
            .sort((a, b) => b[1] - a[1]),
        ),
        coresUsed,
        otherLoadOnMachineCores: otherCores,
        workers: {
          processes: tuning.eager ? 'in the bench process (--eager)' : stack.workers.length,
          rssMiBAfterStart: idleRss,
          peakRssMiBWhileInFlight: [...rss.values()],
          lifetimePeakRssMiB: stack.workers.map((w) => memoryOf(w.pid).peakMiB),
          perWorker,
          total: {
            emailsFinished: perWorker.reduce((a, w) => a + w.emailsFinished, 0),
            cpuMsPerEmail: cpuMs.worker,
            coresUsed: coresUsed.worker,
            emailsPerSecondPerWorker: +(emailsPerSecond / stack.workers.length).toFixed(1),
            peakRssMiBWhileInFlight: perWorker.reduce((a, w) => a + (w.peakRssMiBWhileInFlight ?? 0), 0),
          },
        },
        completedOnce: {
          expectedCopies: expected,
          storedCopies: stored,
          ok: expected.mail === stored.mail && expected.internal === stored.internal,
        },
      },
    };
  } catch (err) {
    if (rssTimer) clearInterval(rssTimer);
    await stack.stop();
    throw err;
  }
}

type DirectActivities = ReturnType<typeof createInboundActivities>;
type DirectCall = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A) => Promise<R>;

/**
 * One email through the steps the workflow's fast path runs (workflows/processInboundEmail.ts),
 * in its order, with the same activity functions and inputs, called directly: fetch with the bounce
 * match and the blocklist-and-rules lookup (BATCHED_PATCH), and the delivery and tag of an email that
 * needs nothing else (fetchAndDeliver, FETCH_AND_DELIVER_PATCH), the tag and delete of mail every recipient blocks,
 * delivery, forwards and out-of-office replies through the same gates, the tag. The baseline
 * does the same work as the workflow, so the time ratio is what durability costs.
 */
async function directEmail(direct: DirectActivities, call: DirectCall, key: string): Promise<string> {
  const ref = { domain: DOMAIN, bucket: BUCKET, key };
  // As the workflow since FETCH_AND_DELIVER_PATCH: the fetch reads the lookups too (the steps run
  // on their own when it could not), and delivers and tags an email that needs nothing else.
  const f = await call(direct.fetchAndDeliver, ref);
  if (f.kind === 'email' && f.delivered?.tagged) return f.delivered.tagged;
  const tag = (status: EmailStatus, record: Record<string, unknown> = {}) =>
    call(direct.tagEmail, { ...ref, record: { status, ...record } });
  if (f.kind === 'large') throw new Error(`${key}: larger than FAST_PATH_MAX_BYTES, not in the bench's mix`);
  if (f.kind === 'terminal') {
    if (f.status !== 'missing' && f.status !== 'already_processed') await tag(f.status, { error: f.reason });
    return f.status;
  }
  const s = f.summary;
  if (s.loop) {
    await tag('loop', { error: s.loop });
    return 'loop';
  }
  let rewrite: BounceRewriteInfo | undefined;
  if (s.bounce && s.bounce.originalMessageIds.length) {
    const original =
      f.lookups?.outbound !== undefined
        ? f.lookups.outbound
        : await call(direct.findOutboundMessage, { messageIds: s.bounce.originalMessageIds });
    const who = reportedRecipient(s.bounce, original?.destinations);
    if (original && who && !s.bounce.untrusted)
      rewrite = { bouncedRecipient: who, originalSubject: original.subject, kind: s.bounce.kind ?? 'bounce' };
  }
  const senders = [...new Set([s.from, s.sender].filter((x): x is string => !!x))];
  const { blocked, rules } = f.lookups ?? (await call(direct.lookupRecipients, { senders, recipients: s.recipients }));
  const active = notBlockedRecipients(s.recipients, blocked);
  const audit = blockedRecord(blocked, undefined);
  if (active.length === 0) {
    await tag('blocked', audit);
    await call(direct.deleteEmail, { bucket: BUCKET, key });
    return 'blocked';
  }
  const outcomes = await call(direct.deliverEmail, deliveryRequest(ref, s, active, rewrite));
  const delivered = new Set(outcomes.filter((o) => o.outcome === 'delivered').map((o) => o.recipient));
  if (!s.bounce) {
    const activeSet = new Set(active.map((r) => r.toLowerCase()));
    const mine = rules
      ? rules.filter((r) => activeSet.has(r.recipient))
      : await call(direct.loadRules, { recipients: active });
    for (const rule of mine) {
      for (const to of rule.forwards)
        await call(direct.forwardEmail, {
          bucket: BUCKET,
          key,
          recipient: rule.recipient,
          to,
          ...(s.outsideForward ? { outside: s.outsideForward } : {}),
        });
      if (!rule.outOfOffice || !delivered.has(rule.recipient)) continue;
      const target = autoReplyTarget(s, rule.recipient);
      if ('to' in target)
        await call(direct.sendAutoReply, {
          recipient: rule.recipient,
          to: target.to,
          originalSubject: s.subject,
          originalMessageId: s.messageId,
          message: rule.outOfOffice.message,
          contentType: rule.outOfOffice.contentType,
        });
    }
  }
  const count = delivered.size;
  const status = count === s.recipients.length ? 'delivered' : count > 0 ? 'partial' : 'failed';
  await tag(status, { deliveredCount: count, ...audit });
  return status;
}

/** Direct path: the workflow's steps (directEmail), no Temporal, 20 lanes, in this process, on the given stack's emulators. */
async function runDirect(stack: BenchStack, mails: Buffer[], bar: Bar) {
  const n = mails.length;
  const transports = createTransports(stack.config);
  const direct = createInboundActivities({ s3: stack.s3, dynamo: stack.dynamo, config: stack.config, transports });
  const env = new MockActivityEnvironment();
  // Activities need an activity context (heartbeats); the mock gives one, no Temporal.
  const call = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A): Promise<R> =>
    env.run(fn, ...a) as Promise<R>;
  const keys: string[] = [];
  for (const [i, raw] of mails.entries()) {
    keys.push(`direct-${Date.now().toString(36)}-${i}`);
    await stack.put(raw, keys[i]);
  }
  bar.start(n, 0, { phase: 'direct'.padEnd(22) });
  const cpu0 = cpuSecondsOf(process.pid);
  const emulatorCpu = () => stack.emulators.flatMap((e) => processTree(e.pid)).reduce((a, p) => a + cpuSecondsOf(p), 0);
  const emu0 = emulatorCpu();
  const t1 = Date.now();
  const finishedAt: number[] = [];
  const statuses: Record<string, number> = {};
  try {
    await inLanes(keys.length, 20, async (i) => {
      const key = keys[i];
      const status = await directEmail(direct, call, key);
      statuses[status] = (statuses[status] ?? 0) + 1;
      finishedAt.push((Date.now() - t1) / 1000);
      bar.increment();
    });
  } finally {
    transports.close();
  }
  const seconds = (Date.now() - t1) / 1000;
  bar.stop();
  return {
    seconds,
    emailsPerSecond: +(n / seconds).toFixed(1),
    cpuMsPerEmail: {
      'direct process': Math.round(((cpuSecondsOf(process.pid) - cpu0) * 1000) / n),
      emulators: Math.round(((emulatorCpu() - emu0) * 1000) / n),
    },
    finishedAt,
    statuses,
  };
}

/** KEY=VALUE pairs of a repeatable option. */
function pairs(option: string, list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const at = kv.indexOf('=');
    if (at <= 0) throw new Error(`${option} expects KEY=VALUE, got ${JSON.stringify(kv)}`);
    out[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return out;
}

async function main() {
  const { values } = benchArgs(__filename, {
    emails: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'both' },
    // Emails of the second phase, started at half the throughput of the first (0: skip it).
    'half-load-emails': { type: 'string' },
    // Worker processes on the task queue; --compiled runs the production build (npm run build first).
    workers: { type: 'string', default: '1' },
    compiled: { type: 'boolean', default: false },
    // Tuning runs: --set WORKER_MAX_CACHED_WORKFLOWS=200 (repeatable, the worker's environment),
    // --eager (the worker then runs in this process), --label name.
    set: { type: 'string', multiple: true, default: [] },
    eager: { type: 'boolean', default: false },
    label: { type: 'string', default: 'default settings' },
    // The PostgreSQL backend: --shards N, --server-set key=value (dynamic config, YAML value,
    // repeatable), --max-conns N (the server's pool per database), --pg-url (another PostgreSQL).
    shards: { type: 'string' },
    'server-set': { type: 'string', multiple: true, default: [] },
    'max-conns': { type: 'string' },
    'pg-url': { type: 'string' },
    'sql-plugin': { type: 'string' },
    // Seconds of Go CPU profile of the PostgreSQL-backed server, taken from the start of the
    // all-at-once phase and written beside the results (.pprof; read with `go tool pprof -top`).
    'server-profile': { type: 'string' },
  });
  const n = Number(values.emails);
  const rate = Number(values.rate); // starts per second; 0 = all at once
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1)
    throw new Error(`--workers must be a positive integer, not ${values.workers}`);
  if (values.eager && (workers > 1 || values.compiled))
    throw new Error('--eager runs the worker in the bench process: it cannot be combined with --workers or --compiled');
  if (values.compiled && !existsSync(join(ROOT, 'dist', 'workers', 'main.js')))
    throw new Error('--compiled runs dist/workers/main.js: run npm run build first');
  const halfEmails = values['half-load-emails'] !== undefined ? Number(values['half-load-emails']) : Math.round(n / 2);
  const dynamicConfig = pairs('--server-set', values['server-set']);
  const tuning: Tuning = {
    label: values.label,
    eager: values.eager,
    env: pairs('--set', values.set),
    workers,
    compiled: values.compiled,
    postgres: {
      ...(values.shards ? { historyShards: Number(values.shards) } : {}),
      ...(Object.keys(dynamicConfig).length ? { dynamicConfig } : {}),
      ...(values['max-conns'] ? { maxConns: Number(values['max-conns']) } : {}),
      ...(values['pg-url'] ? { databaseUrl: values['pg-url'] } : {}),
      ...(values['sql-plugin'] ? { sqlPlugin: values['sql-plugin'] as 'postgres12' | 'postgres12_pgx' } : {}),
    },
  };
  if (!['dev', 'postgres', 'both'].includes(values.backend))
    throw new Error(`--backend must be dev, postgres or both, not ${values.backend}`);
  const backends: TemporalBackend[] =
    values.backend === 'both' ? ['dev', 'postgres'] : [values.backend as TemporalBackend];
  const generated = generate(n + halfEmails);
  const mails = generated.slice(0, n);
  const halfMails = generated.slice(n);
  const bar = new SingleBar({ format: '{phase} [{bar}] {value}/{total}', hideCursor: true }, Presets.shades_classic);
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-bench-'));
  try {
    // Each backend on a fresh stack, one after the other (never both servers at once on
    // the machine); the direct part once, on the last stack's emulators, after its workers and Temporal stopped.
    const runs = [];
    const seconds: number[] = [];
    const throughput: Series[] = [];
    const latencies: { name: string; seconds: number[] }[] = [];
    let direct: Awaited<ReturnType<typeof runDirect>> | undefined;
    const profiles: Buffer[] = [];
    for (const [i, backend] of backends.entries()) {
      const {
        stack,
        run,
        timeline,
        seconds: s,
        serverProfile,
      } = await runTemporal(
        backend,
        mails,
        halfMails,
        rate,
        bar,
        tuning,
        join(dir, backend),
        Number(values['server-profile'] ?? 0),
      );
      if (serverProfile) profiles.push(serverProfile);
      throughput.push({ name: run.server, finishedAt: timeline.finishedAt });
      latencies.push({ name: run.server, seconds: timeline.latencySeconds });
      if (timeline.halfLatencySeconds.length)
        latencies.push({ name: `${run.server}, at half load`, seconds: timeline.halfLatencySeconds });
      try {
        await stack.stopTemporal();
        if (i === backends.length - 1) direct = await runDirect(stack, mails, bar);
      } finally {
        await stack.stop();
      }
      runs.push(run);
      seconds.push(s);
    }

    const result = {
      when: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
      },
      emails: n,
      rate: rate || 'all at once',
      tuning,
      layout: tuning.eager
        ? 'worker and starter in the bench process (--eager); S3, DynamoDB and SMTP emulators in processes of their own'
        : `${workers} worker process(es) (${values.compiled ? 'dist/workers/main.js, the production build' : 'workers/main.ts from the sources'}); S3, DynamoDB and two SMTP emulators in processes of their own; the bench process starts workflows and reads results`,
      runs: runs.map((run, i) => ({
        ...run,
        durabilityCost: +(direct!.seconds > 0 ? seconds[i] / direct!.seconds : NaN).toFixed(2),
      })),
      direct: {
        emailsPerSecond: direct!.emailsPerSecond,
        cpuMsPerEmail: direct!.cpuMsPerEmail,
        // The same steps as the workflow's fast path (directEmail): the statuses should match the runs'.
        steps:
          'fast path: fetch, bounce match, blocklist and rules, delivery, forwards, auto-replies, tag (and delete when blocked)',
        statuses: direct!.statuses,
      },
    };
    const table: Record<string, Record<string, number | string>> = {};
    const row = (label: string, get: (r: (typeof result.runs)[number]) => number | string | undefined) =>
      (table[label] = Object.fromEntries(result.runs.map((r) => [r.backend, get(r) ?? ''])));
    row('emails/s (Temporal, all at once)', (r) => r.temporal.emailsPerSecond);
    row('emails/s (direct, no Temporal)', () => result.direct.emailsPerSecond);
    row('time ratio Temporal/direct', (r) => r.durabilityCost);
    row(
      'latency p50/p95/p99 ms, all at once',
      (r) => `${r.temporal.latencyMs.p50} / ${r.temporal.latencyMs.p95} / ${r.temporal.latencyMs.p99}`,
    );
    row('half load: starts/s', (r) => r.halfLoad?.startsPerSecond);
    row(
      'half load: latency p50/p95/p99 ms',
      (r) => r.halfLoad && `${r.halfLoad.latencyMs.p50} / ${r.halfLoad.latencyMs.p95} / ${r.halfLoad.latencyMs.p99}`,
    );
    row('history events/email', (r) => r.temporal.historyEventsPerEmail);
    row('history bytes/email', (r) => r.temporal.historyBytesPerEmail);
    row('DynamoDB requests/email', (r) => r.temporal.dynamodbRequestsPerEmail);
    row('workflow activations/email', (r) => r.temporal.workflowActivationsPerEmail);
    row('workflow tasks/email', (r) => r.temporal.workflowTasksPerEmail);
    row(
      'activities/email (regular, local)',
      (r) => `${r.temporal.activitiesPerEmail}, ${r.temporal.localActivitiesPerEmail}`,
    );
    row('SMTP connections/100 emails', (r) => r.temporal.smtpConnectionsPer100Emails);
    for (const who of [...new Set(result.runs.flatMap((r) => Object.keys(r.cpuMsPerEmail)))])
      row(`CPU ms/email: ${who}`, (r) => (r.cpuMsPerEmail as Record<string, number>)[who] ?? 0);
    for (const role of [...new Set(result.runs.flatMap((r) => Object.keys(r.workerCpuMsPerEmailByThread)))])
      row(
        `CPU ms/email: worker's ${role}`,
        (r) => (r.workerCpuMsPerEmailByThread as Record<string, number>)[role] ?? 0,
      );
    row('CPU ms/email: direct process (no Temporal)', () => result.direct.cpuMsPerEmail['direct process']);
    row('persistence requests/email (server on PostgreSQL)', (r) =>
      r.backend === 'postgres'
        ? Object.values(r.persistenceRequestsPerEmail)
            .reduce((a, b) => a + b, 0)
            .toFixed(1)
        : '',
    );
    row('cores used by others on the machine', (r) => r.otherLoadOnMachineCores);
    row(
      'worker RSS MiB: after start, peak in flight',
      (r) => `${r.workers.rssMiBAfterStart.join(' / ')}, ${r.workers.peakRssMiBWhileInFlight.join(' / ')}`,
    );
    if (workers > 1) {
      row('emails finished per worker', (r) => r.workers.perWorker.map((w) => w.emailsFinished).join(' / '));
      row('cores used per worker', (r) => r.workers.perWorker.map((w) => w.coresUsed).join(' / '));
      row('CPU ms per email finished, per worker', (r) =>
        r.workers.perWorker.map((w) => w.cpuMsPerEmailFinished ?? '-').join(' / '),
      );
    }
    row('every email completed once', (r) => (r.completedOnce.ok ? 'yes' : `NO: ${JSON.stringify(r.completedOnce)}`));
    console.table(table);
    for (const r of result.runs) console.log(`statuses (${r.backend}):`, JSON.stringify(r.statuses));
    console.log('statuses (direct):', JSON.stringify(result.direct.statuses));
    const out = join(__dirname, 'results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `inbound-${result.when.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    console.log(`written ${file}`);
    for (const p of profiles) {
      writeFileSync(file.replace(/\.json$/, '-server.pprof'), p);
      console.log(`written ${file.replace(/\.json$/, '-server.pprof')} (go tool pprof -top <file>)`);
    }
    throughput.push({ name: 'direct, no Temporal', finishedAt: direct!.finishedAt });
    const title = `${n} emails, ${rate ? `${rate} starts/s` : 'all started at once'}, ${tuning.label} (${result.machine.cpus} cores, ${result.machine.cpu})`;
    const svg = file.replace(/\.json$/, '.svg');
    writeFileSync(svg, await renderSvg(inboundChart(title, throughput, latencies)));
    console.log(`written ${svg}`);
  } finally {
    bar.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
