// Prometheus metrics of mailroom itself. Names follow the existing worker's
// (emails_processed_total by domain and status) so dashboards keep working.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
