// The folders an account's IDLE watcher watches besides INBOX (account:set --watch-folders,
// column mail_accounts.watched_folders): which names count. Pure; unit-tested in
// test/unit/watched-folders.test.ts.

/** More would make every poll a long series of STATUS commands; the Schedule covers the rest. */
export const MAX_WATCHED_FOLDERS = 20;

/** Longest folder name accepted (RFC 3501 sets none; servers stop well before this). */
const MAX_NAME = 500;

/** INBOX is always watched, in any case (RFC 3501: INBOX is case-insensitive). */
function isInbox(name: string): boolean {
  return name.toUpperCase() === 'INBOX';
}

/** The stored list as the watcher uses it: trimmed, no INBOX, no repeats, at most MAX_WATCHED_FOLDERS. */
export function watchedFolderList(stored: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of stored) {
    const name = raw.trim();
    if (!name || isInbox(name) || out.includes(name)) continue;
    out.push(name);
    if (out.length === MAX_WATCHED_FOLDERS) break;
  }
  return out;
}

/**
 * The operator's list (`--watch-folders "Archive,Lists/dev"`, or `none`): folder names as the
 * server spells them, separated by commas. Throws a message fit for the command line.
 */
export function parseWatchedFolders(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.toLowerCase() === 'none') return [];
  const names = trimmed
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  for (const n of names) {
    if (n.length > MAX_NAME) throw new Error(`folder name longer than ${MAX_NAME} characters: ${n.slice(0, 40)}...`);
    if ([...n].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
      throw new Error(`folder name with a control character: ${JSON.stringify(n)}`);
  }
  const list = watchedFolderList(names);
  if (names.filter((n) => !isInbox(n)).length > MAX_WATCHED_FOLDERS)
    throw new Error(
      `at most ${MAX_WATCHED_FOLDERS} folders besides INBOX can be watched (the Schedule syncs the rest)`,
    );
  return list;
}
