// Prometheus metrics of mailroom itself. Names follow the existing worker's
// (emails_processed_total by domain and status) so dashboards keep working.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const emailsProcessed = new Counter({
  name: 'emails_processed_total',
  help: 'Inbound emails that reached a terminal state, by domain and status',
  labelNames: ['domain', 'status'] as const,
  registers: [registry],
});

export const recipientDeliveries = new Counter({
  name: 'email_recipient_deliveries_total',
  help: 'Per-recipient delivery attempts to the internal mail server, by outcome',
  labelNames: ['domain', 'outcome', 'protocol'] as const,
  registers: [registry],
});

export const dynamodbRequests = new Counter({
  name: 'dynamodb_requests_total',
  help: 'DynamoDB requests made by activities, by table and operation',
  labelNames: ['table', 'operation'] as const,
  registers: [registry],
});

export const workflowActivations = new Counter({
  name: 'workflow_activations_total',
  help: 'Workflow activations this worker ran (each enters the workflow sandbox; issue 24 counts them per email)',
  registers: [registry],
});

/**
 * Counts a worker's workflow activations into workflowActivations. The SDK has no counter of its
 * own: its in-flight gauge goes up by one as each activation starts (evictions included).
 */
export function countWorkflowActivations(worker: {
  numInFlightActivations$: { subscribe(next: (n: number) => void): unknown };
}): void {
  let last = 0;
  worker.numInFlightActivations$.subscribe((n) => {
    if (n > last) workflowActivations.inc(n - last);
    last = n;
  });
}

export const autoRepliesSent = new Counter({
  name: 'email_autoreplies_total',
  help: 'Out-of-office replies, by result (sent, suppressed, duplicate)',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const emailSize = new Histogram({
  name: 'email_size_bytes',
  help: 'Size of inbound emails fetched from S3',
  buckets: [10e3, 100e3, 1e6, 5e6, 10e6, 25e6, 50e6],
  registers: [registry],
});

export const deferredEmails = new Gauge({
  name: 'mailroom_deferred_emails',
  help: 'Inbound emails waiting for a server to come back (MailStatus deferred, run still open), counted from Temporal visibility at most every 15 s',
  registers: [registry],
});

/** The visibility query mailroom_deferred_emails counts: inbound runs on `taskQueue` waiting as deferred. */
export const deferredEmailsQuery = (taskQueue: string) =>
  `WorkflowType = 'processInboundEmail' AND TaskQueue = '${taskQueue.replaceAll("'", "\\'")}' AND MailStatus = 'deferred' AND ExecutionStatus = 'Running'`;

/**
 * Keeps mailroom_deferred_emails from `count` (a visibility query, workers/main.ts), asked at
 * most once per `ttlMs` however often /metrics is scraped; concurrent scrapes share one query,
 * and a failed query leaves the last value (and is logged by the caller's `onError`).
 */
export function trackDeferredEmails(
  count: () => Promise<number>,
  opts: { ttlMs?: number; now?: () => number; onError?: (err: Error) => void; gauge?: Gauge } = {},
): () => Promise<void> {
  const { ttlMs = 15_000, now = Date.now, onError, gauge = deferredEmails } = opts;
  let last: { at: number; done: Promise<void> } | undefined;
  return () => {
    if (!last || now() - last.at >= ttlMs) {
      const done = count().then(
        (n) => void gauge.set(n),
        (err: Error) => onError?.(err),
      );
      last = { at: now(), done };
    }
    return last.done;
  };
}
