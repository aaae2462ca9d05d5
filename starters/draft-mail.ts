// Writes a draft in a user's account: recipients checked with the inbound address parser,
// attachments checked (they exist, fit the cap), nothing sent. Prints the draft's outbox id and
// the command that sends it. lib/outbox/commands.ts createDraft does the work.
import { commandMain, emailAddress, EXIT, printJson } from '../lib/cli';
import { printable } from '../lib/cli/printable';
import { createDraft } from '../lib/outbox/commands';
import { accountIdOption } from './account-common';
import { asUsage, DRAFT_OPTIONS, draftFromOptions, openOutbox, outboxJson } from './outbox-common';

const spec = {
  name: 'mail:draft',
  summary:
    "Write a draft in a user's account (nothing is sent): recipients and attachments are checked first, then the draft is stored and its outbox id printed.",
  options: {
    user: { type: 'string', value: '<email>', description: 'the owner', required: true },
    account: {
      type: 'string',
      value: '<id>',
      description: 'the account it is sent from (npm run account:list)',
      required: true,
    },
    ...DRAFT_OPTIONS,
    json: { type: 'boolean', description: 'print the draft as JSON (stdout only)' },
  },
  examples: [
    'npm run mail:draft -- --user owner@example.com --account 3f1c... --to bob@example.org --subject "Lunch?" --text "At noon?"',
    'npm run mail:draft -- --user owner@example.com --account 3f1c... --to "Ann <ann@example.com>" --cc bob@example.org --subject Report --text-file body.txt --attach report.pdf',
    'npm run mail:draft -- --user owner@example.com --account 3f1c... --from-file draft.eml',
  ],
  notes: [
    'Send it with npm run mail:send -- --user ... --account ... --id <outbox id> (now, or --at a later time).',
    'Nothing is stored when a recipient is not an address or an attachment is missing or too large (exit 2). Limits: SEND_MAX_RECIPIENTS, SEND_MAX_ATTACHMENT_BYTES per file.',
    'Environment: DATABASE_URL, SEND_* (docs/sending.md).',
  ],
} as const;

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const accountId = accountIdOption(values.account);
  const request = await draftFromOptions(values);
  const outbox = await openOutbox();
  try {
    const userId = await outbox.userId(owner);
    const draft = await asUsage(() => createDraft(outbox.deps, userId, accountId, request));
    if (values.json) {
      printJson(outboxJson(draft));
      return EXIT.done;
    }
    const recipients = [...draft.to, ...draft.cc, ...draft.bcc].length;
    console.log(
      `Draft ${draft.id}: from ${draft.from.address} to ${recipients} recipient${recipients === 1 ? '' : 's'}, "${printable(draft.subject, 80)}"${draft.attachments.length ? `, ${draft.attachments.length} attachment(s)` : ''}`,
    );
    console.log(`Send it: npm run mail:send -- --user ${owner} --account ${accountId} --id ${draft.id} [--at +10m]`);
    return EXIT.done;
  } finally {
    await outbox.close();
  }
});
