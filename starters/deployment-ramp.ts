// Send a percentage of new workflows to a new build (its workers must be running);
// the rest keep going to the current build. Started workflows stay where they are.
//   npm run deploy:ramp -- --build-id 2026-05-01.abc123 --percent 50
import { commandMain, EXIT, UsageError } from '../lib/cli';
import { DeploymentAdmin, DEPLOYMENT_OPTION, deploymentOption, formatStatus } from '../lib/temporal/deployment-admin';
import { connectClient } from '../lib/temporal';

const spec = {
  name: 'deploy:ramp',
  summary:
    'Send a share of new workflows to a build whose workers are running; the rest keep going to the current build.',
  options: {
    'build-id': {
      type: 'string',
      required: true,
      value: '<build>',
      description: 'the build (TEMPORAL_BUILD_ID of its workers), listed by deploy:status',
    },
    percent: {
      type: 'string',
      required: true,
      value: '<0-100>',
      description: 'share of new workflows, 0 to 100 (decimals allowed)',
    },
    deployment: DEPLOYMENT_OPTION,
  },
  examples: ['npm run deploy:ramp -- --build-id 2026-05-01.abc1234 --percent 10'],
  notes: [
    'Started workflows stay on their build (pinned). deploy:promote makes the build current; deploy:rollback ends the ramp.',
  ],
} as const;

commandMain(spec, async (values) => {
  const name = deploymentOption(values.deployment);
  const percent = Number(values.percent);
  if (!/^\d+(\.\d+)?$/.test(values.percent.trim()) || percent > 100)
    throw new UsageError(`--percent ${values.percent} must be a number from 0 to 100`);
  const client = await connectClient();
  try {
    const admin = new DeploymentAdmin(client, name);
    await admin.ramp(values['build-id'], percent);
    console.log(`ramping ${values['build-id']} at ${percent}%\n${formatStatus(await admin.status())}`);
  } finally {
    await client.connection.close();
  }
  return EXIT.done;
});
