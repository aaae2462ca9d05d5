// Start workflows for objects in a domain's bucket that have no `processed` metadata yet
// (idempotent: objects already started are skipped by workflow id). By default only objects
// modified since the last successful sweep (minus SWEEP_OVERLAP) are read, and objects younger
// than SWEEP_MIN_AGE are left to the SQS bridge; see activities/sweep.ts.
//   npm run sweep -- --domain example.com [--prefix 2026/] [--all | --since 7d] [--min-age 0] [--concurrency 32]
import { parseArgs } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { createAwsClients } from '../activities/clients';
import { SWEEP_CONCURRENCY, sweepBucket } from '../activities/sweep';
import { loadConfig, parseDuration } from '../lib/config';
import { parseTime } from '../lib/selection';
import { startInbound } from '../lib/start-inbound';
import { connectClient } from '../lib/temporal';

async function main() {
  const { values } = parseArgs({
    options: {
      domain: { type: 'string', multiple: true },
      prefix: { type: 'string' },
      // A full pass over the bucket, whatever the objects' age (e.g. after restoring a bucket).
      all: { type: 'boolean', default: false },
      // Look back to a point in time instead of the last sweep: 7d, 2026-11-20, an ISO timestamp.
      since: { type: 'string' },
      // Default SWEEP_MIN_AGE; 0 also starts mail the SQS bridge has not handled yet (its envelope recipients are then unknown).
      'min-age': { type: 'string' },
      concurrency: { type: 'string', default: String(SWEEP_CONCURRENCY) },
    },
  });
  if (values.all && values.since) throw new Error('--all and --since exclude each other');
  const since = values.since ? parseTime(values.since) : undefined;
  const minAge = values['min-age'] !== undefined ? parseDuration(values['min-age']) : undefined;
  if (values['min-age'] !== undefined && minAge === undefined) throw new Error(`--min-age: cannot read "${values['min-age']}"; use seconds or a duration such as 0, 90s, 15m or 2h`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency must be a positive integer, not ${values.concurrency}`);
  const config = loadConfig();
  const domains = values.domain?.length ? values.domain : config.domains;
  const client = await connectClient();
  const { s3, dynamo } = createAwsClients(config);
  for (const domain of domains) {
    // The total is unknown until the listing ends, so the bar grows with it.
    const bar = new SingleBar({ format: `${domain} [{bar}] {value}/{total} listed | {read} read, {started} started, {running} already started`, hideCursor: true }, Presets.shades_classic);
    bar.start(0, 0, { read: 0, started: 0, running: 0 });
    const p = await sweepBucket(
      { s3, dynamo, config, start: (ref, facts) => startInbound(client, config.taskQueue, ref, undefined, facts) },
      { domain, prefix: values.prefix, all: values.all, since, minAge, concurrency },
      (x) => {
        bar.setTotal(x.listed);
        bar.update(x.listed, { read: x.read, started: x.started, running: x.alreadyRunning });
      },
    );
    bar.stop();
    console.log(`${domain}: ${p.listed} objects, ${p.unprocessed} without processed metadata, ${p.started} workflows started, ${p.alreadyRunning} already started`);
    console.log(
      `  read ${p.read} modified ${p.window.from ? `from ${p.window.from} ` : ''}until ${p.window.until} (${p.window.source}); ${p.tooYoung} younger, left to the SQS bridge; ` +
        `${p.stateAdvanced ? 'next sweep starts from here' : 'sweep mark unchanged'}; ${p.seconds} s`,
    );
    if (p.stateNote) console.log(`  note: ${p.stateNote}`);
  }
  await client.connection.close();
}

main().catch((err) => {
  console.error(`sweep-domain: ${(err as Error).message}`);
  process.exit(1);
});
