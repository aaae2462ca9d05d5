// Loops through a peer that strips our marker header: the same message (by Message-ID,
// sender and subject: see copiesKey) comes back to the same recipient again and again, each
// time as a new S3 object that has travelled further (more Received lines: the peer's and
// SES's). A copy that arrives after MAX_COPIES_PER_HOUR copies with fewer hops, within an
// hour, is such a loop: it stops after a few rounds instead of at the 50-hop limit. Copies
// that did not travel further (the same message sent twice, or by two routes of equal
// length) are not a loop and are delivered.
// Pure: the bookkeeping of one counter item; lib/storage/copies.ts stores it in DynamoDB.
import { createHash } from 'node:crypto';

export const COPY_WINDOW_SECONDS = 3600;

/** One earlier copy: when it arrived (unix seconds) and how many Received lines it had. */
export interface Copy {
  t: number;
  h: number;
}

const hash = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

/** What names one message for the counter: its Message-ID, From address and Subject. */
export interface CopyIdentity {
  messageId: string;
  from?: string;
  subject?: string;
}

/**
 * A Subject as a loop carries it round: reply and forward prefixes (`Fwd:`, `AW:`, ...) and
 * leading `[tags]` that a peer may add on each pass dropped, case and spacing folded.
 */
export function loopSubject(subject: string | undefined): string {
  let s = (subject ?? '').replace(/\s+/g, ' ').trim().toLowerCase();
  for (let before = ''; before !== s;) {
    before = s;
    s = s.replace(/^(?:(?:re|fwd?|aw|wg|sv|vs|tr|rv|antw|doorst)(?:\s*\[\d+\])?\s*:|\[[^\]]{0,40}\])\s*/, '');
  }
  return s;
}

/**
 * The counter's key in the delivery-log table: one item per recipient and message, the
 * message named by its Message-ID together with its From address and Subject. The id alone
 * is the sender's to choose: three forged one-hop copies of someone else's id would make
 * the genuine copy, which travelled further, count as a fourth round. A forger now has to
 * match sender and subject too, and a loop still keeps all three (our forward keeps the
 * Subject and, from its second pass on, the From address: ours). Only our recipient is
 * in clear, as in every delivery-log key; the sender and subject are hashed with the id.
 *
 * Counters written under the earlier key (`copies|recipient|sha256(id)`) are not read: they
 * live one hour, and reading them would count the forged copies this key exists to tell
 * apart, for a second read per recipient on every email. A loop running across the upgrade
 * (or across old and new workers during a rolling one) is counted afresh, so it stops at
 * most MAX_COPIES_PER_HOUR rounds later; the marker header and the hop limit bound it as ever.
 */
export function copiesKey(recipient: string, message: CopyIdentity): string {
  const parts = [message.messageId.trim(), (message.from ?? '').trim().toLowerCase(), loopSubject(message.subject)];
  return `copies2|${recipient.toLowerCase()}|${hash(parts.join('\u0000'), 32)}`;
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
