// OAuth2 token client (RFC 6749 section 6, refresh_token grant) for IMAP accounts that log in
// with XOAUTH2/OAUTHBEARER (Gmail, Microsoft 365). One function: trade a refresh token for an
// access token. Errors say which side is at fault without ever echoing a token:
//   OAuth2GrantError     the provider refused the refresh token or the client (invalid_grant:
//                        revoked, expired, password changed; invalid_client; ...). Retrying
//                        with the same token cannot help: the account needs a new one.
//   OAuth2EndpointError  the endpoint could not be reached or answered with something other
//                        than a token or an OAuth2 error (5xx, timeout, HTML): retry later.
//   OAuth2ConfigError    the configured token endpoint is not https:// (loopback excepted, for
//                        the local stack): the refresh token is never sent to it; the account
//                        needs another token URL.
// What the provider says is not trusted either: an expires_in is clamped to a sane lifetime
// (a year at most: 1e13 seconds used to make an Invalid Date that rolled back the transaction
// storing a rotated refresh token), its texts are made printable (./server-text.ts).
import { printableText } from './server-text';

/** Errors of the token endpoint that mean "this credential will not work again". */
const CREDENTIAL_ERRORS = new Set([
  'invalid_grant',
  'invalid_client',
  'unauthorized_client',
  'invalid_scope',
  'unsupported_grant_type',
]);

export class OAuth2GrantError extends Error {
  override name = 'OAuth2GrantError';
  constructor(
    message: string,
    /** The RFC 6749 error code, e.g. invalid_grant. */
    readonly error: string,
  ) {
    super(message);
  }
}

export class OAuth2EndpointError extends Error {
  override name = 'OAuth2EndpointError';
}

export class OAuth2ConfigError extends Error {
  override name = 'OAuth2ConfigError';
}

/** Hosts a token endpoint may be reached on over plain http: this machine only (the local stack, tests). */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Why `tokenUrl` may not be used as a token endpoint, or null when it may: it must be an
 * https:// URL (a refresh token is a long-lived credential), except http:// on 127.0.0.1,
 * localhost or [::1].
 */
export function tokenUrlProblem(tokenUrl: string): string | null {
  let u: URL;
  try {
    u = new URL(tokenUrl);
  } catch {
    return `"${printableText(tokenUrl, 200)}" is not a URL; give the provider's https:// token endpoint`;
  }
  if (u.protocol === 'https:') return null;
  if (u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname)) return null;
  const shown = `${u.protocol}//${u.host}${u.pathname}`;
  return u.protocol === 'http:'
    ? `${printableText(shown, 200)} is plain http: the refresh token would cross the network unencrypted; give the provider's https:// token endpoint (http:// is accepted on 127.0.0.1, localhost and [::1] only)`
    : `${printableText(shown, 200)} is not an https:// URL; give the provider's https:// token endpoint`;
}

export interface OAuth2Client {
  tokenUrl: string;
  clientId: string;
  /** Confidential clients (Google's "Web" and "Desktop" apps) have one; public clients do not. */
  clientSecret?: string | null;
  /** Space-separated; Microsoft's v2 endpoint wants them on every refresh. */
  scopes?: string;
}

export interface AccessToken {
  accessToken: string;
  expiresAt: Date;
  /** Set when the provider rotated the refresh token (Microsoft does): store it, the old one may stop working. */
  refreshToken?: string;
  scope?: string;
}

/** Lifetime assumed when the provider does not say (RFC 6749 leaves expires_in optional) or says something that is not a number. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 3600;
/**
 * Shortest lifetime used: 0 or a negative number becomes 1 s. Never more than the provider
 * said otherwise, so a cached token never outlives the real one (with the refresh margin, a
 * token this short is simply refreshed at the next login).
 */
export const MIN_TOKEN_LIFETIME_SECONDS = 1;
/** Longest lifetime believed: no provider issues access tokens for longer than a year. */
export const MAX_TOKEN_LIFETIME_SECONDS = 365 * 24 * 3600;

/**
 * The lifetime to assume for an access token, in seconds, from the provider's expires_in: a
 * number or a numeric string, clamped to [MIN, MAX]; anything else (absent, "soon", an object)
 * the default.
 */
export function tokenLifetimeSeconds(expiresIn: unknown): number {
  let n: number;
  if (typeof expiresIn === 'number') n = expiresIn;
  else if (typeof expiresIn === 'string' && /^\s*[-+]?\d+(\.\d+)?([eE][-+]?\d+)?\s*$/.test(expiresIn))
    n = Number(expiresIn);
  else return DEFAULT_TOKEN_LIFETIME_SECONDS;
  if (Number.isNaN(n)) return DEFAULT_TOKEN_LIFETIME_SECONDS;
  return Math.min(MAX_TOKEN_LIFETIME_SECONDS, Math.max(MIN_TOKEN_LIFETIME_SECONDS, Math.floor(n)));
}

function describeEndpoint(tokenUrl: string): string {
  try {
    const u = new URL(tokenUrl);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'the token endpoint';
  }
}

/** Provider text for an operator: one line, bounded, no control characters or escape sequences. */
function providerText(value: unknown): string {
  return typeof value === 'string' ? printableText(value, 300).trim() : '';
}

/** Trades a refresh token for an access token. */
export async function refreshAccessToken(
  client: OAuth2Client,
  refreshToken: string,
  options: { timeoutMs?: number; now?: () => number; fetch?: typeof fetch } = {},
): Promise<AccessToken> {
  const where = describeEndpoint(client.tokenUrl);
  const problem = tokenUrlProblem(client.tokenUrl);
  if (problem) throw new OAuth2ConfigError(`OAuth2 token endpoint refused: ${problem}`);
  const body = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: client.clientId,
  });
  if (client.clientSecret) body.set('client_secret', client.clientSecret);
  if (client.scopes) body.set('scope', client.scopes);
  const started = (options.now ?? Date.now)();
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(client.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const detail =
      e.name === 'TimeoutError'
        ? `no answer within ${Math.round((options.timeoutMs ?? 30_000) / 1000)} s`
        : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new OAuth2EndpointError(`OAuth2 token endpoint ${where} could not be reached: ${detail}`);
  }
  let json: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = await response.json();
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    /* not JSON: handled below */
  }
  if (!response.ok || typeof json?.access_token !== 'string') {
    const code = providerText(json?.error);
    const description = providerText(json?.error_description);
    const said = code
      ? `${code}${description ? `: ${description}` : ''}`
      : `HTTP ${response.status}${json ? '' : ', not JSON'}`;
    if (code && CREDENTIAL_ERRORS.has(code)) {
      throw new OAuth2GrantError(
        `OAuth2 token endpoint ${where} refused the refresh token for client ${client.clientId} (${said})`,
        code,
      );
    }
    throw new OAuth2EndpointError(`OAuth2 token endpoint ${where} returned no access token (${said})`);
  }
  return {
    accessToken: json.access_token,
    expiresAt: new Date(started + tokenLifetimeSeconds(json.expires_in) * 1000),
    refreshToken: typeof json.refresh_token === 'string' && json.refresh_token ? json.refresh_token : undefined,
    scope: typeof json.scope === 'string' ? json.scope : undefined,
  };
}

/** Whether a cached access token can still be used for a login now: it must outlive the margin. */
export function tokenStillValid(expiresAt: Date | null, marginMs: number, now = Date.now()): boolean {
  return expiresAt !== null && expiresAt.getTime() - now > marginMs;
}
