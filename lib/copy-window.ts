// Loops through a peer that strips our marker header: the same message (by Message-ID)
// comes back to the same recipient again and again, each time as a new S3 object. Counting
// the objects that carried a message id to a recipient within an hour stops such a loop
// after a few rounds (MAX_COPIES_PER_HOUR) instead of the 50-hop limit. Pure: the
// bookkeeping of one counter item; activities/copies.ts stores it in DynamoDB.
import { createHash } from 'node:crypto';

export const COPY_WINDOW_SECONDS = 3600;

const hash = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

/** The counter's key in the delivery-log table: one item per recipient and message id. */
export function copiesKey(recipient: string, messageId: string): string {
  return `copies|${recipient.toLowerCase()}|${hash(messageId.trim(), 32)}`;
}

/** A short, stable name for an S3 object inside the counter. */
export function objectTag(bucket: string, key: string): string {
  return hash(`${bucket}/${key}`, 16);
}

/**
 * The counter after `object` arrived at `now` (unix seconds): entries older than the window
 * dropped, this object added once (a retried fetch of the same object counts once).
 */
export function countCopy(seen: Readonly<Record<string, number>>, object: string, now: number, windowSeconds = COPY_WINDOW_SECONDS): { seen: Record<string, number>; count: number } {
  const kept: Record<string, number> = {};
  for (const [k, t] of Object.entries(seen)) if (typeof t === 'number' && t > now - windowSeconds) kept[k] = t;
  kept[object] ??= now;
  return { seen: kept, count: Object.keys(kept).length };
}
