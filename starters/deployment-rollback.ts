// Roll back: without arguments, end the ramp (new workflows all go to the current build);
// with --build-id, make that (earlier) build current again; --unversioned hands new
// workflows back to unversioned workers. Started workflows stay on their build.
//   npm run deploy:rollback [-- --build-id 2026-04-20.def456 | --unversioned]
import { commandMain, EXIT, UsageError } from '../lib/cli';
import { DeploymentAdmin, DEPLOYMENT_OPTION, deploymentOption, formatStatus } from '../lib/temporal/deployment-admin';
import { connectClient } from '../lib/temporal';

const spec = {
  name: 'deploy:rollback',
  summary:
    'Without options, end the ramp (new workflows all go to the current build); with --build-id, make an earlier build current again; with --unversioned, hand new workflows back to unversioned workers.',
  options: {
    'build-id': { type: 'string', value: '<build>', description: 'the earlier build to make current again' },
    unversioned: {
      type: 'boolean',
      description: 'send new workflows to unversioned workers (no TEMPORAL_BUILD_ID) again',
    },
    deployment: DEPLOYMENT_OPTION,
  },
  examples: [
    'npm run deploy:rollback',
    'npm run deploy:rollback -- --build-id 2026-04-20.def5678',
    'npm run deploy:rollback -- --unversioned',
  ],
  notes: ['Started workflows stay on their build (pinned).'],
} as const;

commandMain(spec, async (values) => {
  const name = deploymentOption(values.deployment);
  if (values['build-id'] && values.unversioned) throw new UsageError('give --build-id or --unversioned, not both');
  const client = await connectClient();
  try {
    const admin = new DeploymentAdmin(client, name);
    if (values['build-id'] || values.unversioned) {
      await admin.promote(values['build-id'] ?? '', 'deploy:rollback');
      console.log(
        `rolled back: ${values['build-id'] ? `current is ${values['build-id']} again` : 'unversioned workers are current'}\n${formatStatus(await admin.status())}`,
      );
      return EXIT.done;
    }
    const before = await admin.status();
    if (!before.ramping) {
      // Nothing to undo; saying "ramp ended" here would claim a change that did not happen.
      console.log(
        `nothing is ramping: new workflows all go to ${before.current ?? 'unversioned workers'} already; nothing changed.\nTo make an earlier build current again: npm run deploy:rollback -- --build-id <build>, or --unversioned\n${formatStatus(before)}`,
      );
      return EXIT.done;
    }
    await admin.unramp();
    console.log(
      `rolled back: ramp of ${before.ramping.buildId} (${before.ramping.percent}%) ended, new workflows all go to ${before.current ?? 'unversioned workers'}\n${formatStatus(await admin.status())}`,
    );
  } finally {
    await client.connection.close();
  }
  return EXIT.done;
});
