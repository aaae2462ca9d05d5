// Process one stored email now. Starting twice for the same object is a no-op (the workflow
// id is derived from it) unless the earlier run found no object (missing); --wait prints the result.
import { readFileSync } from 'node:fs';
import { commandMain, emailAddress, EXIT, listOf, PLAINTEXT_OPTION, printJson, UsageError } from '../lib/cli';
import { bucketForDomain, loadConfig } from '../lib/config';
import { requireCodecChoice } from '../lib/temporal/data-converter';
import { NotSesNotificationError, parseSesNotification } from '../lib/mail/ses-notification';
import type { SesVerdicts } from '../contracts/inbound';
import { inboundOutcome, startInbound } from './start-inbound';
import { connectClient } from '../lib/temporal';

const spec = {
  name: 'start:object',
  summary: 'Start the inbound workflow for one S3 object (or the object an SES notification names).',
  options: {
    bucket: { type: 'string', value: '<bucket>', description: 'the domain bucket holding the email' },
    key: { type: 'string', value: '<key>', description: 'the object key' },
    domain: {
      type: 'string',
      value: '<domain>',
      description: 'the domain the bucket belongs to (found from domains.txt when omitted)',
    },
    recipients: {
      type: 'string',
      value: '<a@x,b@x>',
      description: 'envelope recipients, comma-separated (otherwise read from the headers)',
    },
    notification: {
      type: 'string',
      value: '<file|->',
      description: 'an SES "Received" notification (bare or SNS-wrapped JSON); - reads stdin',
    },
    wait: {
      type: 'boolean',
      description: 'wait for the workflow and print its result as JSON (alone on stdout: npm run -s ... | jq)',
    },
    plaintext: PLAINTEXT_OPTION,
  },
  examples: [
    'npm run start:object -- --bucket example-com-emails --key abc123 --wait',
    'npm run start:object -- --notification ses-notification.json',
  ],
  notes: [
    'Give --bucket and --key, or --notification.',
    'A second start for the same object is a no-op while its run is open and after it completed. A run that found no object ends `missing` (a failed run): start it again once the object is there, or let the sweep find it.',
    "With --wait: exit 0 when the run completed (whatever the email's status, in the JSON), 1 when it failed (e.g. missing).",
  ],
} as const;

commandMain(spec, async (values) => {
  const config = loadConfig();
  let bucket = values.bucket;
  let key = values.key;
  let recipients =
    values.recipients !== undefined
      ? listOf('recipients', values.recipients).map((r) => emailAddress('recipients', r))
      : undefined;
  let sender: string | undefined;
  let verdicts: SesVerdicts | undefined;
  if (values.notification) {
    let n;
    try {
      n = parseSesNotification(readFileSync(values.notification === '-' ? 0 : values.notification, 'utf8'));
    } catch (err) {
      if (err instanceof NotSesNotificationError || (err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new UsageError(`--notification ${values.notification}: ${(err as Error).message}`);
      throw err;
    }
    ({ bucket, key, verdicts } = n);
    recipients = n.recipients;
    sender = n.source;
  }
  if (!bucket || !key) throw new UsageError('give --bucket and --key, or --notification FILE');
  const domain =
    values.domain ??
    config.domains.find((d) => bucketForDomain(d, config.bucketTemplate) === bucket) ??
    recipients?.[0]?.split('@')[1];
  if (!domain)
    throw new UsageError(`bucket ${bucket} belongs to none of the domains in ${config.domainsSource}; pass --domain`);
  if (!config.domains.includes(domain.toLowerCase()))
    throw new UsageError(
      `--domain ${domain} is not one of the domains in ${config.domainsSource} (${config.domains.join(', ')})`,
    );
  // The workflow reads the domain's own bucket: a run for another bucket would only fail.
  const expected = bucketForDomain(domain.toLowerCase(), config.bucketTemplate);
  if (bucket !== expected) {
    const owner = config.domains.find((d) => bucketForDomain(d, config.bucketTemplate) === bucket);
    throw new UsageError(
      `bucket ${bucket} is not the bucket of domain ${domain} (${expected}, from S3_BUCKET_TEMPLATE ${config.bucketTemplate})` +
        (owner
          ? `; it is ${owner}'s: pass --domain ${owner} or leave --domain out`
          : `; no domain in ${config.domainsSource} has it`) +
        '. Nothing was started.',
    );
  }
  requireCodecChoice('start:object', { plaintext: values.plaintext, flag: true });

  const client = await connectClient({ plaintext: values.plaintext });
  try {
    const { workflowId, started } = await startInbound(
      client,
      config.taskQueue,
      { domain, bucket, key, envelopeRecipients: recipients, ...(verdicts ? { verdicts } : {}) },
      undefined,
      { sender },
    );
    // With --wait, stdout carries the JSON result only.
    const say = values.wait ? console.error : console.log;
    say(started ? `started ${workflowId}` : `already started earlier: ${workflowId} (no-op)`);
    if (!values.wait) return EXIT.done;
    const outcome = await inboundOutcome(client, workflowId);
    if (outcome.result) printJson(outcome.result);
    if (outcome.failure) {
      console.error(`start:object: ${workflowId} failed: ${outcome.failure}`);
      return EXIT.failed;
    }
  } finally {
    await client.connection.close();
  }
  return EXIT.done;
});
