// IMAP access for account sync (imapflow). Plain functions over a connected ImapFlow client;
// the sync activities decide what to do with the results. Folders are always opened
// read-only (EXAMINE): syncing must never change \Seen or anything else on the server.
import { ImapFlow, type FetchMessageObject, type ImapFlowOptions, type MessageAddressObject } from 'imapflow';
import {
  cleanOptionalText,
  cleanText,
  FIELD_LIMITS,
  storableBigint,
  storableDate,
  storableInt32,
} from '../sync-store/storable';
import { isRecentFlag } from '../sync-store/flags';
import type { NewMessage, FlagChange } from '../sync-store';
import { isImapAuthFailure } from './sync-errors';
import { folderKey, serverText } from './server-text';

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

/** How a sync logs in: a password (LOGIN/PLAIN) or an OAuth2 access token (OAUTHBEARER/XOAUTH2). */
export type ImapAuth = { password: string } | { accessToken: string };

/**
 * The largest line a server may send without a literal: a UID SEARCH answer for two million
 * messages fits. imapflow's own default is 1 GiB, i.e. no bound on memory at all.
 */
export const MAX_IMAP_LINE_BYTES = 16 * 1024 * 1024;
/** Parse-tree nodes per response; a FETCH answer has a few dozen, SEARCH answers are not tokenized. */
export const MAX_IMAP_RESPONSE_TOKENS = 100_000;

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

/**
 * Where a message lives on the server, as an RFC 5092 IMAP URL. A folder name with an unpaired
 * surrogate (modified UTF-7 such as `&2AA-`) cannot be percent-encoded (URIError): it is
 * written with U+FFFD, as the folder is stored (a NUL likewise).
 */
export function imapUrl(endpoint: ImapEndpoint, folder: string, uidValidity: number, uid: number): string {
  const port = endpoint.port === (endpoint.tls ? 993 : 143) ? '' : `:${endpoint.port}`;
  const path = folderKey(folder).split('/').map(encodeURIComponent).join('/');
  return `imap://${encodeURIComponent(endpoint.user)}@${endpoint.host}${port}/${path};UIDVALIDITY=${uidValidity}/;UID=${uid}`;
}

export function describeEndpoint(e: ImapEndpoint): string {
  return `${e.user}@${e.host}:${e.port}${e.tls ? ' (TLS)' : ''}`;
}

/** True when the server refused the credentials (as opposed to being unreachable). */
export const isAuthenticationFailure = isImapAuthFailure;

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

/**
 * The server's words for an error, without anything that could echo a credential, as one
 * printable line (a NO text may carry a NUL or escape sequences: lib/imap/server-text.ts).
 */
export function imapErrorText(err: unknown): string {
  return serverText(rawImapErrorText(err), 1000);
}

function rawImapErrorText(err: unknown): string {
  const e = err as { responseText?: string; response?: unknown; message?: string; code?: string } | null;
  if (!e) return 'unknown error';
  const e2 = e as { serverResponseCode?: string };
  let text = (e.responseText || (typeof e.response === 'string' ? e.response : '') || e.message || String(err))
    .trim()
    .replace(/\.$/, '');
  if (e2.serverResponseCode && !text.includes(e2.serverResponseCode)) text = `[${e2.serverResponseCode}] ${text}`;
  return e.code && !text.includes(e.code) ? `${text} (${e.code})` : text;
}

/**
 * Connects and logs in. With `maxMessageBytes`, no literal (a message body, a header value)
 * larger than that and no response much larger is accepted: the server's size claims are not
 * trusted, imapflow refuses the literal at its announcement (error code LiteralTooLarge) before
 * reading its bytes. Without it imapflow accepts literals of up to 1 GiB.
 */
const connectionErrors = new WeakMap<ImapFlow, Error>();

/**
 * The error that ended the connection, as imapflow reported it. A refused literal
 * (LiteralTooLarge) closes the connection and the command in flight then fails with a plain
 * "Connection not available": this is where the real reason is.
 */
export function connectionError(client: ImapFlow): Error | undefined {
  return connectionErrors.get(client);
}

export async function connectImap(
  endpoint: ImapEndpoint,
  auth: string | ImapAuth,
  timeouts: ImapTimeouts & { maxMessageBytes?: number },
  onError?: (err: Error) => void,
): Promise<ImapFlow> {
  const credentials = typeof auth === 'string' ? { password: auth } : auth;
  const limits = timeouts.maxMessageBytes
    ? {
        maxLiteralSize: timeouts.maxMessageBytes,
        // Above the literal limit (imapflow counts the framing too), far below its 2 GiB default.
        maxResponseSize: timeouts.maxMessageBytes + 1024 * 1024,
        maxLineLength: MAX_IMAP_LINE_BYTES,
        maxResponseTokens: MAX_IMAP_RESPONSE_TOKENS,
      }
    : {};
  const options: ImapFlowOptions = {
    host: endpoint.host,
    port: endpoint.port,
    secure: endpoint.tls,
    auth:
      'accessToken' in credentials
        ? { user: endpoint.user, accessToken: credentials.accessToken }
        : { user: endpoint.user, pass: credentials.password },
    ...limits,
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
  client.on('error', (err: Error) => {
    connectionErrors.set(client, err);
    onError?.(err);
  });
  await client.connect();
  return client;
}

/**
 * Logs out politely, but never waits long for it: a server that floods or stalls would hold
 * the LOGOUT until the socket timeout. `abandon` skips the LOGOUT (the connection is in an
 * unknown state: a FETCH abandoned half way, a literal refused).
 */
export async function closeImap(client: ImapFlow, abandon = false): Promise<void> {
  if (abandon || !client.usable) {
    client.close();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.logout(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('LOGOUT timed out')), 5000))),
    ]);
  } catch {
    client.close();
  } finally {
    clearTimeout(timer);
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
  // \Recent belongs to one IMAP session, not to the message. Keywords are the server's (or
  // another client's) choice: cleaned and bounded like any text.
  return [...(flags ?? [])]
    .filter((f) => !isRecentFlag(f))
    .slice(0, FIELD_LIMITS.flags)
    .map((f) => cleanText(f, FIELD_LIMITS.flag))
    .sort();
}

