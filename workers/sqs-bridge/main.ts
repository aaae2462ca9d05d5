// The SQS bridge process (`npm run bridge`): long-polls each domain's SQS queue of SES
// notifications and starts one inbound workflow per notification (workers/sqs-bridge/bridge.ts).
// A process of its own, next to the worker, rather than a Temporal workflow or
// activity: long polling is a loop that holds a connection open, owns no state and
// needs no durability (SQS holds the message until it is deleted), and it scales and
// restarts independently of the workers that process mail.
// SIGTERM/SIGINT: stop polling, finish the batch in hand, exit 0.
import { writeSync } from 'node:fs';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createAwsClients } from '../../lib/aws/clients';
import { bucketForDomain, ConfigError } from '../../lib/config';
import { codecWarning, requireCodecChoice } from '../../lib/temporal/data-converter';
import { componentLogger } from '../../lib/observability/logger';
import { type BridgeHooks, resolveQueues, runBridge, temporalBridgeDeps } from './bridge';
import { loadSqsConfig } from '../../lib/config/sqs-bridge';
import { connectClient } from '../../lib/temporal';
import { startMetricsServer } from '../http';
import { serviceArgs, type ServiceSpec } from '../../lib/cli';

const log = componentLogger('sqs-bridge');

const SERVICE: ServiceSpec = {
  name: 'bridge',
  summary:
    "Runs the SQS bridge: long-polls each domain's queue of SES notifications and starts one inbound workflow per notification, until SIGTERM or SIGINT (it finishes the batch in hand). docs/sqs-bridge.md",
  environment: [
    'TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE   Temporal (localhost:7233, default, mailroom-inbound)',
    'MAILROOM_CODEC_KEYS                                payload keys (required; none = plaintext on purpose)',
    'AWS_REGION, AWS_ENDPOINT_URL_SQS, DOMAINS_FILE / DOMAINS   the queues: <domain with dots as hyphens>-queue',
    'SQS_DEAD_LETTER_QUEUE                              where poison messages go',
    'METRICS_HOST, SQS_BRIDGE_METRICS_PORT              Prometheus /metrics (port unset = off)',
  ],
  notes: ['Logs are JSON lines on stdout (LOG_LEVEL, LOG_ADDRESSES).'],
  examples: ['npm run bridge'],
};

async function main(): Promise<void> {
  const config = loadSqsConfig();
  // Unset or malformed MAILROOM_CODEC_KEYS stops the bridge here, naming the variable.
  const warning = codecWarning(requireCodecChoice('the SQS bridge'));
  if (warning) log.warn(warning);
  const { s3 } = createAwsClients(config.base);
  const sqs = new SQSClient({ region: config.base.awsRegion, endpoint: config.sqsEndpoint });
  const client = await connectClient();
  const queues = await resolveQueues(sqs, config.queues);

  const hooks: BridgeHooks = {};
  // Tests only: die like a crash (no cleanup, no DeleteMessage) right after a workflow start.
  if (config.testCrashAfterStart) {
    hooks.afterStart = ({ workflowId }) => {
      // Written synchronously: pino's asynchronous stdout would lose the line to the SIGKILL.
      writeSync(2, `MAILROOM_TEST_CRASH_AFTER_START: ${workflowId} started, killing myself before DeleteMessage\n`);
      process.kill(process.pid, 'SIGKILL');
    };
  }

  const metrics =
    config.metricsPort !== undefined
      ? await startMetricsServer({
          port: config.metricsPort,
          host: config.base.metricsHost,
          portVariable: 'SQS_BRIDGE_METRICS_PORT',
        })
      : undefined;
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (stop.signal.aborted) return;
      log.info({ signal: sig }, 'stopping: no new receives, finishing the messages in hand');
      stop.abort();
    });
  }

  log.info(
    {
      queues: queues.map((q) => ({ queue: q.name, domains: q.domains, deadLetter: q.deadLetter?.name })),
      taskQueue: config.base.taskQueue,
      pollInterval: config.pollIntervalSeconds,
      maxMessages: config.maxMessages,
      visibilityTimeout: config.visibilityTimeoutSeconds,
      metricsHost: metrics ? config.base.metricsHost : undefined,
      metricsPort: metrics?.port,
    },
    'sqs bridge started',
  );
  try {
    await runBridge(
      { sqs, s3, ...temporalBridgeDeps(client, config.base.taskQueue), log },
      queues,
      {
        buckets: config.base.domains.map((domain) => ({
          domain,
          bucket: bucketForDomain(domain, config.base.bucketTemplate),
        })),
        waitTimeSeconds: config.pollIntervalSeconds,
        maxMessages: config.maxMessages,
        visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
        poisonVisibilityTimeoutSeconds: config.poisonVisibilityTimeoutSeconds,
        hooks,
      },
      stop.signal,
    );
  } finally {
    metrics?.server.close();
    sqs.destroy();
    s3.destroy();
    await client.connection.close();
    log.info('sqs bridge stopped');
  }
}

const early = serviceArgs(SERVICE);
if (early !== undefined) process.exitCode = early;
else
  main().catch((err) => {
    if (err instanceof ConfigError) log.fatal(err.message);
    else log.fatal({ err }, 'sqs bridge failed');
    process.exit(1);
  });
