// Loops through a peer that strips our marker header: the same message (by Message-ID)
// comes back to the same recipient again and again, each time as a new S3 object that has
// travelled further (more Received lines: the peer's and SES's). A copy that arrives after
// MAX_COPIES_PER_HOUR copies with fewer hops, within an hour, is such a loop: it stops after
// a few rounds instead of at the 50-hop limit. Copies that did not travel further (the same
// message sent twice, or by two routes of equal length) are not a loop and are delivered.
// Pure: the bookkeeping of one counter item; lib/storage/copies.ts stores it in DynamoDB.
import { createHash } from 'node:crypto';

export const COPY_WINDOW_SECONDS = 3600;

/** One earlier copy: when it arrived (unix seconds) and how many Received lines it had. */
export interface Copy {
  t: number;
  h: number;
}

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
 * The counter after `object` arrived at `now` with `hops` Received lines: entries older than
 * the window dropped, this object added once (a retried fetch counts once). `rounds` is how
 * many copies in the window came fewer hops before this one.
 */
export function countCopy(
  seen: Readonly<Record<string, Copy>>,
  object: string,
  now: number,
  hops: number,
  windowSeconds = COPY_WINDOW_SECONDS,
): { seen: Record<string, Copy>; rounds: number } {
  const kept: Record<string, Copy> = {};
  for (const [k, c] of Object.entries(seen)) if (c && typeof c.t === 'number' && c.t > now - windowSeconds) kept[k] = c;
  kept[object] ??= { t: now, h: hops };
  const mine = kept[object].h;
  const rounds = Object.entries(kept).filter(([k, c]) => k !== object && c.h < mine).length;
  return { seen: kept, rounds };
}
