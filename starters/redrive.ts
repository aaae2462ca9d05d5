// Re-process stored emails selected by domain, status and time window, for example
// everything blocked yesterday after a blocklist fix:
//   npm run redrive -- --domain example.com --status blocked --since yesterday --until today --dry-run
// Each selected object gets a new workflow (id .../redrive-<batch>), so the earlier runs
// stay inspectable in the Web UI; running the same --batch again is a no-op. Blocked mail
// is only still in the bucket when BLOCKED_MAIL_ACTION=keep. Recipients that already got an
// email (the delivery log, per object and recipient) are skipped unless --redeliver says to
// deliver to them again.
//
// Objects are read (HEAD) --concurrency at a time. With --since, objects whose LastModified is
// older than --since minus SWEEP_OVERLAP are not read at all: tagging writes the metadata by
// copying the object onto itself, and on AWS S3 a copy is a new object, modified when it was
// tagged. Some S3-compatible servers change metadata in place and keep the old LastModified,
// so --prefilter auto (the default) uses this only on AWS S3 (no endpoint override); on and off
// force it. Never with --include-unprocessed (untagged objects have no tag time).
import { parseArgs } from 'node:util';
import { Presets, SingleBar } from 'cli-progress';
import { createAwsClients } from '../activities/clients';
import { storedEmails, SWEEP_CONCURRENCY } from '../activities/sweep';
import { bucketForDomain, loadConfig } from '../lib/config';
import { inboundWorkflowId } from '../lib/ses-notification';
import { parseTime, selects, type Selection } from '../lib/selection';
import { startInbound } from '../lib/start-inbound';
import { connectClient } from '../lib/temporal';

async function main() {
  const { values } = parseArgs({
    options: {
      domain: { type: 'string' },
      status: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      prefix: { type: 'string' },
      'include-unprocessed': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      redeliver: { type: 'boolean', default: false },
      batch: { type: 'string' },
      concurrency: { type: 'string', default: String(SWEEP_CONCURRENCY) },
      prefilter: { type: 'string', default: 'auto' },
    },
  });
  if (!values.domain) throw new Error('--domain is required');
  const config = loadConfig();
  const selection: Selection = {
    statuses: values.status?.split(',').map((s) => s.trim()).filter(Boolean),
    since: values.since ? parseTime(values.since) : undefined,
    until: values.until ? parseTime(values.until) : undefined,
    includeUnprocessed: values['include-unprocessed'],
  };
  const batch = values.batch ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const bucket = bucketForDomain(values.domain, config.bucketTemplate);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency must be a positive integer, not ${values.concurrency}`);
  if (!['auto', 'on', 'off'].includes(values.prefilter)) throw new Error(`--prefilter must be auto, on or off, not ${values.prefilter}`);
  const prefilter = selection.since !== undefined && !selection.includeUnprocessed && (values.prefilter === 'on' || (values.prefilter === 'auto' && config.s3Endpoint === undefined));
  const modifiedSince = prefilter ? (selection.since! - config.sweep.overlap) * 1000 : undefined;
  const { s3 } = createAwsClients(config);

  const selected: string[] = [];
  let listed = 0;
  let read = 0;
  for await (const obj of storedEmails(s3, bucket, { prefix: values.prefix, modifiedSince, concurrency, onListed: (n) => (listed += n) })) {
    read++;
    if (selects(obj.metadata, selection)) selected.push(obj.key);
  }
  console.log(
    `${listed} objects in ${bucket}, ${read} read${modifiedSince !== undefined ? ` (modified since ${new Date(modifiedSince).toISOString()})` : ''}, ${selected.length} selected`,
  );

  if (values['dry-run']) {
    for (const key of selected) console.log(`would re-drive s3://${bucket}/${key}`);
    return;
  }
  const client = await connectClient();
  const bar = new SingleBar({ format: 're-drive [{bar}] {value}/{total} | {started} started', hideCursor: true }, Presets.shades_classic);
  bar.start(selected.length, 0, { started: 0 });
  let started = 0;
  for (const key of selected) {
    const r = await startInbound(client, config.taskQueue, { domain: values.domain, bucket, key, redrive: true, ...(values.redeliver ? { redeliver: true } : {}) }, `${inboundWorkflowId(bucket, key)}/redrive-${batch}`);
    if (r.started) started++;
    bar.increment(1, { started });
  }
  bar.stop();
  console.log(`batch ${batch}: ${started} workflows started, ${selected.length - started} already started in this batch`);
  await client.connection.close();
}

main().catch((err) => {
  console.error(`redrive: ${(err as Error).message}`);
  process.exit(1);
});
