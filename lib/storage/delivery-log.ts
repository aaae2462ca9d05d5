// Which recipients already have a stored email, kept in DynamoDB (table
// `email-delivery-log`), keyed by the S3 object and the recipient. SMTP has no idempotency
// key: when an attempt delivered but its completion never reached Temporal (worker killed,
// Temporal down), the retry would deliver again, and so would any later run for the same
// object (a second trigger under another workflow id, a re-drive). Every delivery reads
// this log first and skips those recipients; `npm run redrive -- --redeliver` is the one
// explicit way to deliver again. Each entry names the run that wrote it (`run`:
// workflowId|runId), so a redeliver run skips only what it delivered itself (its fast-path
// steps run again after a worker died before the workflow task completed) and delivers over
// what earlier runs did, overwriting their entries with its own. What remains is the few
// milliseconds between the server's 250 and the write below (and, as in any MTA, a death
// before the 250 arrives: RFC 1047). A log that cannot be read defers the delivery
// (deliveredBefore throws, the workflow tries again later); one that cannot be written after
// the server's 250 only falls back to at-least-once delivery. Forwards are logged the same way (forwardKey), so a forward
// that was sent but not reported (a fast-path step run again, a lost completion) is not
// sent twice.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { componentLogger } from '../observability/logger';
import { batchGetAll, batchWriteAll } from '../aws/dynamodb';

const log = componentLogger('delivery-log');
const KEEP_SECONDS = 30 * 24 * 3600;

/** The S3 object an email is: `s3://bucket/key`. */
export const objectRef = (bucket: string, key: string) => `s3://${bucket}/${key}`;

/** One object delivered to one recipient, whatever the run. */
export const deliveryKey = (object: string, recipient: string) => `${object}|${recipient.toLowerCase()}`;

/** The run a log entry names: `workflowId|runId`. */
export const runRef = (run: { workflowId: string; runId: string }) => `${run.workflowId}|${run.runId}`;

export interface DeliveredBeforeOptions {
  /**
   * Also read the per-run keys written before the log was per object
   * (`workflowId|runId|recipient`), so a retry in flight across the upgrade does not deliver twice.
   */
  legacyRunKey?: string;
  /**
   * A redeliver run (runRef): count only the entries this run wrote. Entries of earlier runs,
   * and entries that name no run (written before runs were recorded), are what it is meant
   * to deliver over.
   */
  onlyRun?: string;
}

/** The recipients (lower case) that already have `object` (see DeliveredBeforeOptions). */
export async function deliveredBefore(
  dynamo: DynamoDBClient,
  table: string,
  object: string,
  recipients: string[],
  { legacyRunKey, onlyRun }: DeliveredBeforeOptions = {},
): Promise<Set<string>> {
  try {
    const keys = recipients.flatMap((r) => [
      deliveryKey(object, r),
      ...(legacyRunKey ? [`${legacyRunKey}|${r.toLowerCase()}`] : []),
    ]);
    const items = await batchGetAll(dynamo, table, 'pk', keys);
    // A legacy per-run key is this run's by construction; a per-object key counts for a
    // redeliver run only when it names that run.
    const mine = (pk: string, run: unknown) =>
      onlyRun === undefined || run === onlyRun || (legacyRunKey !== undefined && pk.startsWith(`${legacyRunKey}|`));
    const done = new Set(items.filter((i) => mine(String(i.pk), i.run)).map((i) => String(i.pk)));
    return new Set(
      recipients
        .filter(
          (r) => done.has(deliveryKey(object, r)) || (legacyRunKey && done.has(`${legacyRunKey}|${r.toLowerCase()}`)),
        )
        .map((r) => r.toLowerCase()),
    );
  } catch (err) {
    // Delivering without the log could give a recipient a second copy (the first attempt
    // may have delivered before DynamoDB went away): the caller defers instead (issue 21).
    throw new Error(`delivery log ${table} unreadable: ${(err as Error).message}`, { cause: err });
  }
}

/** Logs `recipients` as having `object`, written by `run` (runRef; absent outside a workflow). Overwrites earlier entries. */
export async function recordDelivered(
  dynamo: DynamoDBClient,
  table: string,
  object: string,
  recipients: string[],
  run?: string,
): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const items = recipients.map((r) => ({
    pk: { S: deliveryKey(object, r) },
    delivered_at: { N: String(now) },
    expires_at: { N: String(now + KEEP_SECONDS) },
    ...(run ? { run: { S: run } } : {}),
  }));
  try {
    // One request for all recipients of the attempt (a put each doubled DynamoDB requests per email).
    await batchWriteAll(dynamo, table, items, 4);
  } catch (err) {
    log.warn(
      { table, err: (err as Error).message },
      'delivery not logged: a retry of this attempt could deliver again',
    );
  }
}

/** One object forwarded by one recipient's rule to one address, whatever the run. */
export const forwardKey = (object: string, recipient: string, to: string) =>
  `forward|${object}|${recipient.toLowerCase()}|${to.toLowerCase()}`;

/**
 * Whether this forward was sent before; with `onlyRun` (a redeliver run), only whether that
 * run sent it (entries of earlier runs, or naming no run, do not count). Unreadable log:
 * false (at-least-once, never a lost forward).
 */
export async function forwardedBefore(
  dynamo: DynamoDBClient,
  table: string,
  key: string,
  onlyRun?: string,
): Promise<boolean> {
  try {
    const items = await batchGetAll(dynamo, table, 'pk', [key]);
    return items.some((i) => onlyRun === undefined || i.run === onlyRun);
  } catch (err) {
    log.warn({ table, err: (err as Error).message }, 'forward log unreadable: forwarding (a duplicate is possible)');
    return false;
  }
}

/** Logs a forward as sent by `run` (runRef; absent outside a workflow). Overwrites an earlier entry. */
export async function recordForwarded(dynamo: DynamoDBClient, table: string, key: string, run?: string): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  try {
    await batchWriteAll(
      dynamo,
      table,
      [
        {
          pk: { S: key },
          forwarded_at: { N: String(now) },
          expires_at: { N: String(now + KEEP_SECONDS) },
          ...(run ? { run: { S: run } } : {}),
        },
      ],
      4,
    );
  } catch (err) {
    log.warn({ table, err: (err as Error).message }, 'forward not logged: a retry of this attempt could forward again');
  }
}
