// deliverMessageWebhook: one new-message webhook, delivered durably (docs/account-sync.md
// "New-message events"). Started by the sync worker's event dispatcher (activities/sync/events.ts)
// under the id message-webhook/<accountId>/<messageId>, so one message gets one delivery however
// often it is dispatched. The POST is an activity retried with exponential backoff (5xx, 408,
// 429, network errors, timeouts) until giveUpSeconds after the first attempt; an answer that
// will not change (another 4xx, a redirect) ends it at once. Either way the outcome is recorded on
// the event (message_events.webhook_status): a given-up delivery is a failed workflow and a
// 'failed' row, never silently dropped. The input holds ids and numbers only: the URL and the
// secret stay on the worker.
import { ActivityFailure, ApplicationFailure, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type * as activities from '../activities/sync';
import {
  ERR_WEBHOOK_GIVEN_UP,
  ERR_WEBHOOK_NO_ACCOUNT,
  ERR_WEBHOOK_REFUSED,
  type MessageWebhookInput,
  type MessageWebhookResult,
} from '../contracts/message-events';

type Activities = ReturnType<typeof activities.createSyncActivities>;

export async function deliverMessageWebhook(input: MessageWebhookInput): Promise<MessageWebhookResult> {
  const { event, retry } = input;
  const http = proxyActivities<Activities>({
    // One attempt: the POST's own timeout plus time for recording the attempt.
    startToCloseTimeout: `${Math.ceil(retry.timeoutMs / 1000) + 30}s`,
    scheduleToCloseTimeout: `${retry.giveUpSeconds}s`,
    retry: {
      initialInterval: `${retry.initialSeconds}s`,
      backoffCoefficient: 2,
      maximumInterval: `${retry.maxSeconds}s`,
      nonRetryableErrorTypes: [ERR_WEBHOOK_REFUSED, ERR_WEBHOOK_NO_ACCOUNT],
    },
  });
  // Recording the outcome only needs PostgreSQL: retried until it is back.
  const db = proxyActivities<Activities>({
    startToCloseTimeout: '1m',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' },
  });
  const ids = `event ${event.eventId}, account ${event.accountId}, message ${event.messageId}`;
  try {
    const result = await http.postMessageWebhook({ event, timeoutMs: retry.timeoutMs });
    await db.recordMessageWebhookOutcome({
      userId: event.userId,
      eventId: event.eventId,
      status: 'delivered',
      attempts: result.attempt,
      error: null,
    });
    setCurrentDetails(`${ids}: delivered (HTTP ${result.httpStatus}, attempt ${result.attempt})`);
    return result;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const reason = innermostMessage(err);
    const type = err.cause instanceof ApplicationFailure ? err.cause.type : undefined;
    if (type === ERR_WEBHOOK_NO_ACCOUNT) throw ApplicationFailure.nonRetryable(reason, ERR_WEBHOOK_NO_ACCOUNT);
    const why =
      type === ERR_WEBHOOK_REFUSED
        ? reason
        : `not delivered within ${retry.giveUpSeconds} s, given up (last failure: ${reason})`;
    await db.recordMessageWebhookOutcome({
      userId: event.userId,
      eventId: event.eventId,
      status: 'failed',
      attempts: 0,
      error: why,
    });
    throw ApplicationFailure.nonRetryable(
      `Webhook for ${ids} failed: ${why}. Recorded in message_events (webhook_status 'failed'); the application can read the message from its row.`,
      ERR_WEBHOOK_GIVEN_UP,
    );
  }
}

/** The innermost cause's message: a give-up arrives as a timeout whose cause is the last attempt's failure. */
function innermostMessage(err: Error): string {
  let message = err.message;
  for (let c: unknown = err.cause; c instanceof Error; c = c.cause) message = c.message || message;
  return message;
}
