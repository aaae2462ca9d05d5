// S3 audit metadata, in the schema the existing worker writes (processed, processed_at,
// processed_by, status, invalid_inboxes, blocked_sender, blocked_recipients), merged
// over whatever metadata the object already has. S3 caps user metadata at 2 KB (keys
// plus values, UTF-8 bytes) and sends it as HTTP headers, so values are kept ASCII and
// the whole always fits, in this order of priority (first kept, last shortened):
//   1. processed, processed_at, status, processed_by (cut to 64 characters), processed_run
//      (the workflow run that tagged it, so a step it runs again knows its own tag)
//   2. delivered_count, blocked_sender (cut to 254), ses_verdicts
//   3. the object's other metadata, kept whole; when it does not fit, its largest entries
//      are dropped first and their names recorded in metadata_dropped
//   4. invalid_inboxes, blocked_recipients and error share the rest fairly: lists end in
//      "...(+N more)", the error in "..."; each keeps at least room for its count
import { DEFERRED_STATUS, type EmailStatus } from '../../contracts/email-status';

export const S3_METADATA_LIMIT = 2048;

export interface AuditRecord {
  status: EmailStatus;
  processedAt: number; // unix seconds
  processedBy: string;
  /** The workflow run that wrote the tags: a fast-path step run again within that run recognises them (processed_run). */
  processedRun?: string;
  invalidInboxes?: readonly string[];
  blockedSender?: string;
  blockedRecipients?: readonly string[];
  /** Short reason for failed/invalid/oversize outcomes. */
  error?: string;
  /** Delivered recipient count (new key; helps auditing partial deliveries). */
  deliveredCount?: number;
  /** SES receipt verdicts, compact ("spam=PASS virus=PASS spf=PASS dkim=PASS dmarc=PASS"). */
  verdicts?: string;
  /**
   * When the object arrived (unix seconds), written with status `deferred`: tagging rewrites
   * LastModified, and DELIVERY_MAX_AGE counts from the arrival (fetchEmail reads it back).
   */
  arrivedAt?: number;
}

/**
 * Whether a run finished this object (the sweep skips it, fetchEmail answers already_processed).
 * A `deferred` tag is written with processed=false, and is not finished either way: its run
 * is still trying (a trigger meanwhile is refused by the running workflow id), or it ended
 * without finishing, and then a later run must process the object.
 */
export function isProcessed(
  metadata: Readonly<Record<string, string>> | undefined,
): metadata is Readonly<Record<string, string>> {
  return metadata?.processed === 'true' && metadata.status !== DEFERRED_STATUS;
}

const OURS = [
  'processed',
  'processed_at',
  'processed_by',
  'processed_run',
  'status',
  'invalid_inboxes',
  'blocked_sender',
  'blocked_recipients',
  'error',
  'delivered_count',
  'ses_verdicts',
  'metadata_dropped',
  'arrived_at',
];
/** Room each list or error keeps however much other metadata there is: enough for "...(+N more)". */
const MIN_SHARE = 24;

export function asciiSafe(value: string): string {
  return value
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
}

const bytes = (s: string) => Buffer.byteLength(s);

function size(meta: Record<string, string>): number {
  return Object.entries(meta).reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
}

/** Joins a list into at most `budget` bytes: "a,b,c" or "a,b,...(+3 more)". Linear in the list. */
export function fitList(items: readonly string[], budget: number): string {
  const safe = items.map(asciiSafe);
  const all = safe.join(',');
  if (all.length <= budget) return all;
  // Keeping one more item always makes the text longer (an item and a comma outgrow the one
  // digit the count may lose), so the first k that does not fit ends the scan.
  let prefix = 0;
  let best = `...(+${items.length} more)`;
  for (let keep = 1; keep < safe.length; keep++) {
    prefix += safe[keep - 1].length + (keep > 1 ? 1 : 0);
    const length = prefix + 1 + `...(+${items.length - keep} more)`.length;
    if (length > budget) break;
    best = `${safe.slice(0, keep).join(',')},...(+${items.length - keep} more)`;
  }
  return best.length <= budget ? best : best.slice(0, Math.max(0, budget));
}

/**
 * New user metadata for the object: existing keys survive (ours are replaced) as long as
 * they fit, and the whole always fits S3's limit (the priorities are at the top).
 */
export function buildMetadata(existing: Readonly<Record<string, string>>, record: AuditRecord): Record<string, string> {
  const out: Record<string, string> = {
    processed: record.status === DEFERRED_STATUS ? 'false' : 'true',
    processed_at: String(Math.floor(record.processedAt)),
    status: record.status,
    processed_by: asciiSafe(record.processedBy).slice(0, 64),
  };
  if (record.processedRun) out.processed_run = asciiSafe(record.processedRun).slice(0, 64);
  if (record.deliveredCount !== undefined) out.delivered_count = String(record.deliveredCount);
  if (record.blockedSender) out.blocked_sender = asciiSafe(record.blockedSender).slice(0, 254);
  if (record.verdicts) out.ses_verdicts = asciiSafe(record.verdicts).slice(0, 100);
  if (record.arrivedAt !== undefined) out.arrived_at = String(Math.floor(record.arrivedAt));

  const lists: [string, readonly string[]][] = [];
  if (record.invalidInboxes?.length) lists.push(['invalid_inboxes', record.invalidInboxes]);
  if (record.blockedRecipients?.length) lists.push(['blocked_recipients', record.blockedRecipients]);
  const errorText = record.error ? asciiSafe(record.error) : undefined;
  const shares: [string, (budget: number) => string][] = [
    ...lists.map(([k, v]) => [k, (b: number) => fitList(v, b)] as [string, (budget: number) => string]),
    ...(errorText
      ? [
          [
            'error',
            (b: number) => (errorText.length <= b ? errorText : errorText.slice(0, Math.max(0, b - 3)) + '...'),
          ] as [string, (budget: number) => string],
        ]
      : []),
  ];
  const reserved = shares.reduce((n, [k]) => n + bytes(k) + MIN_SHARE, 0);

  // The object's other metadata: whole entries, the largest dropped first when they do not fit.
  const others = Object.entries(existing)
    .map(([k, v]) => [k.toLowerCase(), v] as [string, string])
    .filter(([k]) => !OURS.includes(k));
  let room = S3_METADATA_LIMIT - size(out) - reserved;
  const total = others.reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
  if (total <= room) {
    for (const [k, v] of others) out[k] = v;
  } else {
    const marker = 'metadata_dropped';
    room -= bytes(marker) + 120;
    const bySize = [...others].sort((a, b) => bytes(b[0]) + bytes(b[1]) - (bytes(a[0]) + bytes(a[1])));
    const dropped: string[] = [];
    let kept = total;
    for (const [k, v] of bySize) {
      if (kept <= room) break;
      dropped.push(k);
      kept -= bytes(k) + bytes(v);
    }
    for (const [k, v] of others) if (!dropped.includes(k)) out[k] = v;
    out[marker] = fitList(dropped, 120);
  }

  // Lists and the error share what is left; an unused share passes on to the next item.
  let remaining = S3_METADATA_LIMIT - size(out) - shares.reduce((n, [k]) => n + bytes(k), 0);
  shares.forEach(([key, render], i) => {
    const share = Math.floor(Math.max(0, remaining) / (shares.length - i));
    const value = render(share);
    out[key] = value;
    remaining -= value.length;
  });
  return out;
}
