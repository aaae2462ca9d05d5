// Process one stored email now. Starting twice for the same object is a no-op (the workflow
// id is derived from it); --wait prints the result.
import { readFileSync } from 'node:fs';
import { commandMain, EXIT, listOf, printJson, UsageError } from '../lib/cli';
import { bucketForDomain, loadConfig } from '../lib/config';
import { NotSesNotificationError, parseSesNotification } from '../lib/ses-notification';
import type { SesVerdicts } from '../lib/ses-verdicts';
import { startInbound } from '../lib/start-inbound';
import { connectClient } from '../lib/temporal';

const spec = {
  name: 'start:object',
  summary: 'Start the inbound workflow for one S3 object (or the object an SES notification names).',
  options: {
    bucket: { type: 'string', value: '<bucket>', description: 'the domain bucket holding the email' },
    key: { type: 'string', value: '<key>', description: 'the object key' },
    domain: { type: 'string', value: '<domain>', description: 'the domain the bucket belongs to (found from domains.txt when omitted)' },
    recipients: { type: 'string', value: '<a@x,b@x>', description: 'envelope recipients, comma-separated (otherwise read from the headers)' },
    notification: { type: 'string', value: '<file|->', description: 'an SES "Received" notification (bare or SNS-wrapped JSON); - reads stdin' },
    wait: { type: 'boolean', description: 'wait for the workflow and print its result as JSON' },
  },
  examples: [
    'npm run start:object -- --bucket example-com-emails --key abc123 --wait',
    'npm run start:object -- --notification ses-notification.json',
  ],
  notes: ['Give --bucket and --key, or --notification.'],
} as const;

commandMain(spec, async (values) => {
  const config = loadConfig();
  let bucket = values.bucket;
  let key = values.key;
  let recipients = values.recipients !== undefined ? listOf('recipients', values.recipients) : undefined;
  let sender: string | undefined;
  let verdicts: SesVerdicts | undefined;
  if (values.notification) {
    let n;
    try {
      n = parseSesNotification(readFileSync(values.notification === '-' ? 0 : values.notification, 'utf8'));
    } catch (err) {
      if (err instanceof NotSesNotificationError || (err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`--notification ${values.notification}: ${(err as Error).message}`);
      throw err;
    }
    ({ bucket, key, verdicts } = n);
    recipients = n.recipients;
    sender = n.source;
  }
  if (!bucket || !key) throw new UsageError('give --bucket and --key, or --notification FILE');
  const domain = values.domain ?? config.domains.find((d) => bucketForDomain(d, config.bucketTemplate) === bucket) ?? recipients?.[0]?.split('@')[1];
  if (!domain) throw new UsageError(`bucket ${bucket} belongs to none of the domains in ${config.domainsSource}; pass --domain`);

  const client = await connectClient();
  try {
    const { workflowId, started } = await startInbound(client, config.taskQueue, { domain, bucket, key, envelopeRecipients: recipients, ...(verdicts ? { verdicts } : {}) }, undefined, { sender });
    console.log(started ? `started ${workflowId}` : `already started earlier: ${workflowId} (no-op)`);
    if (values.wait) printJson(await client.workflow.getHandle(workflowId).result());
  } finally {
    await client.connection.close();
  }
  return EXIT.done;
});
