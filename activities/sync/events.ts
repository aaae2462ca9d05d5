// New-message events (docs/account-sync.md "New-message events"): the dispatcher of the
// message_events outbox (lib/sync-store/events.ts) and the webhook delivery's activities.
//
// The dispatcher is not an activity of its own (the sync workflow stays as it is): fetch-new.ts
// calls it after each committed batch and runs.ts in finishSync, so events leave within seconds
// of their batch, and rows a crash left pending go with the next call. It starts, per pending
// event, the application's workflow (SYNC_EVENTS_WORKFLOW_TYPE) and the webhook delivery
// workflow (deliverMessageWebhook), both under ids derived from the message row and with
// REJECT_DUPLICATE: a started, running or closed id is never started again, so dispatching a row
// twice is harmless. It never fails the activity it runs in: what could not be started stays
// pending (counted, logged with the account and event ids) for the next call.
import { Context } from '@temporalio/activity';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type pino from 'pino';
import {
  ERR_WEBHOOK_NO_ACCOUNT,
  ERR_WEBHOOK_REFUSED,
  MESSAGE_NEW,
  MESSAGE_WEBHOOK_WORKFLOW_TYPE,
  messageEventWorkflowId,
  messageWebhookWorkflowId,
  type MessageEvent,
  type MessageWebhookInput,
  type MessageWebhookResult,
} from '../../contracts/message-events';
import { ACCOUNT_ID } from '../../contracts/search-attributes';
import type { MessageEventsConfig } from '../../lib/config/sync';
import { postWebhook } from '../../lib/message-events/webhook-client';
import { syncMessageEventsDispatched, syncWebhookDeliveries } from '../../lib/observability/sync-metrics';
import type { MessageEventRecord, Store } from '../../lib/sync-store';
import type { AccountRef } from './types';

export interface MessageEventDeps {
  store: Store;
  /** Starts the workflows; without it events stay pending (logged once per call). */
  temporal?: Client;
  config: MessageEventsConfig;
  /** The sync task queue: the webhook deliveries run on the sync worker, which holds the secret. */
  taskQueue: string;
  log: pino.Logger;
}

export interface DispatchSummary {
  dispatched: number;
  workflowsStarted: number;
  webhooksStarted: number;
  /** Left pending for the next call (a start failed, or the time was up). */
  pending: boolean;
}

/** One Temporal start may take this long before the dispatcher leaves the rest for later. */
const START_TIMEOUT_MS = 10_000;
const PAGE = 100;
const START_CONCURRENCY = 8;

export function toMessageEvent(e: MessageEventRecord): MessageEvent {
  return {
    type: MESSAGE_NEW,
    eventId: e.id,
    userId: e.userId,
    accountId: e.accountId,
    messageId: e.messageId,
    folder: e.folder,
    occurredAt: e.createdAt.toISOString(),
  };
}

