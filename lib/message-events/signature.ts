// Signed webhooks for new-message events (docs/account-sync.md "New-message events"), in the
// Stripe style: the header
//
//   X-Mailroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<t>.<raw body>")>
//
// The timestamp is inside the signed text, so a receiver that refuses old timestamps (5 minutes
// by default here) refuses a captured request replayed later; one v1 per configured secret, so a
// secret can be rotated without a gap (the receiver accepts any v1 that matches one of its own).
// Pure functions over node:crypto: unit-tested in test/unit/message-events.test.ts.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { MESSAGE_NEW, type MessageEvent } from '../../contracts/message-events';

export const SIGNATURE_HEADER = 'X-Mailroom-Signature';
export const EVENT_ID_HEADER = 'X-Mailroom-Event-Id';
export const EVENT_TYPE_HEADER = 'X-Mailroom-Event';
/** How old a signature timestamp a receiver accepts by default. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** The webhook body: the event's ids, nothing else (stable key order, so the same event always gives the same bytes). */
export function webhookBody(event: MessageEvent): string {
  return JSON.stringify({
    type: MESSAGE_NEW,
    eventId: event.eventId,
    userId: event.userId,
    accountId: event.accountId,
    messageId: event.messageId,
    folder: event.folder,
    occurredAt: event.occurredAt,
  });
}

function hmac(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The X-Mailroom-Signature value for `body` sent at `timestamp` (unix seconds): one v1 per secret. */
export function signWebhook(secrets: readonly string[], body: string | Buffer, timestamp: number): string {
  if (!secrets.length) throw new Error('signWebhook: no secret (set SYNC_WEBHOOK_SECRET)');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new Error(`signWebhook: bad timestamp ${timestamp}`);
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${hmac(s, timestamp, body)}`)].join(',');
}

export type VerifyResult = { ok: true; timestamp: number } | { ok: false; reason: string };

/**
 * Checks a received webhook as a receiver should: over the raw body bytes (not re-serialised
 * JSON), against any of `secrets`, with the timestamp no further than `toleranceSeconds` from
 * `now` (unix seconds). Constant-time comparison.
 */
export function verifyWebhook(
  secrets: readonly string[],
  body: string | Buffer,
  header: string | undefined | null,
  options: { now?: number; toleranceSeconds?: number } = {},
): VerifyResult {
  if (!header) return { ok: false, reason: `no ${SIGNATURE_HEADER} header` };
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,15}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (timestamp === undefined) return { ok: false, reason: 'no timestamp (t=) in the signature header' };
  if (!signatures.length) return { ok: false, reason: 'no v1 signature in the signature header' };
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - timestamp) > tolerance)
    return { ok: false, reason: `timestamp ${timestamp} is more than ${tolerance} s from now (${now}): replayed?` };
  for (const secret of secrets) {
    const expected = Buffer.from(hmac(secret, timestamp, body), 'hex');
    for (const s of signatures) if (timingSafeEqual(expected, Buffer.from(s, 'hex'))) return { ok: true, timestamp };
  }
  return { ok: false, reason: 'no signature matches' };
}

/** What an HTTP answer to a webhook POST means: accepted, try again later, or refused for good. */
export function webhookAnswer(status: number): 'delivered' | 'retry' | 'refused' {
  if (status >= 200 && status < 300) return 'delivered';
  // Timeouts, rate limits and server errors pass; other client errors and redirects
  // (never followed: the signed body goes where it was configured to go) are the setup's fault.
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'refused';
}
