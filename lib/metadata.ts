// S3 audit metadata, in the schema the existing worker writes (processed, processed_at,
// processed_by, status, invalid_inboxes, blocked_sender, blocked_recipients), merged
// over whatever metadata the object already has. S3 caps user metadata at 2 KB (keys
// plus values, UTF-8 bytes) and sends it as HTTP headers, so values are kept ASCII and
// long lists are cut with a count of what was left out.
import type { EmailStatus } from './status';

export const S3_METADATA_LIMIT = 2048;

export interface AuditRecord {
  status: EmailStatus;
  processedAt: number; // unix seconds
  processedBy: string;
  invalidInboxes?: readonly string[];
  blockedSender?: string;
  blockedRecipients?: readonly string[];
  /** Short reason for failed/invalid/oversize outcomes. */
  error?: string;
  /** Delivered recipient count (new key; helps auditing partial deliveries). */
  deliveredCount?: number;
}

const OURS = ['processed', 'processed_at', 'processed_by', 'status', 'invalid_inboxes', 'blocked_sender', 'blocked_recipients', 'error', 'delivered_count'];

export function asciiSafe(value: string): string {
  return value
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
}

function size(meta: Record<string, string>): number {
  return Object.entries(meta).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
}

/** Joins a list into at most `budget` bytes: "a,b,c" or "a,b,...(+3 more)". */
export function fitList(items: readonly string[], budget: number): string {
  const all = items.map(asciiSafe).join(',');
  if (all.length <= budget) return all;
  for (let keep = items.length - 1; keep >= 0; keep--) {
    const head = items.slice(0, keep).map(asciiSafe).join(',');
    const text = `${head}${keep ? ',' : ''}...(+${items.length - keep} more)`;
    if (text.length <= budget) return text;
  }
  return `...(+${items.length} more)`.slice(0, Math.max(0, budget));
}

/**
 * New user metadata for the object: existing keys survive (ours are replaced), and the
 * whole fits S3's limit. Lists and the error text shrink first; other existing keys are
 * never dropped, so if they alone fill the budget the lists get only their counts.
 */
export function buildMetadata(existing: Readonly<Record<string, string>>, record: AuditRecord): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(existing)) if (!OURS.includes(k.toLowerCase())) base[k.toLowerCase()] = v;
  const fixed: Record<string, string> = {
    ...base,
    processed: 'true',
    processed_at: String(Math.floor(record.processedAt)),
    processed_by: asciiSafe(record.processedBy).slice(0, 128),
    status: record.status,
  };
  if (record.deliveredCount !== undefined) fixed.delivered_count = String(record.deliveredCount);
  if (record.blockedSender) fixed.blocked_sender = asciiSafe(record.blockedSender).slice(0, 254);

  const lists: [string, readonly string[] | undefined][] = [
    ['invalid_inboxes', record.invalidInboxes],
    ['blocked_recipients', record.blockedRecipients],
  ];
  const present = lists.filter(([, v]) => v && v.length > 0) as [string, readonly string[]][];
  const errorText = record.error ? asciiSafe(record.error) : undefined;
  const parts = present.length + (errorText ? 1 : 0);
  let remaining = S3_METADATA_LIMIT - size(fixed) - present.reduce((n, [k]) => n + k.length, 0) - (errorText ? 'error'.length : 0);
  const out = { ...fixed };
  // Share what is left fairly; an unused share passes on to the next item.
  const items: [string, (budget: number) => string][] = [
    ...present.map(([k, v]) => [k, (b: number) => fitList(v, b)] as [string, (budget: number) => string]),
    ...(errorText ? [['error', (b: number) => (errorText.length <= b ? errorText : errorText.slice(0, Math.max(0, b - 3)) + '...')] as [string, (budget: number) => string]] : []),
  ];
  items.forEach(([key, render], i) => {
    const share = Math.floor(Math.max(0, remaining) / (parts - i));
    const value = render(share);
    out[key] = value;
    remaining -= value.length;
  });
  return out;
}
