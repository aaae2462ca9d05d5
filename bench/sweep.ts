// `npm run bench:sweep`: the sweep on a bucket that keeps every message, as SES buckets do.
// A bucket of --stored objects (default 50,000), all but --new (100) of them processed long
// ago; the sweep must start the new ones without reading the rest. Then --burst (10,000) new
// objects at once: how fast the sweep starts their workflows on the dev server.
//
// The old objects are made old by the window, not by the clock: they are stored, one full
// sweep reads them all and records its mark, and the overlap is SWEEP_OVERLAP=2s instead of
// 1h, so after a short wait they lie before the next window as days-old mail would.
// S3 and DynamoDB run in processes of their own; the sweep runs in this process as
// `npm run sweep` does, with no worker (the workflows only queue). Figures are printed and
// written to bench/results/sweep-<time>.json, never asserted.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients } from '../lib/aws/clients';
import { listObjectPages, SWEEP_CONCURRENCY, sweepBucket } from '../lib/sweep/sweep';
import { type SweepResult } from '../contracts/sweep';
import { bucketForDomain, loadConfig } from '../lib/config';
import { startInbound } from '../starters/start-inbound';
import { TaskPool } from '../lib/sweep/task-pool';
import { rawMail } from '../scripts/stack/demo-emails';
import { ensureTables } from '../scripts/stack/dynamodb';
import { S3_CREDENTIALS } from '../scripts/stack/s3';
import { startTestTemporal } from '../test/support/temporal';
import { startEmulatorProcess } from './emulators';
import { cpuSecondsOf, machineBusy, processTree, serverCpuSeconds } from './procstat';
import { benchArgs } from './args';

const DOMAIN = 'example.com';
const OVERLAP_S = 2;

