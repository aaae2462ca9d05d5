// Worker Versioning options from the environment (lib/temporal/versioning.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../lib/config';
import {
  deploymentFromEnv,
  describeDeployment,
  resolveDeployment,
  versionedDeployment,
} from '../../lib/temporal/versioning';

test('no TEMPORAL_BUILD_ID: unversioned worker, as before', () => {
  assert.equal(deploymentFromEnv({}), undefined);
  assert.equal(deploymentFromEnv({ TEMPORAL_BUILD_ID: '  ', TEMPORAL_DEPLOYMENT_NAME: 'x' }), undefined);
  assert.match(describeDeployment(undefined), /unversioned/);
});

test('a build id makes a pinned version of the deployment (default name mailroom)', () => {
  assert.deepEqual(deploymentFromEnv({ TEMPORAL_BUILD_ID: '2026-05-01.abc' }), {
    useWorkerVersioning: true,
    version: { deploymentName: 'mailroom', buildId: '2026-05-01.abc' },
    defaultVersioningBehavior: 'PINNED',
  });
  assert.equal(
    deploymentFromEnv({ TEMPORAL_BUILD_ID: 'b2', TEMPORAL_DEPLOYMENT_NAME: 'mailroom-eu' })?.version.deploymentName,
    'mailroom-eu',
  );
  assert.equal(describeDeployment(deploymentFromEnv({ TEMPORAL_BUILD_ID: 'b2' })), 'mailroom.b2 (PINNED)');
});

test('a dot in the deployment name is refused with the variable name', () => {
  assert.throws(
    () => deploymentFromEnv({ TEMPORAL_BUILD_ID: 'b1', TEMPORAL_DEPLOYMENT_NAME: 'mail.room' }),
    (err: Error) => err instanceof ConfigError && /TEMPORAL_DEPLOYMENT_NAME/.test(err.message),
  );
});

test('explicit options win over the environment; null means unversioned', () => {
  const env = { TEMPORAL_BUILD_ID: 'from-env' };
  const mine = versionedDeployment({ deploymentName: 'd', buildId: 'b' });
  assert.equal(resolveDeployment(mine, env), mine);
  assert.equal(resolveDeployment(null, env), undefined);
  assert.equal(resolveDeployment(undefined, env)?.version.buildId, 'from-env');
});
