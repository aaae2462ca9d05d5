// Whether a mailbox changed while nobody watched it: the IDLE watcher compares what a SELECT
// shows with what it saw last (between two watches) or with what PostgreSQL holds (after a
// start or an outage). Pure decisions, unit-tested in test/unit/mailbox-marks.test.ts.
import type { MailboxMark } from '../../contracts/watch';
import type { FolderState } from '../sync-store/types';

/** What the watcher asks STATUS for: the counters of a mark. */
export const MARK_STATUS_QUERY = { uidNext: true, messages: true, uidValidity: true, highestModseq: true } as const;

/** An answer to MARK_STATUS_QUERY (imapflow's shape). */
export interface MarkStatus {
  uidValidity?: bigint | number;
  uidNext?: number;
  messages?: number;
  highestModseq?: bigint | number;
}

/**
 * A STATUS answer as a mark. Without `fallback`: null when UIDVALIDITY, UIDNEXT or MESSAGES is
 * missing. With `fallback` (the mailbox as its EXAMINE showed it): a missing counter is taken
 * from it, and HIGHESTMODSEQ counts only if EXAMINE had one (CONDSTORE).
 */
export function statusMark(s: MarkStatus, fallback?: MailboxMark): MailboxMark | null {
  if (fallback)
    return {
      uidValidity: s.uidValidity !== undefined ? Number(s.uidValidity) : fallback.uidValidity,
      uidNext: s.uidNext ?? fallback.uidNext,
      exists: s.messages ?? fallback.exists,
      highestModseq:
        fallback.highestModseq !== null && s.highestModseq !== undefined ? s.highestModseq.toString() : null,
    };
  if (s.uidValidity === undefined || s.uidNext === undefined || s.messages === undefined) return null;
  return {
    uidValidity: Number(s.uidValidity),
    uidNext: s.uidNext,
    exists: s.messages,
    highestModseq: s.highestModseq === undefined ? null : s.highestModseq.toString(),
  };
}

/** Something happened since `before` (new mail, deletions, flag changes under CONDSTORE, a recreated mailbox). */
export function markChanged(before: MailboxMark, now: MailboxMark): boolean {
  return (
    before.uidValidity !== now.uidValidity ||
    before.uidNext !== now.uidNext ||
    before.exists !== now.exists ||
    (before.highestModseq ?? null) !== (now.highestModseq ?? null)
  );
}

/**
 * PostgreSQL is behind the server's mailbox: never synced, recreated (UIDVALIDITY), mail beyond
 * the checkpoint (UIDNEXT), a different number of messages (deletions), or a mod-sequence past
 * the stored one (flag changes). Without CONDSTORE, flag changes cannot be seen from here; the
 * Schedule's syncs pick them up.
 */
export function storeBehind(stored: FolderState | null, storedCount: number, now: MailboxMark): boolean {
  if (!stored) return true;
  if (stored.uidValidity !== now.uidValidity) return true;
  if (now.uidNext - 1 > stored.lastUid) return true;
  if (storedCount !== now.exists) return true;
  if (
    now.highestModseq !== null &&
    stored.highestModseq !== null &&
    BigInt(now.highestModseq) > BigInt(stored.highestModseq)
  )
    return true;
  return false;
}
