// SES bounce, complaint and delivery notifications that reach us as mail: an SNS topic with
// an email subscription sends the SES JSON as the body of a message from
// no-reply@sns.amazonaws.com ("email" protocol: the JSON, then SNS's footer; "email-json":
// the SNS envelope with the SES JSON as a string in "Message"). SES event publishing names
// the type `eventType` instead of `notificationType`. Pure: the caller passes the decoded
// text of the body.
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

/** The SES notification in a message body, if the body holds one. */
export function parseSesFeedback(body: string): SesFeedback | undefined {
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

/** Balanced {...} spans of a text, outside JSON strings, the first `max` of them. Linear in the text. */
function jsonObjects(text: string, max: number): string[] {
  const out: string[] = [];
  let from = text.indexOf('{');
  while (from >= 0 && out.length < max) {
    let depth = 0;
    let inString = false;
    let end = -1;
    for (let i = from; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{') depth++;
      else if (c === '}' && --depth === 0) {
        end = i;
        break;
      }
    }
    if (end < 0) break;
    out.push(text.slice(from, end + 1));
    from = text.indexOf('{', end + 1);
  }
  return out;
}
