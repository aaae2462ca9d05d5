// Make a build current: every new workflow goes to it, the ramp ends. Workflows pinned to
// the previous build finish there (keep its workers until deploy:status shows it drained).
//   npm run deploy:promote -- --build-id 2026-05-01.abc123
import { parseArgs } from 'node:util';
import { DeploymentAdmin, formatStatus } from '../lib/deployment-admin';
import { connectClient } from '../lib/temporal';
import { deploymentName } from '../lib/versioning';

async function main() {
  const { values } = parseArgs({ options: { deployment: { type: 'string' }, 'build-id': { type: 'string' } } });
  if (!values['build-id']) throw new Error('usage: deploy:promote -- --build-id BUILD');
  const client = await connectClient();
  const admin = new DeploymentAdmin(client, values.deployment ?? deploymentName());
  await admin.promote(values['build-id']);
  console.log(`promoted ${values['build-id']} to current\n${formatStatus(await admin.status())}`);
  await client.connection.close();
}

main().catch((err) => {
  console.error(`deployment-promote: ${(err as Error).message}`);
  process.exit(1);
});
