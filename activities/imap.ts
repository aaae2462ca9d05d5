// IMAP access for account sync (imapflow). Plain functions over a connected ImapFlow client;
// the sync activities decide what to do with the results. Folders are always opened
// read-only (EXAMINE): syncing must never change \Seen or anything else on the server.
import { ImapFlow, type FetchMessageObject, type ImapFlowOptions, type MessageAddressObject } from 'imapflow';
import type { NewMessage, FlagChange } from './store';

export interface ImapEndpoint {
  host: string;
  port: number;
  tls: boolean;
  user: string;
}

export interface ImapTimeouts {
  connectTimeoutMs: number;
  socketTimeoutMs: number;
}

export interface FolderInfo {
  path: string;
  specialUse: string | null;
}

export interface SelectedFolder {
  uidValidity: number;
  uidNext: number;
  exists: number;
  /** Decimal string, or null when the server keeps no mod-sequences (no CONDSTORE). */
  highestModseq: string | null;
}

/** Where a message lives on the server, as an RFC 5092 IMAP URL. */
export function imapUrl(endpoint: ImapEndpoint, folder: string, uidValidity: number, uid: number): string {
  const port = endpoint.port === (endpoint.tls ? 993 : 143) ? '' : `:${endpoint.port}`;
  const path = folder.split('/').map(encodeURIComponent).join('/');
  return `imap://${encodeURIComponent(endpoint.user)}@${endpoint.host}${port}/${path};UIDVALIDITY=${uidValidity}/;UID=${uid}`;
}

export function describeEndpoint(e: ImapEndpoint): string {
  return `${e.user}@${e.host}:${e.port}${e.tls ? ' (TLS)' : ''}`;
}

/** True when the server refused the credentials (as opposed to being unreachable). */
export function isAuthenticationFailure(err: unknown): boolean {
  const e = err as { authenticationFailed?: boolean; serverResponseCode?: string; name?: string } | null;
  if (!e) return false;
  return e.authenticationFailed === true || e.name === 'AuthenticationFailure' || e.serverResponseCode === 'AUTHENTICATIONFAILED';
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'NoConnection',
  'EConnectionClosed',
  'CONNECT_TIMEOUT',
  'GREETING_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'ETIMEOUT',
  'ETHROTTLE',
  'ClosedAfterConnectText',
  'ClosedAfterConnectTLS',
]);

/** Network failures and server timeouts: worth retrying with backoff. */
export function isTransientImapError(err: unknown): boolean {
  const e = err as { code?: string; serverResponseCode?: string } | null;
  if (!e) return false;
  if (e.code && TRANSIENT_CODES.has(e.code)) return true;
  // RFC 5530 codes for "try again later".
  return e.serverResponseCode === 'UNAVAILABLE' || e.serverResponseCode === 'INUSE' || e.serverResponseCode === 'LIMIT';
}

/** The server's words for an error, without anything that could echo a credential. */
export function imapErrorText(err: unknown): string {
  const e = err as { responseText?: string; response?: unknown; message?: string; code?: string } | null;
  if (!e) return 'unknown error';
  const e2 = e as { serverResponseCode?: string };
  let text = (e.responseText || (typeof e.response === 'string' ? e.response : '') || e.message || String(err)).trim().replace(/\.$/, '');
  if (e2.serverResponseCode && !text.includes(e2.serverResponseCode)) text = `[${e2.serverResponseCode}] ${text}`;
  return e.code && !text.includes(e.code) ? `${text} (${e.code})` : text;
}

export async function connectImap(endpoint: ImapEndpoint, password: string, timeouts: ImapTimeouts, onError?: (err: Error) => void): Promise<ImapFlow> {
  const options: ImapFlowOptions = {
    host: endpoint.host,
    port: endpoint.port,
    secure: endpoint.tls,
    auth: { user: endpoint.user, pass: password },
    logger: false,
    // A sync runs commands back to back; an IDLE between them only costs round trips.
    disableAutoIdle: true,
    connectionTimeout: timeouts.connectTimeoutMs,
    greetingTimeout: Math.min(timeouts.connectTimeoutMs, 30_000),
    socketTimeout: timeouts.socketTimeoutMs,
    clientInfo: { name: 'mailroom-sync' },
  };
  const client = new ImapFlow(options);
  // Without a listener, a socket error after connect() would be an unhandled 'error' event
  // and take the whole worker down; the failing command rejects anyway.
  client.on('error', (err: Error) => onError?.(err));
  await client.connect();
  return client;
}

export async function closeImap(client: ImapFlow): Promise<void> {
  try {
    await client.logout();
  } catch {
    client.close();
  }
}

/** Folders that can hold messages (skips \Noselect containers and \NonExistent entries). */
export async function listFolders(client: ImapFlow): Promise<FolderInfo[]> {
  const list = await client.list();
  return list
    .filter((f) => !f.flags.has('\\Noselect') && !f.flags.has('\\NonExistent'))
    .map((f) => ({ path: f.path, specialUse: f.specialUse ?? null }))
    .sort((a, b) => (a.path === 'INBOX' ? -1 : b.path === 'INBOX' ? 1 : a.path.localeCompare(b.path)));
}

