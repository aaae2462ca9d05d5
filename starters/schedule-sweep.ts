// Create or update the Temporal Schedule that sweeps a domain's bucket periodically
// (replaces cron). Overlapping sweeps are skipped; the Web UI shows every run.
//   npm run schedule:sweep -- --domain example.com --every 15m [--paused]
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { commandMain, duration, EXIT, listOf, oneOf, PLAINTEXT_OPTION, UsageError } from '../lib/cli';
import { loadConfig } from '../lib/config';
import { requireCodecChoice } from '../lib/temporal/data-converter';
import { MAIL_DOMAIN } from '../contracts/search-attributes';
import { connectClient } from '../lib/temporal';
import { type SweepInput, sweepScheduleId, sweepWorkflowId } from '../contracts/sweep';
// The schedule starts the workflow by function reference (its name is what the server stores).
import { sweepDomain } from '../workflows/sweepDomain';

const spec = {
  name: 'schedule:sweep',
  summary:
    "Create or update the Temporal Schedule (id sweep/<domain>) that sweeps a domain's bucket for unprocessed mail.",
  options: {
    domain: {
      type: 'string',
      multiple: true,
      value: '<domain>',
      description: 'a domain to schedule (default: every domain of DOMAINS / domains.txt)',
    },
    every: {
      type: 'string',
      value: '<duration>',
      default: '15m',
      description: 'how often: 30s, 15m, 1h, 1d (at least 10s)',
    },
    paused: {
      type: 'boolean',
      description:
        'create or leave the schedule paused (unpause it in the Web UI or by running this again without --paused)',
    },
    plaintext: PLAINTEXT_OPTION,
  },
  examples: [
    'npm run schedule:sweep -- --domain example.com --every 15m',
    'npm run schedule:sweep -- --domain example.com --every 1h --paused',
  ],
  notes: [
    'Running it again updates the schedule in place. Overlapping sweeps are skipped; missed ones within an hour are caught up once. Delete a schedule in the Web UI (Schedules) or with: temporal schedule delete --schedule-id sweep/<domain>',
  ],
} as const;

commandMain(spec, async (values) => {
  const config = loadConfig();
  const domains = values.domain.length
    ? listOf('domain', values.domain).map((d) => oneOf('domain', d, config.domains))
    : config.domains;
  const everyMs = duration('every', values.every as string);
  if (everyMs < 10_000) throw new UsageError(`--every ${values.every} is too short: at least 10s`);
  requireCodecChoice('schedule:sweep', { plaintext: values.plaintext, flag: true });
  const client = await connectClient({ plaintext: values.plaintext });
  try {
    for (const domain of domains) {
      const scheduleId = sweepScheduleId(domain);
      const spec = { intervals: [{ every: everyMs }] };
      const action = {
        type: 'startWorkflow' as const,
        workflowType: sweepDomain,
        args: [{ domain }] as [SweepInput],
        taskQueue: config.taskQueue,
        workflowId: sweepWorkflowId(domain),
        typedSearchAttributes: [{ key: MAIL_DOMAIN, value: domain }],
      };
      try {
        await client.schedule
          .getHandle(scheduleId)
          .update((prev) => ({ ...prev, spec, action, state: { ...prev.state, paused: values.paused } }));
        console.log(`updated schedule ${scheduleId}: every ${values.every}${values.paused ? ' (paused)' : ''}`);
      } catch (err) {
        if (!(err instanceof ScheduleNotFoundError)) throw err;
        await client.schedule.create({
          scheduleId,
          spec,
          action,
          policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
          state: { paused: values.paused, note: `sweep ${domain} for unprocessed mail` },
        });
        console.log(`created schedule ${scheduleId}: every ${values.every}${values.paused ? ' (paused)' : ''}`);
      }
    }
  } finally {
    await client.connection.close();
  }
  return EXIT.done;
});
