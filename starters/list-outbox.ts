// Lists a user's outbox, newest first: each message's id, status (draft, scheduled, sending,
// sent, partial, failed, cancelled), when it goes or went out, its first recipient and subject.
// lib/outbox/commands.ts listOutbox does the work.
import { commandMain, emailAddress, EXIT, listOf, positiveInteger, UsageError } from '../lib/cli';
import { printable, printableJson } from '../lib/cli/printable';
import { listOutbox } from '../lib/outbox/commands';
import type { OutboxStatus } from '../lib/outbox';
import { accountIdOption } from './account-common';
import { openOutbox, OUTBOX_HEADER, outboxJson, outboxRow } from './outbox-common';

export const OUTBOX_STATUSES: readonly OutboxStatus[] = [
  'draft',
  'scheduled',
  'sending',
  'sent',
  'partial',
  'failed',
  'cancelled',
];

const spec = {
  name: 'outbox:list',
  summary: "List a user's outbox, newest first: drafts, scheduled messages, and what was sent, failed or cancelled.",
  options: {
    user: { type: 'string', value: '<email>', description: 'the owner', required: true },
    account: { type: 'string', value: '<id>', description: 'only this account (npm run account:list)' },
    status: {
      type: 'string',
      value: '<status>',
      description: `only these statuses, comma-separated: ${OUTBOX_STATUSES.join(', ')}`,
      multiple: true,
    },
    limit: { type: 'string', value: '<n>', description: 'at most this many messages (up to 1000)', default: '50' },
    json: { type: 'boolean', description: 'print JSON (stdout only; bodies left out)' },
  },
  examples: [
    'npm run outbox:list -- --user owner@example.com',
    'npm run outbox:list -- --user owner@example.com --status scheduled,failed',
    'npm run -s outbox:list -- --user owner@example.com --json',
  ],
  notes: [
    '"when" is the send time of a scheduled message, the time the server accepted a sent one, the end of a failed or cancelled one.',
  ],
} as const;

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const accountId = values.account !== undefined ? accountIdOption(values.account) : undefined;
  const statuses = listOf('status', values.status, OUTBOX_STATUSES);
  const limit = positiveInteger('limit', values.limit ?? '50');
  if (limit > 1000) throw new UsageError(`--limit ${limit} is more than 1000`);
  const outbox = await openOutbox();
  try {
    const userId = await outbox.userId(owner);
    const messages = await listOutbox(outbox.deps, userId, {
      ...(accountId ? { accountId } : {}),
      ...(statuses.length ? { status: statuses } : {}),
      limit,
    });
    if (values.json) {
      process.stdout.write(`${printableJson(messages.map(outboxJson))}\n`);
      return EXIT.done;
    }
    if (!messages.length) {
      console.log(
        `No messages${statuses.length ? ` with status ${statuses.join(', ')}` : ''} in the outbox of ${owner}${accountId ? ` (account ${accountId})` : ''}.`,
      );
      return EXIT.done;
    }
    console.log(OUTBOX_HEADER);
    for (const m of messages) {
      console.log(outboxRow(m));
      // Why a message failed or was refused by some: the server's words, printable.
      if ((m.status === 'failed' || m.status === 'partial') && m.statusReason)
        console.log(`  ${printable(m.statusReason, 200)}`);
    }
    return EXIT.done;
  } finally {
    await outbox.close();
  }
});
