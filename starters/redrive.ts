// Re-process stored emails selected by domain, status and time window, for example
// everything blocked in the last day after a blocklist fix:
//   npm run redrive -- --domain example.com --status blocked --since 24h --dry-run
// Each selected object gets a new workflow (id .../redrive-<batch>), so the earlier runs
// stay inspectable in the Web UI; running the same --batch again is a no-op. Blocked mail
// is only still in the bucket when BLOCKED_MAIL_ACTION=keep. Recipients that already got an
// email (the delivery log, per object and recipient) are skipped unless --redeliver says to
// deliver to them again; a redeliver run still skips what it delivered itself, so a worker
// that dies midway does not make it send a copy twice.
//
// Objects are read (HEAD) --concurrency at a time. With --since, objects whose LastModified is
// older than --since minus SWEEP_OVERLAP are not read at all: tagging writes the metadata by
// copying the object onto itself, and on AWS S3 a copy is a new object, modified when it was
// tagged. Some S3-compatible servers change metadata in place and keep the old LastModified,
// so --prefilter auto (the default) uses this only on AWS S3 (no endpoint override); on and off
// force it. Never with --include-unprocessed (untagged objects have no tag time).
//
// Without any filter (--status, --since, --until, --prefix) it selects every tagged email of the
// bucket: it then asks first, and without a terminal to ask on it needs --yes.
import { createAwsClients } from '../lib/aws/clients';
import { storedEmails, SWEEP_CONCURRENCY } from '../lib/sweep/sweep';
import {
  commandMain,
  confirm,
  EXIT,
  listOf,
  oneOf,
  PLAINTEXT_OPTION,
  positiveInteger,
  printJson,
  progress,
  UsageError,
  YES_OPTION,
} from '../lib/cli';
import { bucketForDomain, loadConfig } from '../lib/config';
import { requireCodecChoice } from '../lib/temporal/data-converter';
import { inboundWorkflowId } from '../contracts/inbound';
import { parseTime, selects, type Selection } from '../lib/sweep/selection';
import { inboundOutcome, startInbound } from './start-inbound';
import { TERMINAL_STATUSES } from '../contracts/email-status';
import { connectClient } from '../lib/temporal';

const TIME_FORMATS =
  'a date (2026-11-22 = 00:00 UTC that day), an ISO time (2026-11-22T10:00:00Z), a time back from now (30m, 24h, 7d), today or yesterday (00:00 UTC), or now';

