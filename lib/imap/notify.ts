// RFC 5465 NOTIFY on an imapflow connection: the server pushes a STATUS response when mail
// arrives in (or leaves) a watched folder other than the selected one, so the IDLE watcher
// learns of it at once instead of at its next STATUS poll. imapflow has no NOTIFY command;
// this uses its command runner (`exec`) and its table of untagged-response handlers, the two
// internals every imapflow command is built on, and falls back (returns false) when either is
// missing, so an imapflow upgrade that changes them costs the push, not the watch.
// test/integration/sync-watch.test.ts proves it against Dovecot.
import type { ImapFlow } from 'imapflow';

interface ImapAttribute {
  type?: string;
  value?: unknown;
}

interface ImapInternals {
  exec?: (command: string, attributes: unknown[]) => Promise<{ next?: () => void }>;
  untaggedHandlers?: Record<string, ((untagged: { attributes?: ImapAttribute[] }) => Promise<void> | void) | null>;
}

/**
 * Folder names NOTIFY is used for: printable ASCII without quotes or backslashes, sent as a
 * quoted string. Others (modified UTF-7, literals) are left to the STATUS poll.
 */
export function notifiableFolder(name: string): boolean {
  return /^[\x20-\x7e]+$/.test(name) && !/["\\]/.test(name);
}

const atom = (value: string) => ({ type: 'ATOM', value });

/**
 * Asks the server to push changes to `folders` (new or expunged mail; STATUS responses) beside
 * the selected mailbox's usual ones, and calls `changed(folder)` for each push. Returns false
 * (nothing set) when the server lacks NOTIFY, refuses the command, a name is not notifiable, or
 * imapflow's internals are not there; throws only when the connection itself failed.
 */
export async function notifyFolders(
  imap: ImapFlow,
  folders: string[],
  changed: (folder: string) => void,
): Promise<boolean> {
  const conn = imap as unknown as ImapInternals;
  if (!folders.length || !imap.capabilities.has('NOTIFY') || !folders.every(notifiableFolder)) return false;
  if (typeof conn.exec !== 'function' || !conn.untaggedHandlers) return false;
  conn.untaggedHandlers.STATUS = (untagged) => {
    // `* STATUS <mailbox> (...)`: a pushed change of a watched folder (a STATUS command's own
    // answer goes to that command's handler, not here).
    const name = untagged.attributes?.[0]?.value;
    if (typeof name === 'string' && folders.includes(name)) changed(name);
  };
  try {
    const response = await conn.exec('NOTIFY', [
      atom('SET'),
      [atom('SELECTED'), [atom('MessageNew'), atom('MessageExpunge'), atom('FlagChange')]],
      [
        atom('MAILBOXES'),
        ...folders.map((f) => ({ type: 'STRING', value: f })),
        [atom('MessageNew'), atom('MessageExpunge')],
      ],
    ]);
    // Hands the parser its next line (imapflow's commands all do this after exec).
    response.next?.();
    return true;
  } catch (err) {
    conn.untaggedHandlers.STATUS = null;
    if (!imap.usable) throw err;
    return false;
  }
}
