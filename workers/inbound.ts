// The inbound worker: the processInboundEmail and sweepDomain workflows with their
// activities, built from injected dependencies so tests run the same code.
import type { Client } from '@temporalio/client';
import { type NativeConnection, Worker } from '@temporalio/worker';
import { createInboundActivities, type InboundDeps } from '../activities';
import { createSweepActivities } from '../activities/sweep';
import { startInbound } from '../lib/start-inbound';

export async function createInboundWorker(opts: { connection: NativeConnection; namespace: string; client: Client; deps: InboundDeps; identity?: string }): Promise<Worker> {
  const { deps } = opts;
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: deps.config.taskQueue,
    identity: opts.identity ?? deps.config.workerName,
    workflowsPath: require.resolve('../workflows/inbound'),
    activities: {
      ...createInboundActivities(deps),
      ...createSweepActivities({ s3: deps.s3, config: deps.config, start: (ref) => startInbound(opts.client, deps.config.taskQueue, ref) }),
    },
  });
}