const spec = {
  name: 'redrive',
  summary:
    'Re-process stored emails of a domain that earlier runs tagged, selected by status and by when they were tagged (processed_at).',
  options: {
    domain: { type: 'string', required: true, value: '<domain>', description: 'the domain whose bucket is read' },
    status: {
      type: 'string',
      multiple: true,
      value: '<status,...>',
      description: `only emails tagged with these statuses (${TERMINAL_STATUSES.join(', ')}; a deferred email is still in its run, and the sweep restarts one whose run ended)`,
    },
    since: { type: 'string', value: '<time>', description: 'only emails tagged at or after this time' },
    until: {
      type: 'string',
      value: '<time>',
      description: 'only emails tagged before this time (exclusive; default: now)',
    },
    prefix: { type: 'string', value: '<prefix>', description: 'only keys starting with this, e.g. inbound/' },
    'include-unprocessed': {
      type: 'boolean',
      description: 'also objects no run has tagged yet (e.g. an object whose run found nothing before it arrived)',
    },
    batch: {
      type: 'string',
      value: '<name>',
      description:
        'names this re-drive: workflow ids end in /redrive-<name>, and running the same batch again starts nothing twice (default: the current UTC time, e.g. 20261130T101500Z)',
    },
    redeliver: {
      type: 'boolean',
      description: 'deliver again to recipients that already got the email (by default the delivery log skips them)',
    },
    'dry-run': { type: 'boolean', description: 'list what would be re-driven, start nothing' },
    yes: {
      ...YES_OPTION,
      description: `${YES_OPTION.description}; only asked without a filter (--status, --since, --until, --prefix), which selects the whole bucket`,
    },
    concurrency: {
      type: 'string',
      value: '<n>',
      default: String(SWEEP_CONCURRENCY),
      description: 'objects read (HEAD) at a time',
    },
    prefilter: {
      type: 'string',
      value: '<auto|on|off>',
      default: 'auto',
      description:
        'with --since, skip objects last modified before it (minus SWEEP_OVERLAP) without reading them; auto: on AWS S3 only',
    },
    wait: { type: 'boolean', description: 'wait for every started workflow and print its outcome' },
    json: { type: 'boolean', description: 'print one JSON document on stdout instead of lines (npm run -s ... | jq)' },
    plaintext: PLAINTEXT_OPTION,
  },
  examples: [
    'npm run redrive -- --domain example.com --status blocked --since 24h --dry-run',
    'npm run redrive -- --domain example.com --status blocked --since 24h --batch blocklist-fix --wait',
    'npm run redrive -- --domain example.com --status failed,partial --since 2026-11-22 --until 2026-11-23',
  ],
  notes: [
    `Times (--since, --until) are UTC: ${TIME_FORMATS}. --until is exclusive, so --until today ends at 00:00 UTC today and selects nothing tagged today; leave it out to include everything up to now.`,
    'Without --status every tagged email in the window is selected. Untagged objects are left out unless --include-unprocessed (the sweep starts those anyway).',
    'Without any of --status, --since, --until and --prefix it would re-drive the whole bucket: it asks first (or takes --yes; when stdin is not a terminal it refuses with exit 2 and starts nothing).',
    'Blocked mail is only still in the bucket when the worker runs with BLOCKED_MAIL_ACTION=keep.',
    'Prints the id of each workflow it starts; with --wait, each outcome. Exit 1 when a re-driven run failed (e.g. its object was gone).',
  ],
} as const;

function time(option: string, value: string | undefined, now: Date): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseTime(value, now);
  } catch {
    throw new UsageError(`--${option} ${value} is not a time: use ${TIME_FORMATS}`);
  }
}

