// Sends a draft from a user's account, now or at a later time (--at): the draft becomes
// scheduled and its sendMessage workflow starts under the message's own id, so running the
// command twice sends nothing twice. With the draft options instead of --id it writes the draft
// and sends it in one go. --wait follows the send to its end. lib/outbox/commands.ts does the work.
import {
  AttentionError,
  commandMain,
  emailAddress,
  EXIT,
  PLAINTEXT_OPTION,
  printJson,
  UsageError,
  type ExitCode,
  type OptionValues,
} from '../lib/cli';
import { serverText } from '../lib/imap/server-text';
import { createDraft, sendDraft, waitForSend, type SendOutcome } from '../lib/outbox/commands';
import { requireCodecChoice } from '../lib/temporal/data-converter';
import type { SendResult } from '../contracts/send';
import { accountIdOption, credentialFix } from './account-common';
import {
  asUsage,
  atOption,
  checkDraftOptions,
  DRAFT_OPTIONS,
  draftFromOptions,
  hasDraftOptions,
  openOutbox,
  outboxIdOption,
  outboxJson,
} from './outbox-common';

const spec = {
  name: 'mail:send',
  summary:
    "Send mail from a user's account, now or at a later time: a draft by its id, or a new message from the same options as mail:draft. Sending the same draft twice sends it once.",
  options: {
    user: { type: 'string', value: '<email>', description: 'the owner', required: true },
    account: { type: 'string', value: '<id>', description: 'the account it is sent from (npm run account:list)' },
    id: { type: 'string', value: '<outbox id>', description: 'the draft to send (mail:draft, outbox:list print it)' },
    at: {
      type: 'string',
      value: '<time>',
      description:
        'send later: an ISO 8601 time with its zone (2026-12-24T09:00:00Z) or a delay (+10m, +2h, +1d); default now',
    },
    wait: {
      type: 'boolean',
      description: 'wait until it is sent (or failed) and print how many recipients accepted it',
    },
    ...DRAFT_OPTIONS,
    json: { type: 'boolean', description: 'print the message (and with --wait the result) as JSON (stdout only)' },
    plaintext: PLAINTEXT_OPTION,
  },
  examples: [
    'npm run mail:send -- --user owner@example.com --account 3f1c... --id 9b2e...',
    'npm run mail:send -- --user owner@example.com --account 3f1c... --id 9b2e... --at +10m',
    'npm run mail:send -- --user owner@example.com --account 3f1c... --to bob@example.org --subject "Lunch?" --text "At noon?" --wait',
  ],
  notes: [
    'Until its time comes a scheduled message can be cancelled (npm run outbox:cancel) or moved (npm run outbox:reschedule); once sending began it goes out. Without --at there is no undo window.',
    'Temporary failures (server down, 4xx) are retried with backoff for SEND_MAX_AGE (24 h); refused recipients (5xx) are not. Exactly-once design and its limits: docs/sending.md.',
    'Environment: DATABASE_URL, MAILROOM_SECRET_KEYS (the worker), TEMPORAL_ADDRESS, MAILROOM_CODEC_KEYS, SEND_TASK_QUEUE.',
  ],
  exitCodes:
    'Exit codes: 0 queued (with --wait: sent), 1 failed (with --wait: not sent, or refused by some recipients), 2 usage error (nothing was queued), 3 the account needs attention (its login was refused).',
} as const;

function describeOutcome(o: SendOutcome): string {
  const m = o.message;
  if (m.status === 'scheduled') {
    const at = m.sendAt ? m.sendAt.toISOString() : 'now';
    const later = m.sendAt && m.sendAt.getTime() > Date.now() + 1000;
    return `${o.started ? 'Scheduled' : 'Already scheduled'}: message ${m.id} goes out ${later ? `at ${at}` : 'now'} (workflow ${o.workflowId})`;
  }
  if (m.status === 'failed')
    return `Message ${m.id} failed${m.statusReason ? `: ${serverText(m.statusReason)}` : ''}. It is never sent again under this id: write it again (npm run mail:draft, or mail:send with the draft options)`;
  return `Message ${m.id} is ${m.status} already; nothing new was started (workflow ${o.workflowId})`;
}

