// Create or update the Temporal Schedule that sweeps a domain's bucket periodically
// (replaces cron). Overlapping sweeps are skipped; the Web UI shows every run.
//   npm run schedule:sweep -- --domain example.com --every 15m [--paused]
import { parseArgs } from 'node:util';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { loadConfig } from '../lib/config';
import { MAIL_DOMAIN } from '../lib/search-attributes';
import { connectClient } from '../lib/temporal';

async function main() {
  const { values } = parseArgs({ options: { domain: { type: 'string', multiple: true }, every: { type: 'string', default: '15m' }, paused: { type: 'boolean', default: false } } });
  const config = loadConfig();
  const domains = values.domain?.length ? values.domain : config.domains;
  const client = await connectClient();
  for (const domain of domains) {
    const scheduleId = `sweep/${domain}`;
    const spec = { intervals: [{ every: values.every as `${number}m` }] };
    const action = {
      type: 'startWorkflow' as const,
      workflowType: 'sweepDomain',
      args: [{ domain }],
      taskQueue: config.taskQueue,
      workflowId: `sweep/${domain}`,
      typedSearchAttributes: [{ key: MAIL_DOMAIN, value: domain }],
    };
    try {
      await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action, state: { ...prev.state, paused: values.paused } }));
      console.log(`updated schedule ${scheduleId}: every ${values.every}${values.paused ? ' (paused)' : ''}`);
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await client.schedule.create({ scheduleId, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' }, state: { paused: values.paused, note: `sweep ${domain} for unprocessed mail` } });
      console.log(`created schedule ${scheduleId}: every ${values.every}${values.paused ? ' (paused)' : ''}`);
    }
  }
  await client.connection.close();
}

main().catch((err) => {
  console.error(`schedule-sweep: ${(err as Error).message}`);
  process.exit(1);
});
