// How account sync tells its errors apart, because each kind calls for something else:
//   data            one message cannot be stored: record it (sync_errors) and skip it, the rest
//                   of the batch commits and the checkpoint moves on;
//   limit           the server sent more than we accept (a literal, line or response above the
//                   configured limits): for a single message's body this is an oversize skip,
//                   anywhere else the server misbehaves and the attempt is retried;
//   stalled         no progress for too long (a server that stalls or drips) or past the
//                   activity's deadline: given up on and retried with backoff;
//   authentication  the credential was refused (IMAP AUTHENTICATIONFAILED, OAuth2 invalid_grant):
//                   never retried with the same credential, the account waits for a new one;
//   connection      everything else on the wire (refused, reset, timeouts, closed mid-literal):
//                   retried with backoff.
// Pure functions over error shapes (imapflow, pg, lib/imap/oauth2.ts); no I/O.

import { isPostgresDataError } from '../storage/pg-errors';
import { serverText } from './server-text';

export { isPostgresDataError };

export type SyncErrorKind = 'data' | 'limit' | 'stalled' | 'authentication' | 'connection';

/** Thrown (as the reason) when a sync gives up on a connection that makes no progress or outlives its deadline. */
export class SyncStalledError extends Error {
  override name = 'SyncStalledError';
  constructor(
    message: string,
    readonly kind: 'stall' | 'deadline',
  ) {
    super(message);
  }
}

const IMAP_LIMIT_CODES = new Set(['LiteralTooLarge', 'ResponseTooLarge', 'LineTooLarge', 'TooManyTokens']);

/** imapflow refused a response for exceeding maxLiteralSize, maxResponseSize, maxLineLength or maxResponseTokens. */
export function isImapLimitError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && IMAP_LIMIT_CODES.has(code);
}

/** The size the server announced for a refused literal or response, when it said. */
export function announcedSize(err: unknown): number | null {
  const e = err as { literalSize?: unknown; responseSize?: unknown } | null;
  const n = e?.literalSize ?? e?.responseSize;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

/** The IMAP server refused the login (RFC 5530 AUTHENTICATIONFAILED, or imapflow's flag for it). */
export function isImapAuthFailure(err: unknown): boolean {
  const e = err as { authenticationFailed?: boolean; serverResponseCode?: string; name?: string } | null;
  if (!e) return false;
  return (
    e.authenticationFailed === true ||
    e.name === 'AuthenticationFailure' ||
    e.serverResponseCode === 'AUTHENTICATIONFAILED'
  );
}

/** The OAuth2 provider refused the refresh token or the client (lib/imap/oauth2.ts OAuth2GrantError). */
export function isOAuth2GrantError(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'OAuth2GrantError';
}

export function classifySyncError(err: unknown): SyncErrorKind {
  if (err instanceof SyncStalledError) return 'stalled';
  if (isImapAuthFailure(err) || isOAuth2GrantError(err)) return 'authentication';
  if (isPostgresDataError(err)) return 'data';
  if (isImapLimitError(err)) return 'limit';
  return 'connection';
}

/**
 * Why one folder failed in a way that says nothing about the others, for the failures that do
 * not depend on the connection: PostgreSQL refused something of the folder's (its name, a
 * value), or the server refused a command about it (NO or BAD, not "try again later"). Null
 * otherwise: the attempt fails and is retried as before.
 */
export function folderDataProblem(err: unknown): string | null {
  if (isPostgresDataError(err)) {
    const e = err as { message?: string; code?: string };
    return `PostgreSQL refused the folder's data: ${serverText(e.message, 500)} (SQLSTATE ${e.code})`;
  }
  const e = err as { responseStatus?: unknown; responseText?: unknown; serverResponseCode?: unknown } | null;
  if (e && (e.responseStatus === 'NO' || e.responseStatus === 'BAD')) {
    const code = e.serverResponseCode;
    if (code === 'UNAVAILABLE' || code === 'INUSE' || code === 'LIMIT' || isImapAuthFailure(err)) return null;
    return `the server answered ${e.responseStatus}${typeof code === 'string' ? ` [${serverText(code, 50)}]` : ''}: ${serverText(e.responseText, 500) || 'no reason given'}`;
  }
  return null;
}

/** Human size for messages to operators: 67108864 -> "64 MiB". */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
