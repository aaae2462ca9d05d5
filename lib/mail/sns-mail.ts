// SES bounce, complaint and delivery notifications that reach us as mail: an SNS topic with
// an email subscription sends the SES JSON as the body of a message from
// no-reply@sns.amazonaws.com ("email" protocol: the JSON, then SNS's footer; "email-json":
// the SNS envelope with the SES JSON as a string in "Message"). SES event publishing names
// the type `eventType` instead of `notificationType`. Pure: the caller passes the decoded
// text of the body.
//
// As such mail really arrives, the JSON is one long line (SES's JSON, or the whole SNS
// envelope with the SES JSON escaped in "Message"), and relays on the way break lines over
// 998 characters (RFC 5322 section 2.1.1): sendmail splits with "!" + line break + space,
// Postfix inserts line break + space, others a bare line break; a part re-encoded as
// quoted-printable has "=" soft breaks and =XX escapes. A raw line break can never be part
// of JSON text inside a string, and outside strings it is only whitespace, so the object is
// read with every such break taken out (jsonObjects).
import { addressList, domainOf, normalizeAddress } from './address';
import { first, type Headers } from './headers';

export interface SesFeedbackRecipient {
  recipient: string;
  action?: string;
  status?: string;
  diagnostic?: string;
}

export interface SesFeedback {
  /** Bounce, Complaint, Delivery, or another SES event type. */
  type: string;
  /** The SES message id of the message we sent (the key of ses-outbound-messages). */
  messageId?: string;
  /** Who bounced or complained (Bounce, Complaint), or who got it (Delivery). */
  recipients: SesFeedbackRecipient[];
  /** Subject of our message, when SES included its headers. */
  subject?: string;
  /** Bounce type and subtype, or the complaint's feedback type. */
  detail?: string;
}

/** Mail sent by SNS itself (any region): the only sender whose JSON body we read. */
export function isSnsMail(headers: Headers): boolean {
  const from = addressList(first(headers, 'from'))[0];
  return !!from && /(^|\.)sns\.amazonaws\.com$/.test(domainOf(from));
}

/**
 * Whether a body names an SES notification type, as plain JSON or escaped in an SNS
 * envelope's "Message", also when a relay's line break or a quoted-printable soft break
 * falls inside the name.
 */
export function namesSesNotification(body: string): boolean {
  const head = body.slice(0, 256 * 1024);
  const named = /\\?"(?:notificationType|eventType)\\?"\s*:/;
  if (named.test(head)) return true;
  // One break splits a name into two parts, one of them holding half of it or more: without
  // one of those halves there is nothing to join (most mail ends here, cheaply).
  if (!/notifica|tionType|event|tType/.test(head)) return false;
  return named.test(head.replace(/[!=]?(?:\r\n|\n|\r)[ \t]?/g, ''));
}

/** The SES notification in a message body, if the body holds one. */
export function parseSesFeedback(body: string): SesFeedback | undefined {
  const found = fromText(body);
  if (found || !/=(?:\r\n|\n|\r|[0-9A-F]{2})/.test(body)) return found;
  // Quoted-printable text nobody decoded (a part whose MIME headers were lost or mangled).
  return fromText(decodeQuotedPrintable(body));
}

function fromText(body: string): SesFeedback | undefined {
  for (const json of jsonObjects(body, 3)) {
    let doc: unknown;
    try {
      doc = JSON.parse(json);
    } catch {
      continue;
    }
    const envelope = doc as { Message?: unknown };
    if (envelope && typeof envelope.Message === 'string') {
      try {
        doc = JSON.parse(envelope.Message);
      } catch {
        continue;
      }
    }
    const n = doc as Record<string, unknown>;
    const type =
      typeof n?.notificationType === 'string'
        ? n.notificationType
        : typeof n?.eventType === 'string'
          ? n.eventType
          : undefined;
    const mail = n?.mail as { messageId?: unknown; commonHeaders?: { subject?: unknown } } | undefined;
    if (!type || !mail || typeof mail !== 'object') continue;
    return {
      type,
      messageId: typeof mail.messageId === 'string' ? mail.messageId.slice(0, 300) : undefined,
      recipients: feedbackRecipients(type, n).slice(0, 50),
      subject: typeof mail.commonHeaders?.subject === 'string' ? mail.commonHeaders.subject.slice(0, 300) : undefined,
      detail: detailOf(type, n),
    };
  }
  return undefined;
}

