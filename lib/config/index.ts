// One validated configuration for every mailroom process (worker, starters, scripts).
// Variable names are those of the existing Python email-worker, so an operator's
// .env keeps working; new variables all have defaults. A bad value stops the process
// at start with the variable's name in the message, never half-way through an email.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_DEFERRAL, type DeferralSettings, INBOUND_TASK_QUEUE } from '../../contracts/inbound';
import { parseEnvironment } from './env';

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no', ''].includes(v), 'must be true or false')
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const port = z.coerce.number().int().min(1).max(65535);
// A port this process listens on: 0 picks a free one (logged at start).
const listenPort = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const url = z.string().trim().url();
const duration = z
  .string()
  .refine((v) => parseDuration(v) !== undefined, 'must be a duration such as 0, 90s, 15m, 1h or 2d')
  .transform((v) => parseDuration(v)!);

const schema = z.object({
  AWS_REGION: z.string().trim().min(1).default('us-east-1'),
  // The AWS SDK's own service-specific endpoint variables; set for local S3/DynamoDB servers.
  AWS_ENDPOINT_URL: url.optional(),
  AWS_ENDPOINT_URL_S3: url.optional(),
  AWS_ENDPOINT_URL_DYNAMODB: url.optional(),
  // SES v2 for outbound mail (a local server such as aws-ses-v2-local in tests and the local stack).
  AWS_ENDPOINT_URL_SESV2: url.optional(),
  S3_FORCE_PATH_STYLE: bool.optional(),
  // How a domain's bucket is named; {domain} is the domain with dots replaced by hyphens.
  S3_BUCKET_TEMPLATE: z
    .string()
    .trim()
    .refine((v) => v.includes('{domain}') || v.includes('{domain_raw}'), 'must contain {domain} or {domain_raw}')
    .default('{domain}-emails'),

  SMTP_HOST: z.string().trim().min(1).default('localhost'),
  SMTP_PORT: port.default(25),
  SMTP_POOL_SIZE: positiveInt.default(5),
  SMTP_USER: z.string().optional(),
  SMTP_PASS: z.string().optional(),
  SMTP_SECURE: bool.default(false),
  // Mail from a forward rule to one of our own domains goes to this port of SMTP_HOST,
  // never back out through SES (which would loop it through S3 again).
  INTERNAL_SMTP_PORT: port.default(2525),
  LMTP_ENABLED: bool.default(false),
  LMTP_HOST: z.string().trim().min(1).default('localhost'),
  LMTP_PORT: port.default(24),

  // Outbound mail (auto-replies, forwards outside our domains): SES in production,
  // or an SMTP relay (local stack, or a smarthost).
  OUTBOUND_TRANSPORT: z.enum(['ses', 'smtp']).default('ses'),
  OUTBOUND_SMTP_HOST: z.string().trim().min(1).default('localhost'),
  OUTBOUND_SMTP_PORT: port.default(587),
  // The relay's own credentials: the internal server's (SMTP_USER) are never sent out.
  OUTBOUND_SMTP_USER: z.string().optional(),
  OUTBOUND_SMTP_PASS: z.string().optional(),
  // STARTTLS is required unless turned off (a relay on loopback, the local stack).
  OUTBOUND_SMTP_REQUIRE_TLS: bool.default(true),
  // SES spam verdict FAIL: deliver marked X-Mailroom-Spam: yes, or quarantine (kept in S3).
  SPAM_ACTION: z.enum(['deliver', 'quarantine']).default('deliver'),
  // Without an envelope, at most this many of our recipients from the headers (above: invalid).
  MAX_HEADER_RECIPIENTS: positiveInt.default(50),
  // A message id reaching the same recipient more often than this within an hour is a loop.
  MAX_COPIES_PER_HOUR: positiveInt.default(3),

  DYNAMODB_BLOCKED_TABLE: z.string().trim().min(1).default('email-blocked-senders'),
  DYNAMODB_RULES_TABLE: z.string().trim().min(1).default('email-rules'),
  DYNAMODB_MESSAGES_TABLE: z.string().trim().min(1).default('ses-outbound-messages'),
  // Remembers which auto-replies were sent (RFC 3834: at most one per sender per period).
  DYNAMODB_AUTOREPLY_TABLE: z.string().trim().min(1).default('email-autoreply-log'),
  AUTOREPLY_INTERVAL_HOURS: positiveInt.default(168),
  // Which recipients each workflow run delivered to, so a retried delivery skips them.
  DYNAMODB_DELIVERY_TABLE: z.string().trim().min(1).default('email-delivery-log'),
  // Where each bucket's last successful sweep is remembered, so the next one lists only newer mail.
  DYNAMODB_SWEEP_TABLE: z.string().trim().min(1).default('mailroom-sweep-state'),

  // The sweep (starters/sweep-domain.ts, the sweepDomain schedule). Objects younger than
  // SWEEP_MIN_AGE are left to the SQS bridge, whose notification carries the envelope
  // recipients (a sweep that started them first would lose those). Each sweep looks at objects
  // modified since the last successful sweep minus SWEEP_OVERLAP (clock skew between us and S3,
  // uploads whose LastModified is their start); with no such sweep, the last SWEEP_FALLBACK_WINDOW.
  SWEEP_MIN_AGE: duration.default(15 * 60),
  SWEEP_OVERLAP: duration.default(3600),
  SWEEP_FALLBACK_WINDOW: duration.default(2 * 86400),

  // Deferral (docs/inbound.md, "When a server is down"): an email whose servers are unavailable
  // waits and is tried again, first after DELIVERY_RETRY_FIRST_DELAY, doubling up to
  // DELIVERY_RETRY_MAX_DELAY (Postfix's maximal_backoff_time, 4000 s), until DELIVERY_MAX_AGE
  // after the object arrived (Postfix's maximal_queue_lifetime, 5 d); then it fails with the
  // last reason. A run continues as new after DELIVERY_ROUNDS_PER_RUN waits.
  DELIVERY_MAX_AGE: duration.default(DEFAULT_DEFERRAL.maxAgeSeconds),
  DELIVERY_RETRY_FIRST_DELAY: duration
    .refine((v) => v > 0, 'must be longer than 0')
    .default(DEFAULT_DEFERRAL.firstDelaySeconds),
  DELIVERY_RETRY_MAX_DELAY: duration
    .refine((v) => v > 0, 'must be longer than 0')
    .default(DEFAULT_DEFERRAL.maxDelaySeconds),
  DELIVERY_ROUNDS_PER_RUN: positiveInt.default(DEFAULT_DEFERRAL.roundsPerRun),

  DOMAINS_FILE: z.string().trim().default('domains.txt'),
  // Alternative to DOMAINS_FILE: a comma-separated list (wins when set).
  DOMAINS: z.string().optional(),
  MAX_MESSAGE_BYTES: positiveInt.default(40 * 1024 * 1024),
  // Messages up to this size take the fast path: every step a local activity, one workflow
  // task per email. Larger ones use regular, heartbeating activities. 0: none takes it.
  FAST_PATH_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(10 * 1024 * 1024),
  // The existing worker deletes blocked mail after tagging it; `keep` leaves it tagged in
  // place so it can be re-driven after a blocklist fix (starters/redrive.ts).
  BLOCKED_MAIL_ACTION: z.enum(['delete', 'keep']).default('delete'),

  // Unset: 8000 and 8080, or free ports (0) with WORKER_PORTS=free. Explicit values win.
  METRICS_PORT: listenPort.optional(),
  HEALTH_PORT: listenPort.optional(),
  // `free`: a second worker on the same machine (a new build next to the old one) needs
  // this one variable; both its ports are picked free and logged at start.
  WORKER_PORTS: z.enum(['fixed', 'free']).default('fixed'),
  // Bind addresses of /metrics and /health; the local stack binds loopback.
  METRICS_HOST: z.string().trim().min(1).default('0.0.0.0'),
  HEALTH_HOST: z.string().trim().min(1).default('0.0.0.0'),
  WORKER_NAME: z.string().trim().min(1).optional(),
  TASK_QUEUE: z.string().trim().min(1).default(INBOUND_TASK_QUEUE),
  // Worker tuning (unset = the Temporal SDK's defaults); see the tuning notes in docs/benchmarks.md.
  WORKER_MAX_CONCURRENT_ACTIVITIES: positiveInt.optional(),
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: positiveInt.optional(),
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export type Env = z.infer<typeof schema>;

export interface Config {
  awsRegion: string;
  s3Endpoint?: string;
  dynamodbEndpoint?: string;
  sesEndpoint?: string;
  s3ForcePathStyle: boolean;
  bucketTemplate: string;
  smtp: { host: string; port: number; poolSize: number; user?: string; pass?: string; secure: boolean };
  internalSmtpPort: number;
  lmtp: { enabled: boolean; host: string; port: number };
  outbound: {
    transport: 'ses' | 'smtp';
    host: string;
    port: number;
    user?: string;
    pass?: string;
    requireTls: boolean;
  };
  safety: { spamAction: 'deliver' | 'quarantine'; maxHeaderRecipients: number; maxCopiesPerHour: number };
  tables: { blocked: string; rules: string; messages: string; autoreply: string; delivery: string; sweep: string };
  /** Seconds. */
  sweep: { minAge: number; overlap: number; fallbackWindow: number };
  autoreplyIntervalHours: number;
  /** Seconds; how long and how often an email whose servers are down is tried again (fetchEmail hands it to the workflow). */
  deferral: DeferralSettings;
  domains: string[];
  domainsSource: string;
  maxMessageBytes: number;
  /** Largest message the workflow handles with local activities (FAST_PATH_MAX_BYTES). */
  fastPathMaxBytes: number;
  blockedMailAction: 'delete' | 'keep';
  metricsPort: number;
  healthPort: number;
  metricsHost: string;
  healthHost: string;
  workerName: string;
  taskQueue: string;
  tuning: { maxConcurrentActivities?: number; maxConcurrentWorkflowTasks?: number; maxCachedWorkflows?: number };
  logLevel: Env['LOG_LEVEL'];
  /** TEMPORAL_METRICS_BIND as given; workers/http.ts validates it (host:port) and picks a default. */
  temporalMetricsBind?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses domains.txt: one domain per line, `#` starts a comment, blank lines ignored. */
export function parseDomains(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*$/, '').trim().toLowerCase();
    if (line && !out.includes(line)) out.push(line);
  }
  return out;
}

/** A duration, "90s", "15m", "1h", "2d" or plain seconds ("0", "900"), in seconds; undefined when it is none. */
export function parseDuration(text: string): number | undefined {
  const m = text
    .trim()
    .toLowerCase()
    .match(/^(\d+)\s*([smhd]?)$/);
  return m ? Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'] : undefined;
}

/** The S3 bucket that SES writes a domain's mail into. */
export function bucketForDomain(domain: string, template = '{domain}-emails'): string {
  const d = domain.trim().toLowerCase();
  return template.replaceAll('{domain_raw}', d).replaceAll('{domain}', d.replaceAll('.', '-'));
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = parseEnvironment(schema, env, 'mailroom configuration', ConfigError);

  let domains: string[];
  let domainsSource: string;
  if (e.DOMAINS) {
    domains = parseDomains(e.DOMAINS.replaceAll(',', '\n'));
    domainsSource = 'DOMAINS';
  } else {
    try {
      domains = parseDomains(readFileSync(e.DOMAINS_FILE, 'utf8'));
    } catch (err) {
      throw new ConfigError(
        `DOMAINS_FILE: cannot read ${e.DOMAINS_FILE} (${(err as Error).message}); create it with one domain per line, or set DOMAINS=example.com,example.org`,
      );
    }
    domainsSource = e.DOMAINS_FILE;
  }
  for (const d of domains) {
    if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/.test(d)) {
      throw new ConfigError(`${domainsSource}: "${d}" is not a domain name`);
    }
  }

  const s3Endpoint = e.AWS_ENDPOINT_URL_S3 ?? e.AWS_ENDPOINT_URL;
  return {
    awsRegion: e.AWS_REGION,
    s3Endpoint,
    dynamodbEndpoint: e.AWS_ENDPOINT_URL_DYNAMODB ?? e.AWS_ENDPOINT_URL,
    sesEndpoint: e.AWS_ENDPOINT_URL_SESV2 ?? e.AWS_ENDPOINT_URL,
    // Local S3 servers have no virtual-host DNS: path style whenever an endpoint is overridden.
    s3ForcePathStyle: e.S3_FORCE_PATH_STYLE ?? s3Endpoint !== undefined,
    bucketTemplate: e.S3_BUCKET_TEMPLATE,
    smtp: {
      host: e.SMTP_HOST,
      port: e.SMTP_PORT,
      poolSize: e.SMTP_POOL_SIZE,
      user: e.SMTP_USER,
      pass: e.SMTP_PASS,
      secure: e.SMTP_SECURE,
    },
    internalSmtpPort: e.INTERNAL_SMTP_PORT,
    lmtp: { enabled: e.LMTP_ENABLED, host: e.LMTP_HOST, port: e.LMTP_PORT },
    outbound: {
      transport: e.OUTBOUND_TRANSPORT,
      host: e.OUTBOUND_SMTP_HOST,
      port: e.OUTBOUND_SMTP_PORT,
      user: e.OUTBOUND_SMTP_USER,
      pass: e.OUTBOUND_SMTP_PASS,
      requireTls: e.OUTBOUND_SMTP_REQUIRE_TLS,
    },
    safety: {
      spamAction: e.SPAM_ACTION,
      maxHeaderRecipients: e.MAX_HEADER_RECIPIENTS,
      maxCopiesPerHour: e.MAX_COPIES_PER_HOUR,
    },
    tables: {
      blocked: e.DYNAMODB_BLOCKED_TABLE,
      rules: e.DYNAMODB_RULES_TABLE,
      messages: e.DYNAMODB_MESSAGES_TABLE,
      autoreply: e.DYNAMODB_AUTOREPLY_TABLE,
      delivery: e.DYNAMODB_DELIVERY_TABLE,
      sweep: e.DYNAMODB_SWEEP_TABLE,
    },
    sweep: { minAge: e.SWEEP_MIN_AGE, overlap: e.SWEEP_OVERLAP, fallbackWindow: e.SWEEP_FALLBACK_WINDOW },
    autoreplyIntervalHours: e.AUTOREPLY_INTERVAL_HOURS,
    deferral: {
      maxAgeSeconds: e.DELIVERY_MAX_AGE,
      firstDelaySeconds: e.DELIVERY_RETRY_FIRST_DELAY,
      maxDelaySeconds: Math.max(e.DELIVERY_RETRY_MAX_DELAY, e.DELIVERY_RETRY_FIRST_DELAY),
      roundsPerRun: e.DELIVERY_ROUNDS_PER_RUN,
    },
    domains,
    domainsSource,
    maxMessageBytes: e.MAX_MESSAGE_BYTES,
    fastPathMaxBytes: e.FAST_PATH_MAX_BYTES,
    blockedMailAction: e.BLOCKED_MAIL_ACTION,
    metricsPort: e.METRICS_PORT ?? (e.WORKER_PORTS === 'free' ? 0 : 8000),
    healthPort: e.HEALTH_PORT ?? (e.WORKER_PORTS === 'free' ? 0 : 8080),
    metricsHost: e.METRICS_HOST,
    healthHost: e.HEALTH_HOST,
    workerName: e.WORKER_NAME ?? `mailroom-${hostname()}`,
    taskQueue: e.TASK_QUEUE,
    tuning: {
      maxConcurrentActivities: e.WORKER_MAX_CONCURRENT_ACTIVITIES,
      maxConcurrentWorkflowTasks: e.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
      maxCachedWorkflows: e.WORKER_MAX_CACHED_WORKFLOWS,
    },
    logLevel: e.LOG_LEVEL,
    temporalMetricsBind: env.TEMPORAL_METRICS_BIND,
  };
}
