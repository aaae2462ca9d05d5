// Show the worker deployment: the current build, the ramping build and its percentage,
// and every known build with its status (draining: pinned workflows still open on it).
//   npm run deploy:status [-- --json]
import { parseArgs } from 'node:util';
import { DeploymentAdmin, formatStatus } from '../lib/deployment-admin';
import { connectClient } from '../lib/temporal';
import { deploymentName } from '../lib/versioning';

async function main() {
  const { values } = parseArgs({ options: { deployment: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const client = await connectClient();
  const state = await new DeploymentAdmin(client, values.deployment ?? deploymentName()).status();
  console.log(values.json ? JSON.stringify(state, null, 2) : formatStatus(state));
  await client.connection.close();
}

main().catch((err) => {
  console.error(`deployment-status: ${(err as Error).message}`);
  process.exit(1);
});
