// The sending workflow's contract (workflows/sendMessage.ts): one workflow per outbox row, that
// waits until the row's send_at (undo send: the `cancel` signal; `reschedule` moves the time),
// then builds the message once, submits it through the account's SMTP server, appends it to the
// Sent folder and records the outcome in the outbox row (lib/outbox/). Ids and short facts only:
// no address, subject, body or credential crosses this boundary. Imports nothing but
// @temporalio/workflow's definition helpers, which are safe outside a workflow.
import { defineQuery, defineSignal } from '@temporalio/workflow';

/** The workflow's type name, as the server stores it. */
export const SEND_WORKFLOW_TYPE = 'sendMessage';

/**
 * Task queue of the sending worker (SEND_TASK_QUEUE overrides it, lib/config/send.ts). Its own
 * queue, beside the sync worker's in the same process: a backlog of syncs never delays a send
 * whose undo window has passed, and the send activities' concurrency is set on their own.
 */
export const SEND_TASK_QUEUE = 'mailroom-send';

/** Workflow id of an outbox row's send: one workflow per message, so starting it twice is refused. */
export function sendWorkflowId(accountId: string, outboxId: string): string {
  return `send/${accountId}/${outboxId}`;
}

export const SEND_WORKFLOW_PREFIX = 'send/';

/** Tuning knobs; numbers only. Defaults suit production (and the worker's SEND_* settings). */
export interface SendOptions {
  /**
   * How long temporary failures (connection errors, 4xx replies, the OAuth2 provider down) are
   * retried before the message ends `failed`, counted from send_at. Default: the send worker's
   * SEND_MAX_AGE (24 h), so starters need not pass it.
   */
  maxAgeSeconds?: number;
  /** Longest wait between two submission attempts. Default: the worker's SEND_MAX_RETRY_INTERVAL (30 min). */
  maxRetryIntervalSeconds?: number;
  /** First wait after a temporary failure. Default 10 s. */
  initialRetryIntervalSeconds?: number;
}

export interface SendMessageInput {
  userId: string;
  accountId: string;
  outboxId: string;
  options?: SendOptions;
}

/** The outbox row's status (lib/outbox/), also the SendStatus search attribute's value. */
export type OutboxStatus = 'draft' | 'scheduled' | 'sending' | 'sent' | 'partial' | 'failed' | 'cancelled';

/** What the `status` query answers: counts and times, no addresses. */
export interface SendProgress {
  status: OutboxStatus;
  /** When the message goes out (epoch ms); moved by `reschedule`. */
  sendAt: number | null;
  phase: 'waiting' | 'building' | 'submitting' | 'retrying' | 'saving_copy' | 'done';
  attempts: number;
  recipientsAccepted: number;
  recipientsFailed: number;
  recipientsPending: number;
  /** Why it failed, was cancelled or is being retried (server replies, never addresses). */
  reason: string | null;
}

export interface SendResult {
  outboxId: string;
  status: Extract<OutboxStatus, 'sent' | 'partial' | 'failed' | 'cancelled'>;
  recipientsAccepted: number;
  recipientsFailed: number;
  /** Where the Sent copy went, when one was appended. */
  sentFolder: string | null;
  reason: string | null;
}

/** Undo send: honoured until the timer fires (status `sending`); afterwards it is too late and ignored. */
export const cancelSendSignal = defineSignal<[CancelSendSignal?]>('cancel');
export interface CancelSendSignal {
  /** Why, for the outbox row (e.g. "cancelled by the user"). */
  reason?: string;
}

/** Moves the send time of a scheduled message (epoch ms); ignored once sending began. */
export const rescheduleSendSignal = defineSignal<[RescheduleSendSignal]>('reschedule');
export interface RescheduleSendSignal {
  sendAt: number;
}

export const sendStatusQuery = defineQuery<SendProgress>('status');

/** Error types the send activities throw; the workflow and retry policy key on them. */
export const SEND_ERRORS = {
  /** The outbox row or its account is gone. */
  NotFound: 'OutboxNotFound',
  /** The account has no SMTP settings, or the message cannot be built (attachment missing or over the cap). */
  NotSendable: 'OutboxNotSendable',
  /** The SMTP server refused the login (password or token): the account is marked needs_attention. */
  AuthRefused: 'SmtpAuthRefused',
  /** Every remaining recipient was refused for good (5xx). */
  Refused: 'SmtpRefused',
  /** A temporary failure (connection, 4xx, provider down): retried with backoff up to maxAge. */
  Temporary: 'SmtpTemporary',
  /** Sending this message now would exceed the account's rate; retried after the wait it names. */
  RateLimited: 'SendRateLimited',
  /** The Sent copy could not be appended (folder missing): recorded, the send itself stands. */
  SentCopy: 'SentCopyFailed',
  SecretKey: 'SecretKeyError',
} as const;

/** Retry-delay hint of a RateLimited failure (details[0]). */
export interface RateLimitDetails {
  retryAfterMs: number;
}
