// Builds the workflow bundles the compiled workers load (lib/temporal/workflow-source.ts), once, at
// build time (npm run build; the Dockerfile's build stage). Run from the compiled output:
// node dist/scripts/build-workflow-bundles.js writes dist/workflow-bundles/{inbound,sync}.js.
// The failure converter goes in too: a prebuilt bundle cannot take it from the worker's
// DataConverter at start (lib/temporal/data-converter.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { componentLogger, temporalLogger } from '../lib/observability/logger';
import { type WorkflowModule, workflowBundlePath } from '../lib/temporal/workflow-source';

const log = componentLogger('build');
const MODULES: WorkflowModule[] = ['inbound', 'sync'];

async function main(): Promise<void> {
  if (__filename.endsWith('.ts'))
    throw new Error('run the compiled script (npm run build): the bundles belong beside the compiled workers in dist/');
  for (const name of MODULES) {
    const started = Date.now();
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve(`../workflows/${name}`),
      failureConverterPath: require.resolve('../lib/temporal/failure-converter'),
      logger: temporalLogger(),
    });
    const out = workflowBundlePath(name, `${__dirname}/..`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, code);
    log.info({ bundle: out, bytes: code.length, ms: Date.now() - started }, 'workflow bundle written');
  }
}

main().catch((err) => {
  log.fatal({ err }, 'workflow bundle build failed');
  process.exit(1);
});
