// Worker Versioning (Worker Deployments): each worker process polls as one version,
// `<TEMPORAL_DEPLOYMENT_NAME>.<TEMPORAL_BUILD_ID>`, and the server routes new workflows to
// the deployment's current version (or to the ramping one for a percentage). Workflows are
// PINNED: an email's workflow finishes on the build it started on, so a new build never
// replays a half-done email with changed code; the old build drains, then can be stopped.
//
// Without TEMPORAL_BUILD_ID the worker is unversioned, exactly as before. A build id is not
// derived (from package.json or git) on purpose: a versioned worker gets no work until an
// operator makes its version current (`npm run deploy:promote`), so turning versioning on
// must be a deliberate step of the deployment, never a side effect of a new commit.
import type { WorkerDeploymentVersion } from '@temporalio/common';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import { ConfigError } from '../config';
import { componentLogger } from '../observability/logger';
import { environment } from '../config/env';

export const DEFAULT_DEPLOYMENT_NAME = 'mailroom';

export function deploymentName(env: NodeJS.ProcessEnv = environment()): string {
  const name = env.TEMPORAL_DEPLOYMENT_NAME?.trim() || DEFAULT_DEPLOYMENT_NAME;
  // The server writes a version as `<deployment>.<build>`; a dot would make that ambiguous.
  if (name.includes('.'))
    throw new ConfigError(`TEMPORAL_DEPLOYMENT_NAME: must not contain "." (got ${JSON.stringify(name)})`);
  return name;
}

/** Options for a versioned worker of this build; PINNED unless told otherwise. */
export function versionedDeployment(
  version: WorkerDeploymentVersion,
  behavior: 'PINNED' | 'AUTO_UPGRADE' = 'PINNED',
): WorkerDeploymentOptions {
  return { useWorkerVersioning: true, version, defaultVersioningBehavior: behavior };
}

/**
 * The `workerDeploymentOptions` for Worker.create from TEMPORAL_DEPLOYMENT_NAME (default
 * `mailroom`) and TEMPORAL_BUILD_ID; undefined (unversioned worker) when no build id is set.
 */
export function deploymentFromEnv(env: NodeJS.ProcessEnv = environment()): WorkerDeploymentOptions | undefined {
  const buildId = env.TEMPORAL_BUILD_ID?.trim();
  if (!buildId) return undefined;
  return versionedDeployment({ deploymentName: deploymentName(env), buildId });
}

/** One line for the worker's start log. */
export function describeDeployment(options: WorkerDeploymentOptions | undefined): string {
  if (!options?.useWorkerVersioning) return 'unversioned (set TEMPORAL_BUILD_ID to run as a Worker Deployment version)';
  return `${options.version.deploymentName}.${options.version.buildId} (${options.defaultVersioningBehavior})`;
}

/**
 * What createInboundWorker passes to Worker.create: the caller's options, `null` for an
 * explicitly unversioned worker, or (undefined) the environment's. Logs the choice.
 */
export function resolveDeployment(
  option: WorkerDeploymentOptions | null | undefined,
  env: NodeJS.ProcessEnv = environment(),
): WorkerDeploymentOptions | undefined {
  const options = option === undefined ? deploymentFromEnv(env) : (option ?? undefined);
  componentLogger('versioning').info(
    { deployment: describeDeployment(options) },
    options?.useWorkerVersioning ? 'worker versioning on' : 'worker versioning off',
  );
  return options;
}
