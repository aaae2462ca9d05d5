// Prometheus metrics of the sync worker (its own registry, served on SYNC_METRICS_PORT by
// workers/sync-main.ts): what was skipped, which credentials were refused, and, read from
// PostgreSQL (at most every 10 s, whatever the scrape rate), how many accounts wait for a new
// password or token right now, so an alert fires at once rather than when a sync gives up
// waiting days later.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export const syncRegistry = new Registry();
collectDefaultMetrics({ register: syncRegistry });

export const syncMessagesSkipped = new Counter({
  name: 'mailroom_sync_messages_skipped_total',
  help: 'Messages a sync recorded in sync_errors: kind=data (not stored) or oversize (stored without body)',
  labelNames: ['kind'] as const,
  registers: [syncRegistry],
});

export const syncFolderErrors = new Counter({
  name: 'mailroom_sync_folder_errors_total',
  help: 'Folders a sync run could not sync (recorded in sync_errors; tried again next run)',
  registers: [syncRegistry],
});

export const syncCredentialRejections = new Counter({
  name: 'mailroom_sync_credential_rejections_total',
  help: 'Logins refused for good (password rejected, OAuth2 refresh token revoked or expired): the account needs attention',
  labelNames: ['method'] as const,
  registers: [syncRegistry],
});

export const syncTokenRefreshes = new Counter({
  name: 'mailroom_sync_oauth2_refreshes_total',
  help: 'OAuth2 access token refreshes, by outcome (ok, rejected, error)',
  labelNames: ['outcome'] as const,
  registers: [syncRegistry],
});

export const syncMessageEventsDispatched = new Counter({
  name: 'mailroom_sync_message_events_dispatched_total',
  help: 'New-message event starts by the dispatcher: form=workflow (the application workflow) or webhook (its delivery workflow); outcome=started, duplicate (already started: a second dispatch), failed (left pending for the next call)',
  labelNames: ['form', 'outcome'] as const,
  registers: [syncRegistry],
});

export const syncWebhookDeliveries = new Counter({
  name: 'mailroom_sync_webhook_deliveries_total',
  help: 'Webhook POSTs of new-message events: outcome=delivered, retry (failed attempt, retried with backoff), given_up (refused or failing past SYNC_WEBHOOK_GIVE_UP_SECONDS; recorded in message_events)',
  labelNames: ['outcome'] as const,
  registers: [syncRegistry],
});

/** How old the needs-attention count may be when a scrape serves it. */
export const NEEDS_ATTENTION_MAX_AGE_MS = 10_000;

/**
 * A value read from `read` at most once per `maxAgeMs`, however often it is asked for:
 * scrapes (several Prometheus servers, a dashboard's refresh) cost PostgreSQL at most one
 * query per interval. Concurrent asks share one read. A failed read is tried again at the
 * next ask after the interval; meanwhile the last value is served (none yet: the error).
 */
export function cachedReader(read: () => Promise<number>, maxAgeMs: number): () => Promise<number> {
  let value: number | undefined;
  let failure: unknown;
  let readAt = -Infinity;
  let pending: Promise<number> | undefined;
  const serve = () => {
    if (value === undefined) throw failure;
    return value;
  };
  return async () => {
    if (pending) return pending.catch(serve);
    if (Date.now() - readAt < maxAgeMs) return serve();
    readAt = Date.now();
    pending = read();
    try {
      value = await pending;
    } catch (err) {
      failure = err;
    } finally {
      pending = undefined;
    }
    return serve();
  };
}

let countNeedingAttention: (() => Promise<number>) | undefined;

export const syncAccountsNeedingAttention = new Gauge({
  name: 'mailroom_sync_accounts_needing_attention',
  help: `Accounts whose password or OAuth2 token was refused and that wait for a new one (from PostgreSQL, at most ${NEEDS_ATTENTION_MAX_AGE_MS / 1000} s old)`,
  registers: [syncRegistry],
  async collect() {
    if (countNeedingAttention) this.set(await countNeedingAttention());
  },
});

/**
 * Where the needs-attention gauge reads its value (the worker passes a store query), read at
 * most once per `maxAgeMs` (default 10 s) whatever the scrape rate.
 */
export function setNeedsAttentionSource(count: () => Promise<number>, maxAgeMs = NEEDS_ATTENTION_MAX_AGE_MS): void {
  countNeedingAttention = cachedReader(count, maxAgeMs);
}
