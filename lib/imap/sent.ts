// The Sent folder side of sending: find a message by its Message-ID (the duplicate check
// before a retried submission, and before appending a copy) and append the copy (\Seen).
// Plain functions over a connected ImapFlow client; the send activities decide when.
import type { ImapFlow } from 'imapflow';

/** Folders that hold sent mail: the configured one first, then any the server marks \Sent (RFC 6154). */
export async function sentFolders(client: ImapFlow, configured: string | null): Promise<string[]> {
  const out = configured ? [configured] : [];
  for (const f of await client.list()) if (f.specialUse === '\\Sent' && !out.includes(f.path)) out.push(f.path);
  return out;
}

/**
 * The first of `folders` that holds a message with this Message-ID (IMAP SEARCH HEADER), or
 * null. A folder that does not exist holds nothing.
 */
export async function findByMessageId(client: ImapFlow, folders: string[], messageId: string): Promise<string | null> {
  for (const folder of folders) {
    let lock;
    try {
      lock = await client.getMailboxLock(folder, { readOnly: true });
    } catch (err) {
      if (isMissingFolder(err)) continue;
      throw err;
    }
    try {
      // Servers match HEADER as a substring; the angle brackets keep it exact enough.
      const uids = await client.search({ header: { 'message-id': messageId } }, { uid: true });
      if (uids && uids.length > 0) return folder;
    } finally {
      lock.release();
    }
  }
  return null;
}

/** Appends the copy with \Seen, creating the folder when the server says it does not exist. */
export async function appendSentCopy(client: ImapFlow, folder: string, raw: Buffer, date: Date): Promise<void> {
  try {
    await client.append(folder, raw, ['\\Seen'], date);
  } catch (err) {
    if (!isMissingFolder(err)) throw err;
    await client.mailboxCreate(folder);
    await client.append(folder, raw, ['\\Seen'], date);
  }
}

function isMissingFolder(err: unknown): boolean {
  const e = err as { serverResponseCode?: string; responseText?: string; mailboxMissing?: boolean } | null;
  return (
    e?.mailboxMissing === true ||
    e?.serverResponseCode === 'NONEXISTENT' ||
    e?.serverResponseCode === 'TRYCREATE' ||
    /doesn't exist|does not exist|not found|no such/i.test(e?.responseText ?? '')
  );
}
