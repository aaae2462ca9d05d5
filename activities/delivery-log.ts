// Which recipients a workflow run already delivered to, kept in DynamoDB (table
// `email-delivery-log`). SMTP has no idempotency key: when an attempt delivered but its
// completion never reached Temporal (worker killed, Temporal down), the retry would deliver
// again. The retry reads this log first and skips those recipients. What remains is the
// few milliseconds between the server's 250 and the write below (and, as in any MTA, a death
// before the 250 arrives: RFC 1047). Failing to read or write the log only falls back to
// at-least-once delivery; it never fails a delivery.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { componentLogger } from '../lib/logger';
import { batchGetAll, batchWriteAll } from './dynamodb';

const log = componentLogger('delivery-log');
const KEEP_SECONDS = 30 * 24 * 3600;

/** One run's delivery to one recipient; a re-drive is a new run and delivers again. */
export const deliveryKey = (runKey: string, recipient: string) => `${runKey}|${recipient.toLowerCase()}`;

export async function deliveredBefore(dynamo: DynamoDBClient, table: string, runKey: string, recipients: string[]): Promise<Set<string>> {
  try {
    const items = await batchGetAll(dynamo, table, 'pk', recipients.map((r) => deliveryKey(runKey, r)));
    const done = new Set(items.map((i) => String(i.pk)));
    return new Set(recipients.filter((r) => done.has(deliveryKey(runKey, r))).map((r) => r.toLowerCase()));
  } catch (err) {
    log.warn({ table, err: (err as Error).message }, 'delivery log unreadable: retrying every recipient (a duplicate is possible)');
    return new Set();
  }
}

export async function recordDelivered(dynamo: DynamoDBClient, table: string, runKey: string, recipients: string[]): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const items = recipients.map((r) => ({ pk: { S: deliveryKey(runKey, r) }, delivered_at: { N: String(now) }, expires_at: { N: String(now + KEEP_SECONDS) } }));
  try {
    // One request for all recipients of the attempt (a put each doubled DynamoDB requests per email).
    await batchWriteAll(dynamo, table, items, 4);
  } catch (err) {
    log.warn({ table, err: (err as Error).message }, 'delivery not logged: a retry of this attempt could deliver again');
  }
}