/** RFC 2045 quoted-printable to text: soft breaks removed, =XX escapes to bytes, read as UTF-8. */
function decodeQuotedPrintable(text: string): string {
  const chunks: Buffer[] = [];
  for (const m of text.replace(/=(?:\r\n|\n|\r)/g, '').matchAll(/=([0-9A-Fa-f]{2})|[^=]+|=/g))
    chunks.push(m[1] ? Buffer.from([parseInt(m[1], 16)]) : Buffer.from(m[0], 'utf8'));
  return Buffer.concat(chunks).toString('utf8');
}

function feedbackRecipients(type: string, n: Record<string, unknown>): SesFeedbackRecipient[] {
  const list = (o: unknown, key: string): Record<string, unknown>[] => {
    const v = o && typeof o === 'object' ? (o as Record<string, unknown>)[key] : undefined;
    return Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => !!x && typeof x === 'object') : [];
  };
  const str = (v: unknown) => (typeof v === 'string' ? v.replace(/[\r\n]+/g, ' ').slice(0, 300) : undefined);
  const out: SesFeedbackRecipient[] = [];
  const add = (address: unknown, extra: Omit<SesFeedbackRecipient, 'recipient'>) => {
    const a = typeof address === 'string' ? normalizeAddress(address) : undefined;
    if (a && !out.some((r) => r.recipient === a)) out.push({ recipient: a, ...extra });
  };
  if (type === 'Bounce') {
    for (const r of list(n.bounce, 'bouncedRecipients'))
      add(r.emailAddress, {
        action: str(r.action) ?? 'failed',
        status: str(r.status),
        diagnostic: str(r.diagnosticCode),
      });
  } else if (type === 'Complaint') {
    const feedback = str((n.complaint as Record<string, unknown> | undefined)?.complaintFeedbackType);
    for (const r of list(n.complaint, 'complainedRecipients'))
      add(r.emailAddress, { action: 'complained', diagnostic: feedback });
  } else if (type === 'Delivery') {
    const d = n.delivery as { recipients?: unknown } | undefined;
    for (const r of Array.isArray(d?.recipients) ? (d.recipients as unknown[]) : []) add(r, { action: 'delivered' });
  }
  return out;
}

function detailOf(type: string, n: Record<string, unknown>): string | undefined {
  const o = (type === 'Bounce' ? n.bounce : type === 'Complaint' ? n.complaint : undefined) as
    Record<string, unknown> | undefined;
  if (!o) return undefined;
  const parts = type === 'Bounce' ? [o.bounceType, o.bounceSubType] : [o.complaintFeedbackType ?? o.complaintSubType];
  const s = parts.filter((p): p is string => typeof p === 'string' && p.length > 0).join('/');
  return s ? s.slice(0, 100) : undefined;
}

/** The length of the line break at `i` (CRLF, LF or a bare CR), or 0. */
function lineBreakAt(text: string, i: number): number {
  const c = text[i];
  if (c === '\r') return text[i + 1] === '\n' ? 2 : 1;
  return c === '\n' ? 1 : 0;
}

/**
 * The length of a relay's fold at `i`, or 0: sendmail's "!" + line break (+ the space it
 * adds), or a line break with the one space or tab a relay such as Postfix inserts after it.
 * In JSON text a raw line break is never content, so every one is a fold or whitespace.
 */
function foldAt(text: string, i: number): number {
  const bang = text[i] === '!' ? 1 : 0;
  const eol = lineBreakAt(text, i + bang);
  if (!eol) return 0;
  const after = i + bang + eol;
  return bang + eol + (text[after] === ' ' || text[after] === '\t' ? 1 : 0);
}

/**
 * Balanced {...} spans of a text, outside JSON strings, the first `max` of them, each with
 * the relays' folds inside it taken out (foldAt). Linear in the text.
 */
function jsonObjects(text: string, max: number): string[] {
  const out: string[] = [];
  let from = text.indexOf('{');
  while (from >= 0 && out.length < max) {
    let depth = 0;
    let inString = false;
    let escaped = false;
    // The span is built from the pieces between folds.
    const pieces: string[] = [];
    let pieceStart = from;
    let end = -1;
    for (let i = from; i < text.length; i++) {
      const fold = foldAt(text, i);
      if (fold) {
        pieces.push(text.slice(pieceStart, i));
        pieceStart = i + fold;
        i += fold - 1;
        continue;
      }
      const c = text[i];
      if (escaped) escaped = false;
      else if (inString) {
        if (c === '\\') escaped = true;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{') depth++;
      else if (c === '}' && --depth === 0) {
        end = i;
        break;
      }
    }
    if (end < 0) break;
    pieces.push(text.slice(pieceStart, end + 1));
    out.push(pieces.join(''));
    from = text.indexOf('{', end + 1);
  }
  return out;
}
