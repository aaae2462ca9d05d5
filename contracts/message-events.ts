// New-message events (docs/account-sync.md "New-message events"): what an application built on
// synced mail receives for each new message, as the argument of its own workflow (started by the
// sync worker on SYNC_EVENTS_TASK_QUEUE) and as the JSON body of a signed webhook. Ids only:
// an application reads the message itself (messages row `messageId` of user `userId`), so no
// address, subject or body enters Temporal history or leaves in a webhook.

/** The one event type so far. */
export const MESSAGE_NEW = 'messageNew';

export interface MessageEvent {
  type: typeof MESSAGE_NEW;
  /** message_events.id: unique per event, the receiver's deduplication key (delivery is at least once). */
  eventId: number;
  userId: string;
  accountId: string;
  /** messages.id of the new message. */
  messageId: number;
  /** The folder it arrived in (the server's name, as stored). */
  folder: string;
  /** When the message was stored (ISO 8601, UTC). */
  occurredAt: string;
}

/**
 * Workflow id of the application workflow started for a message: one per message row, so a
 * re-sync, a retried activity or a second dispatch never starts it twice.
 */
export function messageEventWorkflowId(accountId: string, messageId: number): string {
  return `message-event/${accountId}/${messageId}`;
}

/** Workflow id of the webhook delivery of a message (deliverMessageWebhook, on the sync task queue). */
export function messageWebhookWorkflowId(accountId: string, messageId: number): string {
  return `message-webhook/${accountId}/${messageId}`;
}

/** Workflow type of the webhook delivery, as the server stores it. */
export const MESSAGE_WEBHOOK_WORKFLOW_TYPE = 'deliverMessageWebhook';

/** How the delivery workflow retries; numbers only (the URL and secret stay on the worker). */
export interface WebhookRetry {
  initialSeconds: number;
  maxSeconds: number;
  /** Give up (webhook_status 'failed') this long after the first attempt. */
  giveUpSeconds: number;
  /** One POST's timeout. */
  timeoutMs: number;
}

export interface MessageWebhookInput {
  event: MessageEvent;
  retry: WebhookRetry;
}

export interface MessageWebhookResult {
  eventId: number;
  status: 'delivered';
  /** HTTP status of the accepted POST. */
  httpStatus: number;
  attempt: number;
}

/** The receiver answered for good (4xx other than 408/429, a redirect): not retried. */
export const ERR_WEBHOOK_REFUSED = 'WebhookRefused';
/** The account is gone: nothing to deliver. */
export const ERR_WEBHOOK_NO_ACCOUNT = 'WebhookAccountGone';
/** The delivery was given up (refused, or failing past giveUpSeconds); recorded in message_events. */
export const ERR_WEBHOOK_GIVEN_UP = 'WebhookGivenUp';
