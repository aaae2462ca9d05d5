// Make a build current: every new workflow goes to it, the ramp ends. Workflows pinned to
// the previous build finish there (keep its workers until deploy:status shows it drained).
//   npm run deploy:promote -- --build-id 2026-05-01.abc123
import { commandMain, EXIT } from '../lib/cli';
import { DeploymentAdmin, DEPLOYMENT_OPTION, deploymentOption, formatStatus } from '../lib/temporal/deployment-admin';
import { connectClient } from '../lib/temporal';

const spec = {
  name: 'deploy:promote',
  summary: 'Make a build current: every new workflow goes to it and any ramp ends.',
  options: {
    'build-id': {
      type: 'string',
      required: true,
      value: '<build>',
      description: 'the build (TEMPORAL_BUILD_ID of its workers), listed by deploy:status',
    },
    deployment: DEPLOYMENT_OPTION,
  },
  examples: ['npm run deploy:promote -- --build-id 2026-05-01.abc1234'],
  notes: [
    'Workflows pinned to the previous build finish there: keep its workers until deploy:status shows it drained.',
  ],
} as const;

commandMain(spec, async (values) => {
  const name = deploymentOption(values.deployment);
  const client = await connectClient();
  try {
    const admin = new DeploymentAdmin(client, name);
    await admin.promote(values['build-id']);
    console.log(`promoted ${values['build-id']} to current\n${formatStatus(await admin.status())}`);
  } finally {
    await client.connection.close();
  }
  return EXIT.done;
});
