// Send a percentage of new workflows to a new build (its workers must be running);
// the rest keep going to the current build. Started workflows stay where they are.
//   npm run deploy:ramp -- --build-id 2026-05-01.abc123 --percent 50
import { parseArgs } from 'node:util';
import { DeploymentAdmin, formatStatus } from '../lib/deployment-admin';
import { connectClient } from '../lib/temporal';
import { deploymentName } from '../lib/versioning';

async function main() {
  const { values } = parseArgs({ options: { deployment: { type: 'string' }, 'build-id': { type: 'string' }, percent: { type: 'string' } } });
  if (!values['build-id'] || values.percent === undefined) throw new Error('usage: deploy:ramp -- --build-id BUILD --percent 0..100');
  const client = await connectClient();
  const admin = new DeploymentAdmin(client, values.deployment ?? deploymentName());
  await admin.ramp(values['build-id'], Number(values.percent));
  console.log(`ramping ${values['build-id']} at ${Number(values.percent)}%\n${formatStatus(await admin.status())}`);
  await client.connection.close();
}

main().catch((err) => {
  console.error(`deployment-ramp: ${(err as Error).message}`);
  process.exit(1);
});