async function main() {
  const { values } = benchArgs(__filename, {
    stored: { type: 'string', default: '50000' },
    new: { type: 'string', default: '100' },
    burst: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: String(SWEEP_CONCURRENCY) },
    label: { type: 'string', default: '' },
  });
  const stored = Number(values.stored);
  const fresh = Number(values.new);
  const burst = Number(values.burst);
  const concurrency = Number(values.concurrency);
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-bench-sweep-'));
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  const [s3srv, dyn, temporal] = await Promise.all([
    startEmulatorProcess({ kind: 's3', directory: join(dir, 's3') }),
    startEmulatorProcess({ kind: 'dynamodb' }),
    startTestTemporal({ backend: 'dev' }),
  ]);
  try {
    const config = loadConfig({
      AWS_ENDPOINT_URL_S3: s3srv.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dyn.endpoint,
      DOMAINS: DOMAIN,
      TASK_QUEUE: `bench-sweep-${process.pid}`,
      SWEEP_OVERLAP: `${OVERLAP_S}s`,
    });
    const { s3, dynamo } = createAwsClients(config);
    await ensureTables(dynamo, config.tables);
    const bucket = bucketForDomain(DOMAIN);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const client = temporal.client;
    const deps = {
      s3,
      dynamo,
      config,
      start: (ref: Parameters<typeof startInbound>[2], facts: Parameters<typeof startInbound>[4]) =>
        startInbound(client, config.taskQueue, ref, undefined, facts),
    };
    const sweep = (label: string) =>
      measured(
        label,
        () => sweepBucket(deps, { domain: DOMAIN, minAge: 0, concurrency }),
        () => [s3srv.pid, dyn.pid].flatMap(processTree),
      );

    // Keys spread like SES's (random message ids), so new mail is anywhere in the listing.
    const key = (i: number, tag: string) => `${((i * 2654435761) % 2 ** 32).toString(16).padStart(8, '0')}-${tag}-${i}`;
    const body = rawMail({ from: 'someone@sender.example', to: [`user@${DOMAIN}`], subject: 'Stored' });
    const put = async (n: number, tag: string, metadata?: Record<string, string>) => {
      const t = Date.now();
      const pool = new TaskPool(64);
      for (let i = 0; i < n; i++)
        await pool.add(
          async () =>
            void (await s3.send(
              new PutObjectCommand({
                Bucket: bucket,
                Key: key(i, tag),
                Body: body,
                ContentType: 'message/rfc822',
                Metadata: metadata,
              }),
            )),
        );
      await pool.drain();
      return (Date.now() - t) / 1000;
    };
    const processed = {
      processed: 'true',
      processed_at: String(Math.floor(Date.now() / 1000) - 86400 * 30),
      status: 'delivered',
    };

    console.log(`storing ${stored - fresh} processed objects ...`);
    const storeSeconds = await put(stored - fresh, 'old', processed);
    // Older than the first sweep's mark minus the overlap: outside every later window.
    await new Promise((r) => setTimeout(r, (OVERLAP_S + 1) * 1000));
    const full = await sweep('first sweep: no mark yet, reads every object');
    await new Promise((r) => setTimeout(r, (OVERLAP_S + 1) * 1000));

    await put(fresh, 'new');
    const listT = Date.now();
    let pages = 0;
    for await (const _ of listObjectPages(s3, bucket)) pages++;
    const listOnly = { seconds: (Date.now() - listT) / 1000, pages };
    const newMail = await sweep(`${fresh} new among ${stored}`);

    await new Promise((r) => setTimeout(r, (OVERLAP_S + 1) * 1000));
    await put(burst, 'burst');
    const burstRun = await sweep(`${burst} new at once`);

    const result = {
      when: new Date().toISOString(),
      label: values.label,
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
      },
      setup: {
        stored,
        new: fresh,
        burst,
        concurrency,
        s3: 'the stack S3 server (scripts/stack/s3.ts), a process of its own',
        temporal: 'temporal dev server (SQLite in memory), no worker',
        storeObjectsPerSecond: Math.round((stored - fresh) / storeSeconds),
        overlap: `${OVERLAP_S}s (stands in for 1h: the stored objects are older than the window)`,
      },
      listingOnly: { ...listOnly, objectsPerSecond: Math.round(stored / listOnly.seconds) },
      fullPass: full,
      newAmongStored: newMail,
      burst: { ...burstRun, workflowsStartedPerSecond: Math.round(burstRun.sweep.started / burstRun.sweep.seconds) },
    };
    console.table({
      'full pass (no mark)': row(full.sweep, full),
      [`${fresh} new among ${stored}`]: row(newMail.sweep, newMail),
      [`${burst} new at once`]: row(burstRun.sweep, burstRun),
    });
    console.log(
      `listing alone: ${listOnly.pages} pages in ${listOnly.seconds.toFixed(1)} s; ${burst} workflows started at ${result.burst.workflowsStartedPerSecond}/s`,
    );
    const out = join(__dirname, 'results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `sweep-${result.when.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    console.log(`written ${file}`);
  } finally {
    await temporal.teardown();
    await Promise.all([s3srv.stop(), dyn.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function row(s: SweepResult, m: Measured) {
  return {
    listed: s.listed,
    read: s.read,
    started: s.started,
    seconds: s.seconds,
    'sweep cpu s': m.cpuSeconds.sweep,
    's3 cpu s': m.cpuSeconds.emulators,
    'temporal cpu s': m.cpuSeconds.temporal,
    'machine busy %': m.machineBusyPercent,
  };
}

interface Measured {
  sweep: SweepResult;
  cpuSeconds: { sweep: number; emulators: number; temporal: number };
  /** The whole machine's CPU use during the run (other users of a shared machine included). */
  machineBusyPercent: number;
}

async function measured(
  label: string,
  run: () => Promise<SweepResult>,
  emulatorPids: () => number[],
): Promise<Measured> {
  process.stdout.write(`${label} ... `);
  const busy = machineBusy();
  const before = {
    sweep: cpuSecondsOf(process.pid),
    emulators: emulatorPids().reduce((n, p) => n + cpuSecondsOf(p), 0),
    temporal: serverCpuSeconds().temporal,
  };
  const sweep = await run();
  const cpu = {
    sweep: +(cpuSecondsOf(process.pid) - before.sweep).toFixed(2),
    emulators: +(emulatorPids().reduce((n, p) => n + cpuSecondsOf(p), 0) - before.emulators).toFixed(2),
    temporal: +(serverCpuSeconds().temporal - before.temporal).toFixed(2),
  };
  console.log(`${sweep.seconds} s (${sweep.listed} listed, ${sweep.read} read, ${sweep.started} started)`);
  return { sweep, cpuSeconds: cpu, machineBusyPercent: Math.round(busy() * 100) };
}

main().catch((err) => {
  console.error(`bench:sweep failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
