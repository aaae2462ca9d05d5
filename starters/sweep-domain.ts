// Start workflows for objects in a domain's bucket that have no `processed` metadata yet
// (idempotent: objects already started are skipped by workflow id). By default only objects
// modified since the last successful sweep (minus SWEEP_OVERLAP) are read, and objects younger
// than SWEEP_MIN_AGE are left to the SQS bridge; see lib/sweep/sweep.ts.
//   npm run sweep -- --domain example.com [--prefix 2026/] [--all | --since 7d] [--min-age 0] [--concurrency 32]
import { createAwsClients } from '../lib/aws/clients';
import { SWEEP_CONCURRENCY, sweepBucket } from '../lib/sweep/sweep';
import { commandMain, EXIT, listOf, oneOf, PLAINTEXT_OPTION, positiveInteger, progress, UsageError } from '../lib/cli';
import { bucketForDomain, loadConfig, parseDuration } from '../lib/config';
import { requireCodecChoice } from '../lib/temporal/data-converter';
import { parseTime } from '../lib/sweep/selection';
import { startInbound } from './start-inbound';
import { connectClient } from '../lib/temporal';

const spec = {
  name: 'sweep',
  summary:
    "Start the inbound workflow for every object in a domain's bucket that no run has tagged yet (processed metadata missing).",
  options: {
    domain: {
      type: 'string',
      multiple: true,
      value: '<domain>',
      description: 'a domain to sweep (default: every domain of DOMAINS / domains.txt)',
    },
    prefix: { type: 'string', value: '<prefix>', description: 'only keys starting with this, e.g. inbound/ or 2026/' },
    all: {
      type: 'boolean',
      description: 'a full pass over the bucket, whatever the objects were modified (e.g. after restoring a bucket)',
    },
    since: {
      type: 'string',
      value: '<time>',
      description: 'read objects modified since this time instead of since the last sweep: 7d, 2026-11-20, an ISO time',
    },
    'min-age': {
      type: 'string',
      value: '<duration>',
      description:
        'leave objects younger than this to the SQS bridge (default SWEEP_MIN_AGE, 15m); 0 starts them too, without their envelope recipients',
    },
    concurrency: {
      type: 'string',
      value: '<n>',
      default: String(SWEEP_CONCURRENCY),
      description: 'objects read (HEAD) and started at a time',
    },
    plaintext: PLAINTEXT_OPTION,
  },
  examples: ['npm run sweep -- --domain example.com', 'npm run sweep -- --domain example.com --all --min-age 0'],
  notes: [
    'Safe to run at any time: an object whose workflow is running or completed is skipped ("already started"); one whose earlier run found no object (missing) is started again.',
    'npm run schedule:sweep runs the same sweep on a Temporal Schedule.',
  ],
} as const;

commandMain(spec, async (values) => {
  const config = loadConfig();
  const domains = values.domain.length
    ? listOf('domain', values.domain).map((d) => oneOf('domain', d, config.domains))
    : config.domains;
  if (values.all && values.since) throw new UsageError('--all and --since exclude each other');
  let since: number | undefined;
  if (values.since !== undefined) {
    try {
      since = parseTime(values.since);
    } catch (err) {
      throw new UsageError(`--since ${values.since}: ${(err as Error).message}`);
    }
  }
  const minAge = values['min-age'] !== undefined ? parseDuration(values['min-age']) : undefined;
  if (values['min-age'] !== undefined && minAge === undefined)
    throw new UsageError(`--min-age ${values['min-age']} is not a duration: use seconds or e.g. 0, 90s, 15m or 2h`);
  const concurrency = positiveInteger('concurrency', values.concurrency as string);
  requireCodecChoice('sweep', { plaintext: values.plaintext, flag: true });
  const client = await connectClient({ plaintext: values.plaintext });
  const { s3, dynamo } = createAwsClients(config);
  try {
    for (const domain of domains) {
      // The total is unknown until the listing ends, so the count grows with it.
      const bar = progress(domain, 'listed | {read} read, {started} started, {running} already started');
      const p = await sweepBucket(
        { s3, dynamo, config, start: (ref, facts) => startInbound(client, config.taskQueue, ref, undefined, facts) },
        { domain, prefix: values.prefix, all: values.all, since, minAge, concurrency },
        (x) => bar.update(x.listed, { read: x.read, started: x.started, running: x.alreadyRunning }, x.listed),
      );
      bar.stop();
      // An empty listing names what was read: a wrong endpoint or bucket template shows at once.
      const empty =
        p.listed === 0
          ? ` in ${bucketForDomain(domain, config.bucketTemplate)} (${config.s3Endpoint ? `S3 at ${config.s3Endpoint}` : `AWS S3, ${config.awsRegion}`})`
          : '';
      console.log(
        `${domain}: ${p.listed} objects${empty}, ${p.unprocessed} without processed metadata, ${p.started} workflows started, ${p.alreadyRunning} already started`,
      );
      console.log(
        `  read ${p.read} modified ${p.window.from ? `from ${p.window.from} ` : ''}until ${p.window.until} (${p.window.source}); ${p.tooYoung} younger, left to the SQS bridge; ` +
          `${p.stateAdvanced ? 'next sweep starts from here' : 'sweep mark unchanged'}; ${p.seconds} s`,
      );
      if (p.stateNote) console.log(`  note: ${p.stateNote}`);
    }
  } finally {
    s3.destroy();
    dynamo.destroy();
    await client.connection.close();
  }
  return EXIT.done;
});
