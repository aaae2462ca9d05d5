// Configuration of sending (the sendMessage workflow's worker, beside the sync worker in the
// same process, and the outbox front ends), validated like lib/config/sync.ts: a bad value stops
// the process at start with the variable's name. The login and database settings are the sync
// worker's (DATABASE_URL, MAILROOM_SECRET_KEYS, SYNC_OAUTH2_*): sending reuses an account's login.
import { z } from 'zod';
import { SEND_TASK_QUEUE } from '../../contracts/send';
import { parseEnvironment } from './env';
import { parseDuration } from './index';

const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const duration = z
  .string()
  .refine((v) => (parseDuration(v) ?? 0) > 0, 'must be a duration such as 90s, 15m, 1h or 2d')
  .transform((v) => parseDuration(v)!);

const schema = z.object({
  SEND_TASK_QUEUE: z.string().trim().min(1).default(SEND_TASK_QUEUE),
  // Temporary failures (connection errors, 4xx, the OAuth2 provider down) are retried this long
  // after send_at before the message ends failed.
  SEND_MAX_AGE: duration.default(24 * 3600),
  // Longest wait between two attempts (backoff from 10 s, doubling up to this).
  SEND_MAX_RETRY_INTERVAL: duration.default(30 * 60),
  // Submissions per account per minute, across all workers (0 = no limit). Providers throttle
  // or lock accounts that send in bursts; 30/min is below the common limits.
  SEND_RATE_PER_MINUTE: nonNegativeInt.default(30),
  // Largest attachment, per file; the draft is refused naming the file and this limit.
  SEND_MAX_ATTACHMENT_BYTES: positiveInt.default(25 * 1024 * 1024),
  // Most recipients (To, Cc and Bcc together) of one message.
  SEND_MAX_RECIPIENTS: positiveInt.default(100),
  // Attachments given by local path must be inside this directory (unset: any absolute path
  // the worker can read; set it wherever users other than the operator create drafts).
  SEND_ATTACHMENT_DIR: z.string().trim().min(1).optional(),
  SEND_SMTP_CONNECT_TIMEOUT_MS: positiveInt.default(30_000),
  SEND_SMTP_SOCKET_TIMEOUT_MS: positiveInt.default(120_000),
  SEND_MAX_CONCURRENT_ACTIVITIES: positiveInt.default(4),
  // Attachments kept in S3: the same variables as the inbound worker's (lib/config/index.ts).
  AWS_REGION: z.string().trim().min(1).default('us-east-1'),
  AWS_ENDPOINT_URL: z.string().trim().url().optional(),
  AWS_ENDPOINT_URL_S3: z.string().trim().url().optional(),
  S3_FORCE_PATH_STYLE: z.enum(['true', 'false', '1', '0', 'yes', 'no']).optional(),
});

export interface SendConfig {
  taskQueue: string;
  maxAgeSeconds: number;
  maxRetryIntervalSeconds: number;
  ratePerMinute: number;
  maxAttachmentBytes: number;
  maxRecipients: number;
  attachmentDir: string | null;
  smtpConnectTimeoutMs: number;
  smtpSocketTimeoutMs: number;
  maxConcurrentActivities: number;
  /** The S3 client's settings, for attachments kept in S3. */
  s3: { region: string; endpoint: string | undefined; forcePathStyle: boolean };
}

export class SendConfigError extends Error {
  override name = 'SendConfigError';
}

export function loadSendConfig(env: NodeJS.ProcessEnv = process.env): SendConfig {
  const e = parseEnvironment(schema, env, 'mailroom send configuration', SendConfigError);
  return {
    taskQueue: e.SEND_TASK_QUEUE,
    maxAgeSeconds: e.SEND_MAX_AGE,
    maxRetryIntervalSeconds: e.SEND_MAX_RETRY_INTERVAL,
    ratePerMinute: e.SEND_RATE_PER_MINUTE,
    maxAttachmentBytes: e.SEND_MAX_ATTACHMENT_BYTES,
    maxRecipients: e.SEND_MAX_RECIPIENTS,
    attachmentDir: e.SEND_ATTACHMENT_DIR ?? null,
    smtpConnectTimeoutMs: e.SEND_SMTP_CONNECT_TIMEOUT_MS,
    smtpSocketTimeoutMs: e.SEND_SMTP_SOCKET_TIMEOUT_MS,
    maxConcurrentActivities: e.SEND_MAX_CONCURRENT_ACTIVITIES,
    s3: {
      region: e.AWS_REGION,
      endpoint: e.AWS_ENDPOINT_URL_S3 ?? e.AWS_ENDPOINT_URL,
      // Local S3 servers have no virtual-host DNS.
      forcePathStyle:
        e.S3_FORCE_PATH_STYLE === undefined
          ? (e.AWS_ENDPOINT_URL_S3 ?? e.AWS_ENDPOINT_URL) !== undefined
          : ['true', '1', 'yes'].includes(e.S3_FORCE_PATH_STYLE),
    },
  };
}
