// Which stored emails an operator's re-drive selects: by status and by the time the
// earlier run tagged them (processed_at), e.g. "everything blocked yesterday".
import { isProcessed } from '../mail/metadata';

export interface Selection {
  statuses?: string[];
  /** unix seconds, inclusive */
  since?: number;
  /** unix seconds, exclusive */
  until?: number;
  /** Also select objects no run has tagged yet. */
  includeUnprocessed?: boolean;
}

export function selects(metadata: Readonly<Record<string, string>> | undefined, sel: Selection): boolean {
  const m = metadata ?? {};
  // A deferred email's run is still trying (or ended without finishing): not processed.
  if (!isProcessed(m)) return sel.includeUnprocessed === true;
  if (sel.statuses?.length && !sel.statuses.includes(m.status ?? '')) return false;
  const at = Number(m.processed_at);
  if (sel.since !== undefined && !(at >= sel.since)) return false;
  if (sel.until !== undefined && !(at < sel.until)) return false;
  return true;
}

/**
 * "2026-11-22", "2026-11-22T10:00:00Z", "24h", "7d", "now", "yesterday", "today" → unix seconds.
 * Relative forms count back from `now`; dates without a time are UTC midnight, and so are
 * today and yesterday; an ISO time without a zone is UTC. Anything else is refused, not
 * guessed (Date.parse would read "Nov 22" as 2001).
 */
export function parseTime(text: string, now: Date = new Date()): number {
  const t = text.trim().toLowerCase();
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) / 1000;
  // Not rounded down: `--until now` must include what was tagged a moment ago.
  if (t === 'now') return now.getTime() / 1000;
  if (t === 'today') return midnight;
  if (t === 'yesterday') return midnight - 86400;
  const rel = t.match(/^(\d+)\s*(m|h|d)$/);
  if (rel)
    return Math.floor(now.getTime() / 1000) - Number(rel[1]) * { m: 60, h: 3600, d: 86400 }[rel[2] as 'm' | 'h' | 'd'];
  const iso = t.match(/^(\d{4}-\d{2}-\d{2})(?:[t ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(z|[+-]\d{2}:?\d{2})?)?$/);
  const ms = iso ? Date.parse(`${iso[1]}T${iso[2] ?? '00:00:00'}${iso[3] ?? 'Z'}`.toUpperCase()) : NaN;
  if (Number.isNaN(ms))
    throw new Error(
      `cannot read the time "${text}": use 2026-11-22, 2026-11-22T10:00:00Z, 30m, 24h, 7d, now, today or yesterday`,
    );
  return Math.floor(ms / 1000);
}
