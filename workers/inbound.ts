// The inbound worker: the processInboundEmail and sweepDomain workflows with their
// activities, built from injected dependencies so tests run the same code.
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { type NativeConnection, Worker, type WorkerDeploymentOptions } from '@temporalio/worker';
import { createInboundActivities, type InboundDeps } from '../activities';
import { createSweepActivities } from '../activities/sweep';
import { startInbound } from '../starters/start-inbound';
import { resolveDeployment } from '../lib/temporal/versioning';
import { workflowSource } from '../lib/temporal/workflow-source';
import { countWorkflowActivations } from '../lib/observability/metrics';

export async function createInboundWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  client: Client;
  deps: InboundDeps;
  identity?: string;
  /** Worker Versioning; default from TEMPORAL_BUILD_ID (lib/temporal/versioning.ts), null = unversioned */ deployment?: WorkerDeploymentOptions | null;
  /** lib/temporal/data-converter.ts: the client's converter (encryption) */ dataConverter?: DataConverter;
}): Promise<Worker> {
  const { deps } = opts;
  const worker = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: deps.config.taskQueue,
    identity: opts.identity ?? deps.config.workerName,
    dataConverter: opts.dataConverter,
    ...workflowSource('inbound'),
    workerDeploymentOptions: resolveDeployment(opts.deployment),
    // Unset knobs keep the SDK's defaults (undefined is not passed on).
    ...Object.fromEntries(
      Object.entries({
        maxConcurrentActivityTaskExecutions: deps.config.tuning.maxConcurrentActivities,
        maxConcurrentWorkflowTaskExecutions: deps.config.tuning.maxConcurrentWorkflowTasks,
        maxCachedWorkflows: deps.config.tuning.maxCachedWorkflows,
      }).filter(([, v]) => v !== undefined),
    ),
    activities: {
      ...createInboundActivities(deps),
      ...createSweepActivities({
        s3: deps.s3,
        dynamo: deps.dynamo,
        config: deps.config,
        start: (ref, facts) => startInbound(opts.client, deps.config.taskQueue, ref, undefined, facts),
      }),
    },
  });
  countWorkflowActivations(worker);
  return worker;
}