export function createMessageEvents(deps: MessageEventDeps) {
  const { store, config: cfg, log } = deps;

  /**
   * Whether storeMessages records events for accounts without a setting of their own: on when
   * the worker has somewhere to send them and SYNC_EVENTS_ENABLED is not false.
   */
  const eventsByDefault = cfg.enabledByDefault && (cfg.workflowType !== null || cfg.webhookUrl !== null);

  /** Starts a workflow unless its id was ever started (running or closed): 'duplicate' then. */
  async function startOnce(
    client: Client,
    type: string,
    workflowId: string,
    taskQueue: string,
    args: unknown[],
    accountId: string,
  ): Promise<'started' | 'duplicate'> {
    try {
      await client.withDeadline(Date.now() + START_TIMEOUT_MS, () =>
        client.workflow.start(type, {
          workflowId,
          taskQueue,
          args,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
          typedSearchAttributes: [{ key: ACCOUNT_ID, value: accountId }],
        }),
      );
      return 'started';
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return 'duplicate';
      throw err;
    }
  }

  /** Starts one event's workflows: the application's and the webhook delivery, as configured. */
  async function startRow(
    client: Client | undefined,
    row: MessageEventRecord,
    workflowType: string | null,
    webhookUrl: string | null,
    summary: DispatchSummary,
  ): Promise<void> {
    if (!client) return;
    const event = toMessageEvent(row);
    if (workflowType) {
      const started = await startOnce(
        client,
        workflowType,
        messageEventWorkflowId(row.accountId, row.messageId),
        cfg.workflowTaskQueue,
        [event],
        row.accountId,
      );
      syncMessageEventsDispatched.inc({ form: 'workflow', outcome: started });
      if (started === 'started') summary.workflowsStarted++;
    }
    if (webhookUrl) {
      const input: MessageWebhookInput = {
        event,
        retry: {
          initialSeconds: cfg.webhookRetryInitialSeconds,
          maxSeconds: cfg.webhookRetryMaxSeconds,
          giveUpSeconds: cfg.webhookGiveUpSeconds,
          timeoutMs: cfg.webhookTimeoutMs,
        },
      };
      const started = await startOnce(
        client,
        MESSAGE_WEBHOOK_WORKFLOW_TYPE,
        messageWebhookWorkflowId(row.accountId, row.messageId),
        deps.taskQueue,
        [input],
        row.accountId,
      );
      syncMessageEventsDispatched.inc({ form: 'webhook', outcome: started });
      if (started === 'started') summary.webhooksStarted++;
    }
  }

  /**
   * Dispatches the account's pending events, oldest first, until none is left or `deadlineMs`
   * has passed. Never throws: a failure leaves the rest pending and is logged and counted.
   */
  async function dispatch(
    ref: AccountRef,
    options: { deadlineMs?: number; beat?: () => void } = {},
  ): Promise<DispatchSummary> {
    const summary: DispatchSummary = { dispatched: 0, workflowsStarted: 0, webhooksStarted: 0, pending: false };
    const until = Date.now() + (options.deadlineMs ?? 20_000);
    try {
      let settings: Awaited<ReturnType<Store['getEventSettings']>> | undefined;
      for (;;) {
        const page = await store.listPendingEvents(ref.userId, ref.accountId, PAGE);
        if (!page.length) return summary;
        settings ??= await store.getEventSettings(ref.userId, ref.accountId);
        if (!settings) return summary; // the account is gone, and its events with it
        const off = settings.eventsEnabled === false;
        const workflowType = off ? null : cfg.workflowType;
        const webhookUrl = off ? null : (settings.webhookUrl ?? cfg.webhookUrl);
        const client = deps.temporal;
        if ((workflowType || webhookUrl) && !client) {
          log.warn(
            { accountId: ref.accountId },
            'new-message events pending: this worker has no Temporal client to start them',
          );
          summary.pending = true;
          return summary;
        }
        const done: number[] = [];
        const mark = async () => {
          if (!done.length) return;
          summary.dispatched += await store.markEventsDispatched(ref.userId, done.splice(0), {
            workflowStarted: workflowType !== null,
            webhook: webhookUrl !== null,
          });
        };
        try {
          // A few events at a time: one start is a round trip, and an initial sync brings thousands.
          for (let i = 0; i < page.length; i += START_CONCURRENCY) {
            if (Date.now() > until) {
              summary.pending = true;
              return summary;
            }
            const group = page.slice(i, i + START_CONCURRENCY);
            const results = await Promise.allSettled(
              group.map((row) => startRow(client, row, workflowType, webhookUrl, summary)),
            );
            // Those started are marked (in finally); a failed one stays pending and ends this call.
            group.forEach((row, k) => results[k].status === 'fulfilled' && done.push(row.id));
            const failed = results.find((r) => r.status === 'rejected');
            if (failed) throw failed.reason;
            options.beat?.();
          }
        } finally {
          await mark();
        }
        if (page.length < PAGE) return summary;
      }
    } catch (err) {
      summary.pending = true;
      syncMessageEventsDispatched.inc({ form: 'any', outcome: 'failed' });
      log.warn(
        { accountId: ref.accountId, err: err instanceof Error ? err.message : String(err) },
        'new-message events could not all be dispatched; the rest stay pending for the next sync step',
      );
      return summary;
    }
  }

  const activities = {
    /**
     * One POST of a message's webhook, signed with SYNC_WEBHOOK_SECRET. Throws to be retried
     * (5xx, 408, 429, network, timeout: the attempt is recorded on the event first) or, for an
     * answer that will not change (other 4xx, a redirect), non-retryable ERR_WEBHOOK_REFUSED.
     */
    async postMessageWebhook(input: { event: MessageEvent; timeoutMs: number }): Promise<MessageWebhookResult> {
      const { event } = input;
      const attempt = Context.current().info.attempt;
      const settings = await store.getEventSettings(event.userId, event.accountId);
      if (!settings)
        throw ApplicationFailure.nonRetryable(
          `account ${event.accountId} no longer exists: webhook of event ${event.eventId} not sent`,
          ERR_WEBHOOK_NO_ACCOUNT,
        );
      const url = settings.webhookUrl ?? cfg.webhookUrl;
      // The record gets the details (URL without query, the receiver's answer); the error, which
      // enters history, only the status.
      const fail = async (detail: string, summary = detail) => {
        await store.recordWebhookAttempt(event.userId, event.eventId, attempt, detail);
        syncWebhookDeliveries.inc({ outcome: 'retry' });
        return ApplicationFailure.retryable(
          `webhook of event ${event.eventId} (account ${event.accountId}, message ${event.messageId}), attempt ${attempt}: ${summary} (details in message_events.webhook_error)`,
          'WebhookNotDelivered',
        );
      };
      if (!url)
        throw await fail('no webhook URL is configured any more (SYNC_WEBHOOK_URL, or account:set --webhook-url)');
      if (!cfg.webhookSecrets.length)
        throw await fail('SYNC_WEBHOOK_SECRET is not set on the sync worker: webhooks are only sent signed');
      const answer = await postWebhook(url, cfg.webhookSecrets, event, { timeoutMs: input.timeoutMs });
      if (answer.outcome === 'delivered') {
        syncWebhookDeliveries.inc({ outcome: 'delivered' });
        return { eventId: event.eventId, status: 'delivered', httpStatus: answer.status ?? 0, attempt };
      }
      if (answer.outcome === 'refused') {
        await store.recordWebhookAttempt(event.userId, event.eventId, attempt, answer.detail);
        throw ApplicationFailure.nonRetryable(
          `webhook of event ${event.eventId} (account ${event.accountId}) refused: ${answer.summary}; fix the receiver or the URL (details in message_events.webhook_error)`,
          ERR_WEBHOOK_REFUSED,
        );
      }
      throw await fail(answer.detail, answer.summary);
    },

    /** Records the delivery's final outcome on its event (message_events.webhook_status). */
    async recordMessageWebhookOutcome(input: {
      userId: string;
      eventId: number;
      status: 'delivered' | 'failed';
      attempts: number;
      error: string | null;
    }): Promise<void> {
      await store.finishWebhook(input.userId, input.eventId, {
        status: input.status,
        attempts: input.attempts,
        error: input.error,
      });
      if (input.status === 'failed') syncWebhookDeliveries.inc({ outcome: 'given_up' });
    },
  };

  return { eventsByDefault, dispatch, activities };
}

export type MessageEvents = ReturnType<typeof createMessageEvents>;
