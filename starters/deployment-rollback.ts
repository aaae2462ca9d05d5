// Roll back: without arguments, end the ramp (new workflows all go to the current build);
// with --build-id, make that (earlier) build current again; --unversioned hands new
// workflows back to unversioned workers. Started workflows stay on their build.
//   npm run deploy:rollback [-- --build-id 2026-04-20.def456 | --unversioned]
import { parseArgs } from 'node:util';
import { DeploymentAdmin, formatStatus } from '../lib/deployment-admin';
import { connectClient } from '../lib/temporal';
import { deploymentName } from '../lib/versioning';

async function main() {
  const { values } = parseArgs({ options: { deployment: { type: 'string' }, 'build-id': { type: 'string' }, unversioned: { type: 'boolean', default: false } } });
  const client = await connectClient();
  const admin = new DeploymentAdmin(client, values.deployment ?? deploymentName());
  if (values['build-id'] || values.unversioned) await admin.promote(values['build-id'] ?? '', 'deploy:rollback');
  else await admin.unramp();
  console.log(`rolled back: ${values['build-id'] ? `current is ${values['build-id']} again` : values.unversioned ? 'unversioned workers are current' : 'ramp ended'}\n${formatStatus(await admin.status())}`);
  await client.connection.close();
}

main().catch((err) => {
  console.error(`deployment-rollback: ${(err as Error).message}`);
  process.exit(1);
});