export async function examineFolder(client: ImapFlow, path: string): Promise<SelectedFolder> {
  const box = await client.mailboxOpen(path, { readOnly: true });
  return {
    uidValidity: Number(box.uidValidity),
    uidNext: box.uidNext,
    exists: box.exists,
    highestModseq: box.highestModseq !== undefined && !box.noModseq ? box.highestModseq.toString() : null,
  };
}

/** A compact UID set for a command: [1,2,3,7] -> "1:3,7". */
export function uidSet(uids: number[]): string {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i];
    while (i + 1 < sorted.length && sorted[i + 1] === sorted[i] + 1) i++;
    parts.push(start === sorted[i] ? String(start) : `${start}:${sorted[i]}`);
  }
  return parts.join(',');
}

/** UIDs in `range` (a UID set such as "1:500"), ascending. */
export async function searchUids(client: ImapFlow, range: string): Promise<number[]> {
  if (!client.mailbox || (client.mailbox as { exists: number }).exists === 0) return [];
  const found = await client.search({ uid: range }, { uid: true });
  if (!found) return [];
  return [...found].sort((a, b) => a - b);
}

/** UIDs above `lastUid`. ("n:*" always includes the highest UID, even when it is below n.) */
export async function uidsAfter(client: ImapFlow, lastUid: number): Promise<number[]> {
  return (await searchUids(client, `${lastUid + 1}:*`)).filter((u) => u > lastUid);
}

function cleanFlags(flags: Set<string> | undefined): string[] {
  // \Recent belongs to one IMAP session, not to the message.
  return [...(flags ?? [])].filter((f) => f !== '\\Recent').sort();
}

/** Current flags of messages in a UID range; with `changedSince` only those changed after that mod-sequence. */
export async function fetchFlags(client: ImapFlow, range: string, changedSince?: string, onProgress?: () => void): Promise<FlagChange[]> {
  const out: FlagChange[] = [];
  const options = changedSince ? { uid: true, changedSince: BigInt(changedSince) } : { uid: true };
  for await (const m of client.fetch(range, { uid: true, flags: true }, options)) {
    out.push({ uid: m.uid, flags: cleanFlags(m.flags), modseq: m.modseq !== undefined ? m.modseq.toString() : null });
    if (out.length % 500 === 0) onProgress?.();
  }
  return out;
}

function address(a: MessageAddressObject | undefined): string | null {
  if (!a?.address) return null;
  return a.name ? `${a.name} <${a.address}>` : a.address;
}

function toDate(value: Date | string | undefined): Date | null {
  if (!value) return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export interface FetchedMessage extends NewMessage {
  size: number;
}

/**
 * Fetches metadata for `uids` and the raw source of those not larger than maxMessageBytes,
 * stopping once the batch holds batchMaxBytes of raw source (at least one message is
 * always taken). Returns what was fetched; UIDs the server expunged meanwhile are absent.
 */
export async function fetchMessages(
  client: ImapFlow,
  endpoint: ImapEndpoint,
  folder: string,
  uidValidity: number,
  uids: number[],
  limits: { maxMessageBytes: number; batchMaxBytes: number },
  onMessage?: () => void,
): Promise<{ messages: FetchedMessage[]; coveredUpTo: number }> {
  if (!uids.length) return { messages: [], coveredUpTo: 0 };
  const meta = new Map<number, FetchMessageObject>();
  for await (const m of client.fetch(uidSet(uids), { uid: true, flags: true, envelope: true, internalDate: true, size: true }, { uid: true })) {
    meta.set(m.uid, m);
    onMessage?.();
  }
  // Take a prefix of the batch that fits the byte budget.
  const taken: number[] = [];
  let bytes = 0;
  for (const uid of uids) {
    const size = meta.get(uid)?.size ?? 0;
    const rawBytes = size <= limits.maxMessageBytes ? size : 0;
    if (taken.length > 0 && bytes + rawBytes > limits.batchMaxBytes) break;
    taken.push(uid);
    bytes += rawBytes;
  }
  const wantSource = taken.filter((uid) => meta.has(uid) && (meta.get(uid)?.size ?? 0) <= limits.maxMessageBytes);
  const sources = new Map<number, Buffer>();
  if (wantSource.length) {
    for await (const m of client.fetch(uidSet(wantSource), { uid: true, source: true }, { uid: true })) {
      if (m.source) sources.set(m.uid, m.source);
      onMessage?.();
    }
  }
  const messages: FetchedMessage[] = [];
  for (const uid of taken) {
    const m = meta.get(uid);
    if (!m) continue; // expunged between SEARCH and FETCH
    const env = m.envelope;
    messages.push({
      uid,
      messageId: env?.messageId ?? null,
      from: address(env?.from?.[0]),
      to: (env?.to ?? []).map((a) => a.address).filter((a): a is string => !!a),
      subject: env?.subject ?? null,
      sentAt: toDate(env?.date),
      internalDate: toDate(m.internalDate),
      flags: cleanFlags(m.flags),
      modseq: m.modseq !== undefined ? m.modseq.toString() : null,
      size: m.size ?? 0,
      raw: sources.get(uid) ?? null,
      rawRef: imapUrl(endpoint, folder, uidValidity, uid),
    });
  }
  return { messages, coveredUpTo: taken[taken.length - 1] };
}
