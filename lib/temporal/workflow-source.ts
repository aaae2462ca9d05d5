// Where a worker gets its workflow code. From the TypeScript sources (npm run worker, tests)
// the SDK bundles workflows/<name>.ts with webpack at every start (workflowsPath). The
// compiled app (npm run build, the production image) loads the bundle made at build time
// (dist/workflow-bundles/<name>.js, scripts/build-workflow-bundles.ts), as the SDK's
// production sample does: no webpack at start, a faster start, and the code that runs is
// exactly the code that was built and tested.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerOptions } from '@temporalio/worker';
import { componentLogger } from '../observability/logger';

export type WorkflowModule = 'inbound' | 'sync';

/** The bundle file npm run build writes for a workflow module, relative to the compiled app's root (dist/). */
export function workflowBundlePath(name: WorkflowModule, compiledRoot = join(__dirname, '..', '..')): string {
  return join(compiledRoot, 'workflow-bundles', `${name}.js`);
}

export function workflowSource(name: WorkflowModule): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  if (__filename.endsWith('.ts')) return { workflowsPath: require.resolve(`../../workflows/${name}`) };
  const codePath = workflowBundlePath(name);
  if (!existsSync(codePath))
    throw new Error(
      `${codePath} is missing: the compiled worker runs the workflow bundle that npm run build makes (tsc, then scripts/build-workflow-bundles)`,
    );
  componentLogger('worker').info({ workflowBundle: codePath }, 'workflow code: the bundle built at build time');
  return { workflowBundle: { codePath } };
}