/** Current flags of messages in a UID range; with `changedSince` only those changed after that mod-sequence. */
export async function fetchFlags(
  client: ImapFlow,
  range: string,
  changedSince?: string,
  onProgress?: () => void,
): Promise<FlagChange[]> {
  const out: FlagChange[] = [];
  const options = changedSince ? { uid: true, changedSince: BigInt(changedSince) } : { uid: true };
  for await (const m of client.fetch(range, { uid: true, flags: true }, options)) {
    out.push({ uid: m.uid, flags: cleanFlags(m.flags), modseq: storableBigint(m.modseq) });
    if (out.length % 500 === 0) onProgress?.();
  }
  return out;
}

function address(a: MessageAddressObject | undefined): string | null {
  if (!a?.address) return null;
  const name = a.name ? cleanText(a.name).trim() : '';
  return cleanText(name ? `${name} <${a.address}>` : a.address, FIELD_LIMITS.address);
}

/** The server answered a FETCH with far more than was asked (an endless FETCH response). */
export class ImapProtocolError extends Error {
  override name = 'ImapProtocolError';
}

/** FETCH responses for messages not asked for that are tolerated (unsolicited flag updates) before giving up. */
const UNSOLICITED_FETCH_LIMIT = 100;

/** Metadata (flags, envelope, dates, claimed size) of `uids`, by UID; UIDs the server did not answer for are absent. */
export async function fetchMetadata(
  client: ImapFlow,
  uids: number[],
  onMessage?: () => void,
): Promise<Map<number, FetchMessageObject>> {
  const wanted = new Set(uids);
  const meta = new Map<number, FetchMessageObject>();
  let unsolicited = 0;
  if (!uids.length) return meta;
  for await (const m of client.fetch(
    uidSet(uids),
    { uid: true, flags: true, envelope: true, internalDate: true, size: true },
    { uid: true },
  )) {
    if (!wanted.has(m.uid) || meta.has(m.uid)) {
      if (++unsolicited > UNSOLICITED_FETCH_LIMIT + uids.length) {
        throw new ImapProtocolError(
          `the server sent more than ${unsolicited} FETCH responses for messages not asked for (an endless FETCH response?)`,
        );
      }
      continue;
    }
    meta.set(m.uid, m);
    onMessage?.();
  }
  return meta;
}

/**
 * Raw sources of `uids`, added to `into` by UID as they arrive (so what arrived survives a
 * failure part way), until `budgetBytes` of real (not claimed) bytes have arrived: then it
 * stops early (the FETCH is abandoned, the connection must not be reused) and says so.
 * Throws what imapflow throws: a LiteralTooLarge when a body exceeds the connection's limit.
 */
export async function fetchSources(
  client: ImapFlow,
  uids: number[],
  budgetBytes: number,
  into: Map<number, Buffer>,
  onMessage?: () => void,
): Promise<{ stoppedEarly: boolean }> {
  const wanted = new Set(uids);
  let unsolicited = 0;
  let bytes = 0;
  let got = 0;
  if (!uids.length) return { stoppedEarly: false };
  for await (const m of client.fetch(uidSet(uids), { uid: true, source: true }, { uid: true })) {
    if (!wanted.has(m.uid) || into.has(m.uid) || !m.source) {
      if (++unsolicited > UNSOLICITED_FETCH_LIMIT + uids.length) {
        throw new ImapProtocolError(
          `the server sent more than ${unsolicited} FETCH responses for messages not asked for (an endless FETCH response?)`,
        );
      }
      continue;
    }
    into.set(m.uid, m.source);
    bytes += m.source.length;
    got++;
    onMessage?.();
    if (bytes >= budgetBytes && got < wanted.size) return { stoppedEarly: true };
  }
  return { stoppedEarly: false };
}

/**
 * The row for one message: every text field cleaned (lib/sync-store/storable.ts: a NUL or another control
 * character from a forged header must not reach PostgreSQL), dates and numbers only when they
 * fit their columns. `raw` null means stored without its body (raw_ref points at the server copy).
 */
export function toNewMessage(
  m: FetchMessageObject,
  raw: Buffer | null,
  endpoint: ImapEndpoint,
  folder: string,
  uidValidity: number,
): NewMessage {
  const env = m.envelope;
  return {
    uid: m.uid,
    messageId: cleanOptionalText(env?.messageId, FIELD_LIMITS.messageId),
    from: address(env?.from?.[0]),
    to: (env?.to ?? [])
      .map((a) => a.address)
      .filter((a): a is string => !!a)
      .slice(0, FIELD_LIMITS.recipients)
      .map((a) => cleanText(a, FIELD_LIMITS.address)),
    subject: cleanOptionalText(env?.subject, FIELD_LIMITS.subject),
    sentAt: storableDate(env?.date),
    internalDate: storableDate(m.internalDate),
    flags: cleanFlags(m.flags),
    modseq: storableBigint(m.modseq),
    size: storableInt32(m.size),
    raw,
    rawRef: imapUrl(endpoint, folder, uidValidity, m.uid),
  };
}
