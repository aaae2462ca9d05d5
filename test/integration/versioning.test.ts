// Parallel rollout with Worker Versioning on the real dev server: two builds of the inbound
// worker (same deployment, same task queue, the real activities of the inbound stack), the
// operator commands run as child processes (deploy:promote, deploy:ramp, deploy:status,
// deploy:rollback), and each workflow's history says which build ran every step.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { DeploymentAdmin, type DeploymentState } from '../../lib/temporal/deployment-admin';
import { mailroomDataConverter } from '../../lib/temporal/data-converter';
import { startInbound } from '../../starters/start-inbound';
import { versionedDeployment } from '../../lib/temporal/versioning';
import { rawMail } from '../../scripts/stack/demo-emails';
import { createInboundWorker } from '../../workers/inbound';
import { BUCKET, DOMAIN, type InboundStack, startInboundStack } from '../support/inbound-stack';

const run = promisify(execFile);
const ALICE = 'alice@example.com';
const SLOW = ['slow1@example.com', 'slow2@example.com', 'slow3@example.com', 'slow4@example.com'];
const DEPLOYMENT = `mailroom-test-${process.pid}`;
const QUEUE = `versioning-test-${process.pid}`;

let stack: InboundStack;
let admin: DeploymentAdmin;
const workers: { worker: Worker; running: Promise<void> }[] = [];

function deploy(action: 'status' | 'ramp' | 'promote' | 'rollback', args: string[] = []) {
  const env = { ...stack.childEnv, TEMPORAL_DEPLOYMENT_NAME: DEPLOYMENT };
  return run(process.execPath, ['--import', 'tsx', `starters/deployment-${action}.ts`, ...args], {
    env,
    cwd: join(__dirname, '..', '..'),
    timeout: 60_000,
  });
}

async function start(
  subject: string,
  to: string,
  delivery?: { firstDelaySeconds: number; maxDelaySeconds: number },
): Promise<WorkflowHandle> {
  const key = await stack.put(rawMail({ from: 'someone@sender.example', to: [to], subject }));
  const { workflowId } = await startInbound(stack.env.client, QUEUE, { domain: DOMAIN, bucket: BUCKET, key, delivery });
  return stack.env.client.workflow.getHandle(workflowId);
}

interface Placement {
  /** Build of every completed workflow task, in order. */
  taskBuilds: string[];
  /** Identity of the worker that ran each activity attempt. */
  activityWorkers: string[];
  /** Workflow tasks completed at or after this time (ms). */
  tasksAfter(ms: number): number;
}

async function placement(handle: WorkflowHandle): Promise<Placement> {
  const events = (await handle.fetchHistory()).events ?? [];
  const tasks = events.filter((e) => e.workflowTaskCompletedEventAttributes);
  return {
    taskBuilds: tasks.map((e) => e.workflowTaskCompletedEventAttributes!.deploymentVersion?.buildId ?? 'unversioned'),
    activityWorkers: events
      .filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.identity ?? ''),
    tasksAfter: (ms) =>
      tasks.filter((e) => Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6 >= ms).length,
  };
}

/** The single build that ran the whole workflow (fails when it moved between builds). */
async function buildOf(handle: WorkflowHandle): Promise<string> {
  const p = await placement(handle);
  const builds = [...new Set(p.taskBuilds)];
  assert.equal(builds.length, 1, `${handle.workflowId} ran on one build, not ${builds.join(' and ')}`);
  // The fast path's local activities run inside the workflow task, so on its build; the regular
  // ones (delivery rounds after a 4xx, large messages) must land on that build's workers too.
  assert.deepEqual(
    p.activityWorkers.filter((w) => w !== `worker-${builds[0]}`),
    [],
    `${handle.workflowId}: activities on the same build's workers`,
  );
  const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
  assert.equal(info?.behavior, 1 /* VERSIONING_BEHAVIOR_PINNED */, 'pinned');
  return builds[0];
}

