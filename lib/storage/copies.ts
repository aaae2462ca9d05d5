// Stores the per-recipient copy counters of lib/mail/copy-window.ts in the delivery-log table
// (one BatchGetItem and one BatchWriteItem for all recipients of an email). Best effort:
// when DynamoDB cannot be read or written the email is processed as before, and the
// marker header and the hop limit still stop loops.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import {
  COPY_WINDOW_SECONDS,
  type Copy,
  copiesKey,
  type CopyIdentity,
  countCopy,
  objectTag,
} from '../mail/copy-window';
import { componentLogger } from '../observability/logger';
import { batchGetAll, batchWriteAll, writeBehind } from '../aws/dynamodb';

const log = componentLogger('copies');

const unavailable = (table: string) => (err: Error) =>
  log.warn(
    { table, err: err.message },
    'copy counter unavailable: loops are stopped by the marker header and hop limit only',
  );

/**
 * Counts this object for each recipient; returns the recipients for whom it is a further round
 * of a loop (`max` or more copies with fewer hops within the window), with the copy count.
 * `writeBehind`: the counters go out with the next write to the table (the email's delivery log
 * entries, lib/aws/dynamodb.ts writeBehind) instead of a request of their own.
 */
export async function countCopies(
  dynamo: DynamoDBClient,
  table: string,
  input: CopyIdentity & { bucket: string; key: string; hops: number; recipients: string[]; max: number },
  opts: { writeBehind?: boolean } = {},
): Promise<{ recipient: string; count: number }[]> {
  const now = Math.floor(Date.now() / 1000);
  const object = objectTag(input.bucket, input.key);
  const keyOf = new Map(input.recipients.map((r) => [copiesKey(r, input), r]));
  try {
    const items = await batchGetAll(dynamo, table, 'pk', [...keyOf.keys()]);
    const seenBy = new Map(items.map((i) => [String(i.pk), (i.seen ?? {}) as Record<string, Copy>]));
    const over: { recipient: string; count: number }[] = [];
    const writes = [];
    for (const [pk, recipient] of keyOf) {
      const { seen, rounds } = countCopy(seenBy.get(pk) ?? {}, object, now, input.hops);
      if (rounds >= input.max) over.push({ recipient, count: rounds + 1 });
      writes.push(marshall({ pk, seen, expires_at: now + 2 * COPY_WINDOW_SECONDS }));
    }
    if (opts.writeBehind) writeBehind(dynamo, table, 'pk', writes, unavailable(table));
    else await batchWriteAll(dynamo, table, writes, 4);
    return over;
  } catch (err) {
    unavailable(table)(err as Error);
    return [];
  }
}
