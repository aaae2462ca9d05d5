// Configuration of the SQS bridge (workers/sqs-bridge/main.ts), on top of the shared one in
// lib/config/index.ts. The existing Python worker's variables keep their names and defaults
// (POLL_INTERVAL, MAX_MESSAGES, VISIBILITY_TIMEOUT; queues named `<domain-with-hyphens>-queue`),
// and a bad value stops the bridge at start with the variable's name.
import { z } from 'zod';
import { bucketForDomain, type Config, ConfigError, loadConfig } from './';
import { parseEnvironment } from './env';

const url = z.string().trim().url();
const port = z.coerce.number().int().min(1).max(65535);
const template = z.string().trim().min(1);

const schema = z.object({
  AWS_ENDPOINT_URL: url.optional(),
  // The AWS SDK's own variable for the SQS endpoint; set for a local SQS server (goaws).
  AWS_ENDPOINT_URL_SQS: url.optional(),
  // Queue of each domain: a name, or a full queue URL. {domain} = dots as hyphens, {domain_raw} = as is.
  SQS_QUEUE_TEMPLATE: template.default('{domain}-queue'),
  // Where messages that can never become a workflow go (a name or URL, {domain} allowed). Unset:
  // they stay on their queue, hidden for SQS_POISON_VISIBILITY_TIMEOUT, for the queue's redrive policy.
  SQS_DEAD_LETTER_QUEUE: template.optional(),
  SQS_POISON_VISIBILITY_TIMEOUT: z.coerce.number().int().min(1).max(43200).default(43200),
  // Long-poll wait of each ReceiveMessage, in seconds (SQS allows 0..20); the old worker's name.
  POLL_INTERVAL: z.coerce
    .number()
    .int()
    .min(0, 'must be 0..20 seconds (SQS long polling)')
    .max(20, 'must be 0..20 seconds (SQS long polling)')
    .default(20),
  MAX_MESSAGES: z.coerce
    .number()
    .int()
    .min(1, 'must be 1..10 (SQS receive batch)')
    .max(10, 'must be 1..10 (SQS receive batch)')
    .default(10),
  // Seconds a received message stays hidden: after a crash before DeleteMessage, the
  // notification comes back after this long (and its workflow start is then a no-op).
  VISIBILITY_TIMEOUT: z.coerce.number().int().min(0).max(43200).default(300),
  // Prometheus /metrics of the bridge; unset = no HTTP server.
  SQS_BRIDGE_METRICS_PORT: port.optional(),
});

export interface BridgeQueueConfig {
  /** Queue name or URL, from SQS_QUEUE_TEMPLATE. */
  queue: string;
  /** The domains whose notifications arrive here (one, unless the template has no {domain}). */
  domains: string[];
  /** Dead-letter queue name or URL for this queue's poison messages, if configured. */
  deadLetter?: string;
}

export interface SqsBridgeConfig {
  base: Config;
  sqsEndpoint?: string;
  queueTemplate: string;
  queues: BridgeQueueConfig[];
  deadLetterTemplate?: string;
  pollIntervalSeconds: number;
  maxMessages: number;
  visibilityTimeoutSeconds: number;
  poisonVisibilityTimeoutSeconds: number;
  metricsPort?: number;
  /** Tests only (MAILROOM_TEST_CRASH_AFTER_START=1): the bridge kills itself right after a workflow start, before DeleteMessage. */
  testCrashAfterStart: boolean;
}

/** The queue (name or URL) that carries a domain's SES notifications, as the old worker named it. */
export function queueForDomain(domain: string, tmpl = '{domain}-queue'): string {
  const d = domain.trim().toLowerCase();
  return tmpl.replaceAll('{domain_raw}', d).replaceAll('{domain}', d.replaceAll('.', '-'));
}

/** Whether a configured queue reference is a URL (used as is) rather than a name (looked up). */
export function isQueueUrl(ref: string): boolean {
  return /^https?:\/\//i.test(ref);
}

export function loadSqsConfig(env: NodeJS.ProcessEnv = process.env): SqsBridgeConfig {
  const base = loadConfig(env);
  const e = parseEnvironment(schema, env, 'mailroom SQS bridge configuration', ConfigError);
  if (base.domains.length === 0) throw new ConfigError(`${base.domainsSource}: no domains, so no queues to poll`);

  const queues: BridgeQueueConfig[] = [];
  for (const domain of base.domains) {
    const queue = queueForDomain(domain, e.SQS_QUEUE_TEMPLATE);
    const existing = queues.find((q) => q.queue === queue);
    if (existing) {
      existing.domains.push(domain);
      continue;
    }
    const deadLetter = e.SQS_DEAD_LETTER_QUEUE ? queueForDomain(domain, e.SQS_DEAD_LETTER_QUEUE) : undefined;
    if (deadLetter === queue) throw new ConfigError(`SQS_DEAD_LETTER_QUEUE: ${deadLetter} is the queue itself`);
    queues.push({ queue, domains: [domain], deadLetter });
  }
  // A queue shared by several domains tells the domain by the bucket only: buckets must differ.
  for (const q of queues.filter((x) => x.domains.length > 1)) {
    const buckets = new Set(q.domains.map((d) => bucketForDomain(d, base.bucketTemplate)));
    if (buckets.size < q.domains.length)
      throw new ConfigError(
        `SQS_QUEUE_TEMPLATE: queue ${q.queue} serves ${q.domains.join(', ')}, whose buckets are not distinct (S3_BUCKET_TEMPLATE)`,
      );
  }

  return {
    base,
    sqsEndpoint: e.AWS_ENDPOINT_URL_SQS ?? e.AWS_ENDPOINT_URL,
    queueTemplate: e.SQS_QUEUE_TEMPLATE,
    queues,
    deadLetterTemplate: e.SQS_DEAD_LETTER_QUEUE,
    pollIntervalSeconds: e.POLL_INTERVAL,
    maxMessages: e.MAX_MESSAGES,
    visibilityTimeoutSeconds: e.VISIBILITY_TIMEOUT,
    poisonVisibilityTimeoutSeconds: e.SQS_POISON_VISIBILITY_TIMEOUT,
    metricsPort: e.SQS_BRIDGE_METRICS_PORT,
    testCrashAfterStart: env.MAILROOM_TEST_CRASH_AFTER_START === '1',
  };
}
