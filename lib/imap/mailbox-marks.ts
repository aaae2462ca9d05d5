// Whether a mailbox changed while nobody watched it: the IDLE watcher compares what a SELECT
// shows with what it saw last (between two watches) or with what PostgreSQL holds (after a
// start or an outage). Pure decisions, unit-tested in test/unit/mailbox-marks.test.ts.
import type { MailboxMark } from '../../contracts/watch';
import type { FolderState } from '../sync-store/types';

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
