// Re-process stored emails selected by domain, status and time window, for example
// everything blocked yesterday after a blocklist fix:
//   npm run redrive -- --domain example.com --status blocked --since yesterday --until today --dry-run
// Each selected object gets a new workflow (id .../redrive-<batch>), so the earlier runs
// stay inspectable in the Web UI; running the same --batch again is a no-op. Blocked mail
// is only still in the bucket when BLOCKED_MAIL_ACTION=keep. Recipients that already got an
// email (the delivery log, per object and recipient) are skipped unless --redeliver says to
// deliver to them again.
import { parseArgs } from 'node:util';
import { Presets, SingleBar } from 'cli-progress';
import { createAwsClients } from '../activities/clients';
import { storedEmails } from '../activities/sweep';
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
  const { s3 } = createAwsClients(config);

  const selected: string[] = [];
  let listed = 0;
  for await (const obj of storedEmails(s3, bucket, values.prefix)) {
    listed++;
    if (selects(obj.metadata, selection)) selected.push(obj.key);
  }
  console.log(`${listed} objects in ${bucket}, ${selected.length} selected`);

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
