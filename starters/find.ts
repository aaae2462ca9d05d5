// Finds inbound runs by sender or recipient address without any address stored in clear: the
// address is normalised as the inbound parser does (lib/mail/address.ts), hashed with every key
// of MAILROOM_CODEC_KEYS (runs hash with the key current when they ran; lib/mail/address-hash.ts)
// and looked up in the MailFromHash / MailToHash search attributes (docs/privacy.md).
//   npm run find -- --from a@b.example [--to ...] [--since 7d] [--status delivered]
import { EMAIL_STATUSES } from '../contracts/email-status';
import { MAIL_STATUS } from '../contracts/search-attributes';
import { commandMain, EXIT, listOf, positiveInteger, printJson, UsageError } from '../lib/cli';
import { searchableAddress } from '../lib/mail/address-hash';
import { parseTime } from '../lib/sweep/selection';
import { connectClient, temporalSettings, temporalTarget } from '../lib/temporal';
import { CODEC_KEYS_VAR, codecKeyList } from '../lib/temporal/codec';
import { findQuery, listLink, runLink, webUiUrl } from '../lib/temporal/find';

const spec = {
  name: 'find',
  summary:
    'Find inbound emails by sender and/or recipient address (keyed hashes in MailFromHash/MailToHash, never the address), with status, time and a Web UI link.',
  options: {
    from: {
      type: 'string',
      multiple: true,
      value: '<email>',
      description: 'sender (From or Return-Path); several match any',
    },
    to: { type: 'string', multiple: true, value: '<email>', description: 'recipient; several match any' },
    since: {
      type: 'string',
      value: '<time>',
      default: '30d',
      description: 'runs started since: 7d, 24h, 2026-11-20, an ISO time',
    },
    status: {
      type: 'string',
      multiple: true,
      value: '<status>',
      description: `only these MailStatus values (${EMAIL_STATUSES.join(', ')})`,
    },
    limit: { type: 'string', value: '<n>', default: '100', description: 'runs listed at most' },
    json: { type: 'boolean', description: 'print JSON (stdout only)' },
  },
  examples: [
    'npm run find -- --from sender@example.net',
    'npm run find -- --from sender@example.net --to info@example.com --since 7d --status failed',
  ],
  notes: [
    `Needs ${CODEC_KEYS_VAR} (the workers' keys): the hashes are keyed with it. Every listed key is tried, so runs hashed under a retired key are still found.`,
    'The query printed also works in the Web UI: paste it into the workflow list\'s filter box ("Query"), or open the link printed with it.',
    'Runs from before this feature (or of workers without keys) carry no hashes and are not found; TEMPORAL_UI_URL sets the links (default http://127.0.0.1:8233).',
  ],
} as const;

function address(option: string, value: string): string {
  const a = searchableAddress(value);
  if (!a) throw new UsageError(`--${option} ${value} is not an email address the inbound parser would deliver to`);
  return a;
}

commandMain(spec, async (values) => {
  const from = values.from.map((v) => address('from', v));
  const to = values.to.map((v) => address('to', v));
  if (!from.length && !to.length) throw new UsageError('give --from or --to (or both): the address to look for');
  const status = values.status.length ? listOf('status', values.status, EMAIL_STATUSES) : [];
  let since: number;
  try {
    since = parseTime(values.since as string);
  } catch (err) {
    throw new UsageError(`--since ${values.since}: ${(err as Error).message}`);
  }
  const limit = positiveInteger('limit', values.limit as string);
  const keys = codecKeyList();
  if (!keys)
    throw new UsageError(
      `${CODEC_KEYS_VAR} is not set (or is none): the address hashes are keyed with the workers' codec keys, and runs of workers without keys carry no hashes. ` +
        `Set ${CODEC_KEYS_VAR} to the workers' value (the demo's: source .local/env).`,
    );
  const query = findQuery(keys, { from, to, since, status });
  const settings = temporalSettings();
  const ui = webUiUrl();
  const client = await connectClient();
  try {
    const runs: {
      workflowId: string;
      runId: string;
      status: string;
      execution: string;
      startTime: string;
      link: string;
    }[] = [];
    for await (const w of client.workflow.list({ query })) {
      const mail = w.typedSearchAttributes.get(MAIL_STATUS);
      runs.push({
        workflowId: w.workflowId,
        runId: w.runId,
        status: mail ?? '-',
        execution: w.status.name,
        startTime: w.startTime.toISOString(),
        link: runLink(ui, settings.namespace, w.workflowId, w.runId),
      });
      if (runs.length >= limit) break;
    }
    const where = temporalTarget(settings);
    if (values.json) {
      printJson({ query, searched: where, keyIds: [...keys.keys.keys()], runs });
      return EXIT.done;
    }
    console.log(`Query (paste into the Web UI's filter box): ${query}`);
    console.log(`Web UI: ${listLink(ui, settings.namespace, query)}`);
    if (!runs.length) {
      console.log(
        `No inbound runs match in ${where} since ${new Date(since * 1000).toISOString()} (key ids tried: ${[...keys.keys.keys()].join(', ')}). ` +
          'Runs from before address hashing, or of workers with other keys, cannot be found this way.',
      );
      return EXIT.done;
    }
    for (const r of runs)
      console.log(`${r.startTime}  ${r.status.padEnd(17)} ${r.execution.padEnd(10)} ${r.workflowId}\n    ${r.link}`);
    console.log(
      `${runs.length} run(s)${runs.length >= limit ? ` (the first ${limit}; raise --limit for more)` : ''} in ${where}`,
    );
  } finally {
    await client.connection.close();
  }
  return EXIT.done;
});
