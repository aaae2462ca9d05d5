// Moves the send time of a scheduled message (earlier or later; a time that has passed means
// now), in the database and in its workflow's timer. A draft is sent with mail:send --at instead;
// once sending began it is too late (exit 1). lib/outbox/commands.ts rescheduleSend does the work.
import { commandMain, emailAddress, EXIT, printJson } from '../lib/cli';
import { OutboxStateError, rescheduleSend } from '../lib/outbox/commands';
import { atOption, openOutbox, outboxIdOption, outboxJson } from './outbox-common';

const spec = {
  name: 'outbox:reschedule',
  summary: 'Move the send time of a scheduled message, earlier or later, before it goes out.',
  options: {
    user: { type: 'string', value: '<email>', description: 'the owner', required: true },
    id: { type: 'string', value: '<outbox id>', description: 'the message (npm run outbox:list)', required: true },
    at: {
      type: 'string',
      value: '<time>',
      description: 'the new time: ISO 8601 with its zone (2026-12-24T09:00:00Z) or a delay from now (+10m, +2h, +1d)',
      required: true,
    },
    json: { type: 'boolean', description: 'print the message as JSON (stdout only)' },
  },
  examples: [
    'npm run outbox:reschedule -- --user owner@example.com --id 9b2e... --at +1h',
    'npm run outbox:reschedule -- --user owner@example.com --id 9b2e... --at 2026-12-24T09:00:00+01:00',
  ],
  exitCodes: 'Exit codes: 0 rescheduled, 1 failed or too late (a draft, sending began, or done), 2 usage error.',
} as const;

commandMain(spec, async (values) => {
  const owner = emailAddress('user', values.user);
  const id = outboxIdOption(values.id);
  const at = atOption(values.at);
  const outbox = await openOutbox({ temporal: true });
  try {
    const userId = await outbox.userId(owner);
    try {
      const m = await rescheduleSend(outbox.deps, userId, id, at);
      if (values.json) printJson(outboxJson(m));
      else console.log(`Message ${m.id} now goes out at ${m.sendAt?.toISOString() ?? at.toISOString()}.`);
      return EXIT.done;
    } catch (err) {
      if (err instanceof OutboxStateError) {
        console.error(`outbox:reschedule: ${err.message}. Nothing was changed.`);
        return EXIT.failed;
      }
      throw err;
    }
  } finally {
    await outbox.close();
  }
});
