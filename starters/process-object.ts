// Process one stored email now:
//   npm run start:object -- --bucket example-com-emails --key abc123 [--recipients a@example.com,b@example.com]
//   npm run start:object -- --notification ses-notification.json   (or - for stdin; SNS-wrapped or bare SES JSON)
// Starting twice for the same object is a no-op (the workflow id is derived from it);
// --wait prints the result.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { bucketForDomain, loadConfig } from '../lib/config';
import { parseSesNotification } from '../lib/ses-notification';
import type { SesVerdicts } from '../lib/ses-verdicts';
import { startInbound } from '../lib/start-inbound';
import { connectClient } from '../lib/temporal';

async function main() {
  const { values } = parseArgs({
    options: {
      bucket: { type: 'string' },
      key: { type: 'string' },
      domain: { type: 'string' },
      recipients: { type: 'string' },
      notification: { type: 'string' },
      wait: { type: 'boolean', default: false },
    },
  });
  const config = loadConfig();
  let bucket = values.bucket;
  let key = values.key;
  let recipients = values.recipients?.split(',').map((s) => s.trim()).filter(Boolean);
  let sender: string | undefined;
  let verdicts: SesVerdicts | undefined;
  if (values.notification) {
    const n = parseSesNotification(readFileSync(values.notification === '-' ? 0 : values.notification, 'utf8'));
    ({ bucket, key, verdicts } = n);
    recipients = n.recipients;
    sender = n.source;
  }
  if (!bucket || !key) throw new Error('give --bucket and --key, or --notification FILE');
  const domain = values.domain ?? config.domains.find((d) => bucketForDomain(d, config.bucketTemplate) === bucket) ?? recipients?.[0]?.split('@')[1];
  if (!domain) throw new Error(`bucket ${bucket} belongs to none of the domains in ${config.domainsSource}; pass --domain`);

  const client = await connectClient();
  const { workflowId, started } = await startInbound(client, config.taskQueue, { domain, bucket, key, envelopeRecipients: recipients, ...(verdicts ? { verdicts } : {}) }, undefined, { sender });
  console.log(started ? `started ${workflowId}` : `already started earlier: ${workflowId} (no-op)`);
  if (values.wait) console.log(JSON.stringify(await client.workflow.getHandle(workflowId).result(), null, 2));
  await client.connection.close();
}

main().catch((err) => {
  console.error(`process-object: ${(err as Error).message}`);
  process.exit(1);
});
