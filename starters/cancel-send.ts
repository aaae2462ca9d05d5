// Undo send: cancels a draft or a scheduled message before its time comes. The database decides
// (a cancel and the send time arriving at once: exactly one wins), then the message's workflow is
// told to stop waiting. Once sending began it is too late: the command says so and changes
// nothing (exit 1). lib/outbox/commands.ts cancelSend does the work.
import { commandMain, emailAddress, EXIT, printJson } from '../lib/cli';
import { cancelSend, OutboxStateError } from '../lib/outbox/commands';
import { openOutbox, outboxIdOption, outboxJson } from './outbox-common';

const spec = {
  name: 'outbox:cancel',
  summary:
    'Cancel a draft or a scheduled message before it goes out (undo send). Too late once sending began: then nothing changes and it says so.',
  options: {
    user: { type: 'string', value: '<email>', description: 'the owner', required: true },
    id: { type: 'string', value: '<outbox id>', description: 'the message (npm run outbox:list)', required: true },
    reason: {
      type: 'string',
      value: '<text>',
      description: 'why, kept with the message',
      default: 'cancelled by the user',
    },
    json: { type: 'boolean', description: 'print the message as JSON (stdout only)' },
  },
  examples: ['npm run outbox:cancel -- --user owner@example.com --id 9b2e...'],
  notes: ['Cancelling a cancelled message again changes nothing and exits 0. A cancelled message is never sent.'],
  exitCodes:
    'Exit codes: 0 cancelled, 1 failed or too late (sending began, or it was sent or failed already), 2 usage error.',
} as const;

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const id = outboxIdOption(values.id);
  const outbox = await openOutbox({ temporal: true });
  try {
    const userId = await outbox.userId(owner);
    try {
      const m = await cancelSend(outbox.deps, userId, id, values.reason ?? 'cancelled by the user');
      if (values.json) printJson(outboxJson(m));
      else console.log(`Cancelled message ${m.id}; it will not be sent.`);
      return EXIT.done;
    } catch (err) {
      if (err instanceof OutboxStateError) {
        console.error(`outbox:cancel: ${err.message}. Nothing was changed.`);
        return EXIT.failed;
      }
      throw err;
    }
  } finally {
    await outbox.close();
  }
});
