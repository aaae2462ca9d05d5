// The mailroom worker process: polls the inbound task queue, serves /health, /domains
// and /metrics, and stops gracefully on SIGTERM/SIGINT (in-flight activities finish or
// are handed back to Temporal; nothing is lost, as every step is durable).
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createAwsClients } from '../lib/aws/clients';
import { createTransports } from '../lib/smtp/transports';
import { bucketForDomain, loadConfig, ConfigError } from '../lib/config';
import { mailroomDataConverter, codecWarning, requireCodecChoice } from '../lib/temporal/data-converter';
import { cachedChecks } from '../lib/observability/health-cache';
import { deferredEmailsQuery, trackDeferredEmails } from '../lib/observability/metrics';
import { componentLogger } from '../lib/observability/logger';
import { codecKeyList } from '../lib/temporal/codec';
import { installWorkerRuntime, temporalSettings } from '../lib/temporal';
import { startHealthServer, startMetricsServer, temporalMetricsBind } from './http';
import { createInboundWorker } from './inbound';
import { serviceArgs, type ServiceSpec } from '../lib/cli';

const log = componentLogger('worker');

const SERVICE: ServiceSpec = {
  name: 'worker',
  summary:
    'Runs the inbound worker: polls the inbound task queue (one workflow per stored email), serves /health, /domains and /metrics, and runs until SIGTERM or SIGINT, finishing the activities in hand.',
  environment: [
    'TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE   Temporal (localhost:7233, default, mailroom-inbound)',
    'MAILROOM_CODEC_KEYS                                payload keys (required; none = plaintext on purpose)',
    'AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB, DOMAINS_FILE / DOMAINS',
    'SMTP_HOST, SMTP_PORT (LMTP_ENABLED, ...)           the internal mail server',
    'HEALTH_PORT, METRICS_PORT (WORKER_PORTS=free)      8080, 8000; 0 or free = any free port, logged at start',
    'TEMPORAL_BUILD_ID                                  worker versioning (docs/upgrades.md)',
  ],
  notes: ['Logs are JSON lines on stdout (LOG_LEVEL, LOG_ADDRESSES).'],
  examples: ['npm run worker', 'TEMPORAL_BUILD_ID=B2 WORKER_PORTS=free npm run worker'],
};

async function main(): Promise<void> {
  const config = loadConfig();
  // Unset or malformed MAILROOM_CODEC_KEYS stops the worker here, naming the variable.
  const warning = codecWarning(requireCodecChoice('the worker'));
  if (warning) log.warn(warning);
  const dataConverter = mailroomDataConverter();
  const temporalMetrics = await temporalMetricsBind(config.temporalMetricsBind);
  installWorkerRuntime({ prometheus: temporalMetrics });
  const { connectionOptions, namespace } = temporalSettings();
  const connection = await NativeConnection.connect(connectionOptions);
  const client = new Client({ connection: await Connection.connect(connectionOptions), namespace, dataConverter });
  const aws = createAwsClients(config);
  const transports = createTransports(config);
  const worker = await createInboundWorker({
    connection,
    namespace,
    client,
    dataConverter,
    // Runs record keyed hashes of their addresses (MailFromHash, MailToHash) with the codec's current key.
    deps: { ...aws, config, transports, addressHashKeys: codecKeyList() },
  });

  const health = await startHealthServer({
    port: config.healthPort,
    host: config.healthHost,
    worker: config.workerName,
    domains: () => config.domains,
    // Each dependency is checked at most every 10 s however often /health is polled.
    checks: cachedChecks({
      temporal: async () => {
        if (worker.getState() !== 'RUNNING') throw new Error(`worker is ${worker.getState()}`);
        await client.workflowService.getSystemInfo({});
      },
      s3: async () => {
        await Promise.all(
          config.domains.map((d) =>
            aws.s3.send(new HeadBucketCommand({ Bucket: bucketForDomain(d, config.bucketTemplate) })),
          ),
        );
      },
      dynamodb: async () => {
        await aws.dynamo.send(new DescribeTableCommand({ TableName: config.tables.blocked }));
      },
      [config.lmtp.enabled ? 'lmtp' : 'smtp']: async () => {
        await transports.mailbox.verify();
      },
    }),
  });
  // mailroom_deferred_emails: the queue of waiting mail, from visibility, at most every 15 s.
  const deferredQuery = deferredEmailsQuery(config.taskQueue);
  const refreshDeferred = trackDeferredEmails(async () => (await client.workflow.count(deferredQuery)).count, {
    onError: (err) => log.warn({ err: err.message }, 'mailroom_deferred_emails not refreshed: visibility query failed'),
  });
  const metrics = await startMetricsServer({
    port: config.metricsPort,
    host: config.metricsHost,
    temporalMetricsUrl: `http://${temporalMetrics}/metrics`,
    beforeScrape: refreshDeferred,
  });
  log.info(
    {
      taskQueue: config.taskQueue,
      namespace,
      domains: config.domains,
      healthPort: health.port,
      metricsPort: metrics.port,
      temporalMetrics,
      lmtp: config.lmtp.enabled,
    },
    'worker started',
  );

  try {
    await worker.run(); // resolves after SIGTERM/SIGINT once in-flight tasks are done
  } finally {
    health.server.close();
    metrics.server.close();
    transports.close();
    await client.connection.close();
    await connection.close();
    log.info('worker stopped');
  }
}

const early = serviceArgs(SERVICE);
if (early !== undefined) process.exitCode = early;
else
  main().catch((err) => {
    // A configuration error is the operator's to fix: its message alone, still one JSON line.
    if (err instanceof ConfigError) log.fatal(err.message);
    else log.fatal({ err }, 'worker failed');
    process.exit(1);
  });