commandMain(spec, async (values) => {
  const config = loadConfig();
  const domain = oneOf('domain', values.domain, config.domains);
  const now = new Date();
  const selection: Selection = {
    statuses: values.status.length ? listOf('status', values.status, TERMINAL_STATUSES) : undefined,
    since: time('since', values.since, now),
    until: time('until', values.until, now),
    includeUnprocessed: values['include-unprocessed'],
  };
  if (selection.since !== undefined && selection.until !== undefined && selection.since >= selection.until) {
    throw new UsageError(
      `--since ${values.since} is not before --until ${values.until} (${new Date(selection.since * 1000).toISOString()} >= ${new Date(selection.until * 1000).toISOString()}): nothing could match`,
    );
  }
  const batch =
    values.batch ??
    now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(batch))
    throw new UsageError(`--batch ${batch}: use 1-64 letters, digits, '.', '_' or '-'`);
  const concurrency = positiveInteger('concurrency', values.concurrency as string);
  const prefilterMode = oneOf('prefilter', values.prefilter as string, ['auto', 'on', 'off'] as const);
  const prefilter =
    selection.since !== undefined &&
    !selection.includeUnprocessed &&
    (prefilterMode === 'on' || (prefilterMode === 'auto' && config.s3Endpoint === undefined));
  const modifiedSince = prefilter ? (selection.since! - config.sweep.overlap) * 1000 : undefined;
  if (!values['dry-run']) requireCodecChoice('redrive', { plaintext: values.plaintext, flag: true });
  const wholeBucket =
    selection.statuses === undefined &&
    values.since === undefined &&
    values.until === undefined &&
    values.prefix === undefined;
  const whole = (n?: number) =>
    `Re-drive ${n === undefined ? 'every' : `all ${n}`} tagged email${n === undefined || n === 1 ? '' : 's'} of domain ${domain}${selection.includeUnprocessed ? ' (and the untagged ones)' : ''}: no --status, --since, --until or --prefix selects the whole bucket`;
  // No terminal to ask on and no --yes: refuse before reading the bucket.
  if (wholeBucket && !values['dry-run'] && !values.yes && !process.stdin.isTTY)
    await confirm(spec.name, whole(), false);
  const say = values.json ? () => undefined : (line: string) => console.log(line);
  const bucket = bucketForDomain(domain, config.bucketTemplate);
  const { s3 } = createAwsClients(config);

  const selected: string[] = [];
  let listed = 0;
  let read = 0;
  const listing = progress(`reading ${bucket}`, 'read | {listed} listed, {selected} selected');
  try {
    for await (const obj of storedEmails(s3, bucket, {
      prefix: values.prefix,
      modifiedSince,
      concurrency,
      onListed: (n) => (listed += n),
    })) {
      read++;
      if (selects(obj.metadata, selection)) selected.push(obj.key);
      listing.update(read, { listed, selected: selected.length });
    }
  } finally {
    listing.stop();
    s3.destroy();
  }
  const where = `${bucket} (${config.s3Endpoint ? `S3 at ${config.s3Endpoint}` : `AWS S3, ${config.awsRegion}`})`;
  const window = `tagged ${selection.since !== undefined ? `from ${new Date(selection.since * 1000).toISOString()} ` : ''}${selection.until !== undefined ? `until ${new Date(selection.until * 1000).toISOString()} (exclusive)` : 'until now'}`;
  say(
    `${listed} objects in ${selected.length ? bucket : where}, ${read} read${modifiedSince !== undefined ? ` (modified since ${new Date(modifiedSince).toISOString()})` : ''}, ${selected.length} selected (${selection.statuses?.join(',') ?? 'any status'}, ${window}${selection.includeUnprocessed ? ', untagged included' : ''})`,
  );

  if (values['dry-run']) {
    for (const key of selected) say(`would re-drive s3://${bucket}/${key}`);
    if (values.json)
      printJson({
        bucket,
        listed,
        read,
        selected: selected.map((key) => ({ key, workflowId: `${inboundWorkflowId(bucket, key)}/redrive-${batch}` })),
        dryRun: true,
      });
    return EXIT.done;
  }

  if (wholeBucket && selected.length > 0) await confirm(spec.name, whole(selected.length), values.yes);
  const client = await connectClient({ plaintext: values.plaintext });
  const runs: { key: string; workflowId: string; started: boolean; status?: string; failure?: string }[] = [];
  try {
    const bar = progress('re-drive', '| {started} started', { total: selected.length });
    bar.update(0, { started: 0 });
    for (const key of selected) {
      const r = await startInbound(
        client,
        config.taskQueue,
        { domain, bucket, key, redrive: true, ...(values.redeliver ? { redeliver: true } : {}) },
        `${inboundWorkflowId(bucket, key)}/redrive-${batch}`,
      );
      runs.push({ key, ...r });
      bar.update(runs.length, { started: runs.filter((x) => x.started).length });
    }
    bar.stop();
    for (const r of runs)
      say(r.started ? `started ${r.workflowId}` : `already started in batch ${batch}: ${r.workflowId} (no-op)`);
    const started = runs.filter((r) => r.started).length;
    say(`batch ${batch}: ${started} workflows started, ${runs.length - started} already started in this batch`);

    if (values.wait) {
      const waiting = progress('waiting', '| {done} finished', { total: runs.length });
      let done = 0;
      await Promise.all(
        runs.map(async (r) => {
          const outcome = await inboundOutcome(client, r.workflowId);
          r.status = outcome.result?.status;
          r.failure = outcome.failure;
          waiting.update(++done, { done });
        }),
      );
      waiting.stop();
      for (const r of runs) say(`${r.workflowId}: ${r.status ?? 'failed'}${r.failure ? ` (${r.failure})` : ''}`);
      const counts = new Map<string, number>();
      for (const r of runs) counts.set(r.status ?? 'failed', (counts.get(r.status ?? 'failed') ?? 0) + 1);
      say(`outcomes: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ') || 'none'}`);
    }
  } finally {
    await client.connection.close();
  }
  if (values.json) printJson({ bucket, listed, read, batch, runs });
  return runs.some((r) => r.failure) ? EXIT.failed : EXIT.done;
});
