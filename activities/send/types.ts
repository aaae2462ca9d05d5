// What the send activities share: their injected dependencies and the short facts they return
// to the sendMessage workflow (ids, counts, times and server replies; never addresses or bodies).
import type { S3Client } from '@aws-sdk/client-s3';
import type { Pool } from 'pg';
import type pino from 'pino';
import type { OutboxStatus } from '../../contracts/send';
import type { SendConfig } from '../../lib/config/send';
import type { Keyring } from '../../lib/sync-store/crypto';

export interface SendActivityDeps {
  pool: Pool;
  keyring: Keyring;
  config: Pick<
    SendConfig,
    | 'ratePerMinute'
    | 'maxAgeSeconds'
    | 'maxRetryIntervalSeconds'
    | 'maxAttachmentBytes'
    | 'maxRecipients'
    | 'attachmentDir'
    | 'smtpConnectTimeoutMs'
    | 'smtpSocketTimeoutMs'
  > & {
    imapConnectTimeoutMs?: number;
    imapSocketTimeoutMs?: number;
    oauth2RefreshMarginMs?: number;
    oauth2TimeoutMs?: number;
  };
  /** For attachments kept in S3 (s3Bucket/s3Key); without it such a message fails saying so. */
  s3?: S3Client;
  logger?: pino.Logger;
}

export interface SendRef {
  userId: string;
  accountId: string;
  outboxId: string;
}

/** The outbox row as the workflow needs it. */
export interface SendState {
  status: OutboxStatus;
  /** Epoch ms; null for a draft. */
  sendAt: number | null;
  recipients: number;
  reason: string | null;
}

/** The worker's retry limits (SEND_MAX_AGE, SEND_MAX_RETRY_INTERVAL), for a workflow whose input sets none. */
export interface SendLimits {
  maxAgeSeconds: number;
  maxRetryIntervalSeconds: number;
}

export interface BuildResult {
  bytes: number;
  attachments: number;
}

export interface SubmitResult {
  /** Recipients with each verdict so far (all attempts). */
  accepted: number;
  failed: number;
  /** Still to be submitted (deferred, or the attempt's outcome is unknown). */
  pending: number;
  /** Why the pending ones wait (a 4xx reply, a connection error), or null. */
  retryReason: string | null;
  /** Wait at least this long before the next attempt (the account's send rate). */
  retryAfterMs: number | null;
  /** How an attempt left open by a crash was resolved: found in the Sent folder, or submitted again. */
  recovery: 'found_in_sent' | 'resubmitted' | null;
  /** The server accepted the message in this call (or it was found in Sent). */
  acceptedNow: boolean;
}

export interface SentCopyResult {
  /** Where the copy is, or null when the account keeps none (sent_folder unset). */
  folder: string | null;
  /** false: it was there already (a retry, or the provider saved it). */
  appended: boolean;
}
