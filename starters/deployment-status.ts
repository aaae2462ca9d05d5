// Show the worker deployment: the current build, the ramping build and its percentage,
// and every known build with its status (draining: pinned workflows still open on it).
//   npm run deploy:status [-- --json]
import { commandMain, EXIT, printJson } from '../lib/cli';
import { DeploymentAdmin, DEPLOYMENT_OPTION, formatStatus, deploymentOption } from '../lib/temporal/deployment-admin';
import { connectClient } from '../lib/temporal';

const spec = {
  name: 'deploy:status',
  summary:
    'Show the Worker Deployment: current build, ramping build and share, and every build with its status (draining/drained).',
  options: {
    deployment: DEPLOYMENT_OPTION,
    json: { type: 'boolean', description: 'print the state as JSON, alone on stdout' },
  },
  examples: ['npm run deploy:status', 'npm run -s deploy:status -- --json | jq .current'],
  notes: [
    'Run npm with -s (--silent) when piping --json: otherwise npm prints its own "> mailroom ..." banner on stdout first.',
  ],
} as const;

commandMain(spec, async (values) => {
  const name = deploymentOption(values.deployment);
  const client = await connectClient();
  try {
    const state = await new DeploymentAdmin(client, name).status();
    if (values.json) printJson(state);
    else console.log(formatStatus(state));
  } finally {
    await client.connection.close();
  }
  return EXIT.done;
});