function describeResult(r: SendResult): string {
  const counts = `${r.recipientsAccepted} recipient(s) accepted, ${r.recipientsFailed} refused`;
  const why = r.reason ? `: ${serverText(r.reason)}` : '';
  switch (r.status) {
    case 'sent':
      return `Sent message ${r.outboxId}: ${counts}${r.sentFolder ? `; copy in ${r.sentFolder}` : ''}`;
    case 'partial':
      return `Sent message ${r.outboxId} to some recipients only: ${counts}${why}`;
    case 'cancelled':
      return `Message ${r.outboxId} was cancelled; nothing was sent${why}`;
    default:
      return `Message ${r.outboxId} was not sent${why}`;
  }
}

async function main(values: OptionValues<typeof spec.options>): Promise<ExitCode> {
  const owner = emailAddress('user', values.user);
  const accountId = values.account !== undefined ? accountIdOption(values.account) : undefined;
  const id = values.id !== undefined ? outboxIdOption(values.id) : undefined;
  const drafting = hasDraftOptions(values);
  if (id && drafting) throw new UsageError('give --id (an existing draft) or the draft options (--to ...), not both');
  if (!id && !drafting)
    throw new UsageError('nothing to send: give --id <outbox id>, or --to ... to write and send a message');
  if (drafting) {
    checkDraftOptions(values);
    if (!accountId) throw new UsageError('--account is required to write a new message');
  }
  const at = values.at !== undefined ? atOption(values.at) : undefined;
  requireCodecChoice('mail:send', { plaintext: values.plaintext, flag: true });
  const request = drafting ? await draftFromOptions(values) : undefined;

  const outbox = await openOutbox({ temporal: true, plaintext: values.plaintext });
  try {
    const userId = await outbox.userId(owner);
    let outboxId = id;
    if (request) {
      const draft = await asUsage(() => createDraft(outbox.deps, userId, accountId!, request));
      console.error(`Draft ${draft.id} written`);
      outboxId = draft.id;
    } else if (accountId) {
      const m = await outbox.deps.store.get(userId, outboxId!);
      if (m && m.accountId !== accountId)
        throw new UsageError(`message ${outboxId} belongs to account ${m.accountId}, not ${accountId}`);
    }
    const outcome = await sendDraft(outbox.deps, userId, outboxId!, { at });
    if (outcome.message.status === 'failed') {
      if (values.json) printJson({ ...outboxJson(outcome.message), started: false });
      console.error(`mail:send: ${describeOutcome(outcome)}`);
      return EXIT.failed;
    }
    if (!values.wait) {
      if (values.json) printJson({ ...outboxJson(outcome.message), started: outcome.started });
      else console.log(describeOutcome(outcome));
      // --at does not move a message that was scheduled already: that is outbox:reschedule's job.
      if (at && !outcome.started && outcome.message.status === 'scheduled')
        console.error(
          `mail:send: --at ignored: message ${outcome.message.id} was scheduled already; to move it: npm run outbox:reschedule -- --user ${owner} --id ${outcome.message.id} --at ${values.at}`,
        );
      return EXIT.done;
    }
    console.error(describeOutcome(outcome));
    if (
      outcome.message.status === 'scheduled' &&
      outcome.message.sendAt &&
      outcome.message.sendAt.getTime() > Date.now()
    )
      console.error(
        `Waiting until ${outcome.message.sendAt.toISOString()} (Ctrl-C stops waiting; the send stays scheduled) ...`,
      );
    const result = await waitForSend(outbox.deps, outcome.message);
    const row = await outbox.deps.store.get(userId, outcome.message.id);
    if (values.json) printJson({ ...(row ? outboxJson(row) : {}), result });
    else console.log(describeResult(result));
    if (result.status === 'sent') return EXIT.done;
    // A refused login marks the account (the sync's rule): the operator gives it a new credential.
    const account = await outbox.db.store.getAccount(userId, outcome.message.accountId);
    if (account?.status === 'needs_attention')
      throw new AttentionError(
        `account ${account.id} needs attention: ${serverText(account.statusReason) || 'its login was refused'}\nfix: ${credentialFix(account, owner)}`,
      );
    return EXIT.failed;
  } finally {
    await outbox.close();
  }
}

commandMain(spec, main);