before(async () => {
  stack = await startInboundStack({ mailboxes: [ALICE, ...SLOW] });
  admin = new DeploymentAdmin(stack.env.client, DEPLOYMENT);
  const deps = {
    s3: stack.s3,
    dynamo: stack.dynamo,
    transports: stack.transports,
    config: { ...stack.config, taskQueue: QUEUE },
  };
  for (const buildId of ['b1', 'b2']) {
    const worker = await createInboundWorker({
      connection: stack.env.nativeConnection,
      namespace: stack.env.namespace ?? 'default',
      client: stack.env.client,
      deps,
      dataConverter: mailroomDataConverter(stack.childEnv), // the stack's codec keys
      identity: `worker-${buildId}`,
      deployment: versionedDeployment({ deploymentName: DEPLOYMENT, buildId }),
    });
    workers.push({ worker, running: worker.run() });
  }
  await admin.waitForVersion('b1');
  await admin.waitForVersion('b2');
});

after(async () => {
  for (const w of workers) w.worker.shutdown();
  await Promise.all(workers.map((w) => w.running));
  await stack?.stop();
});

test('ramp 50% to a second build: both take new work, in-flight mail stays on its build, rollback returns all to build 1', async (t) => {
  const promoted = await deploy('promote', ['--build-id', 'b1']);
  assert.match(promoted.stdout, /current: b1/);

  // In flight: each recipient defers (451) four times, so the workflow sleeps between rounds.
  for (const r of SLOW) stack.mail.setRecipientFailure(r, { code: 451, message: '4.3.0 later', times: 4 });
  const inflight = await Promise.all(
    SLOW.map((r, i) => start(`Slow ${i}`, r, { firstDelaySeconds: 3, maxDelaySeconds: 3 })),
  );
  // Wait until each has run its first workflow task (pinned to b1) and is in the delivery loop.
  for (const h of inflight) {
    for (let i = 0; ; i++) {
      const p = await placement(h);
      if (p.activityWorkers.length >= 2) break; // fetchEmail and a first deliverEmail
      assert.ok(i < 100, `${h.workflowId} did not reach delivery`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const ramped = await deploy('ramp', ['--build-id', 'b2', '--percent', '50']);
  assert.match(ramped.stdout, /ramping: b2 at 50%/);
  const rampedAt = Date.now();
  const status = JSON.parse((await deploy('status', ['--json'])).stdout) as DeploymentState;
  assert.equal(status.current, 'b1');
  assert.deepEqual(status.ramping, { buildId: 'b2', percent: 50 });
  assert.deepEqual(status.versions.map((v) => [v.buildId, v.status]).sort(), [
    ['b1', 'current'],
    ['b2', 'ramping'],
  ]);

  const fresh = await Promise.all(Array.from({ length: 20 }, (_, i) => start(`Ramped ${i}`, ALICE)));
  for (const h of [...fresh, ...inflight]) assert.equal((await h.result()).status, 'delivered');

  const builds = await Promise.all(fresh.map(buildOf));
  const count = (b: string) => builds.filter((x) => x === b).length;
  assert.ok(count('b1') > 0 && count('b2') > 0, `both builds took new mail (b1: ${count('b1')}, b2: ${count('b2')})`);
  assert.equal(count('b1') + count('b2'), 20);
  t.diagnostic(`ramped at 50%: b1 took ${count('b1')}, b2 took ${count('b2')} of 20 new emails`);

  for (const h of inflight) {
    assert.equal(await buildOf(h), 'b1', `${h.workflowId} started on b1 and finished there`);
    assert.ok((await placement(h)).tasksAfter(rampedAt) > 0, `${h.workflowId} still had work to do after the ramp`);
  }

  const rolledBack = await deploy('rollback');
  assert.match(rolledBack.stdout, /ramp of b2 \(50%\) ended[\s\S]*current: b1[\s\S]*ramping: \(none\)/);
  // Again, with nothing ramping: says so instead of claiming a change.
  const noop = await deploy('rollback');
  assert.match(noop.stdout, /nothing is ramping: new workflows all go to b1 already; nothing changed/);
  const after = await Promise.all(Array.from({ length: 8 }, (_, i) => start(`After rollback ${i}`, ALICE)));
  for (const h of after) assert.equal((await h.result()).status, 'delivered');
  assert.deepEqual(
    [...new Set(await Promise.all(after.map(buildOf)))],
    ['b1'],
    'after the rollback only build 1 gets new mail',
  );
  const final = await admin.status();
  assert.equal(final.ramping, null);
  assert.ok(
    ['draining', 'drained', 'inactive'].includes(final.versions.find((v) => v.buildId === 'b2')!.status),
    'b2 no longer takes new work',
  );
});
