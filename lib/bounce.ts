// Bounces: recognising delivery-status notifications, reading who bounced and why
// (RFC 3464), finding the original outbound message id, and rewriting the bounce so
// the user sees at a glance which recipient failed. Pure functions over raw text.
import { encodeWords } from 'nodemailer/lib/mime-funcs';
import { addressesIn, first, type Headers, parseHeaderBlock } from './headers';
import { LOOP_HEADER } from './status';

export interface BouncedRecipient {
  recipient: string;
  action?: string;
  status?: string;
  diagnostic?: string;
}

export interface BounceFacts {
  /** True when the sender is SES's MAILER-DAEMON (a bounce of mail we sent through SES). */
  fromSes: boolean;
  recipients: BouncedRecipient[];
  /** Message-IDs of the original message found in the bounce, as written there. */
  originalMessageIds: string[];
}

const BOUNCE_SUBJECT = /(undeliver|undelivered|delivery (status )?notification|delivery failure|failure notice|returned mail|mail delivery (failed|failure|subsystem)|non[- ]?delivery|could not be delivered|delivery has failed|not delivered|rejected|returned to sender|message status|unzustellbar|nicht zugestellt|niedostarczalna|delivery problem|warning: could not send|mail system error)/i;
const DAEMON = /^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@/i;

/** Whether the message is a delivery-status notification (bounce or delay warning). */
export function isBounce(headers: Headers): boolean {
  const ct = first(headers, 'content-type')?.toLowerCase() ?? '';
  if (ct.startsWith('multipart/report') && /report-type\s*=\s*"?delivery-status/.test(ct)) return true;
  if (headers.has('x-failed-recipients')) return true;
  const from = addressesIn(first(headers, 'from'))[0] ?? '';
  const subject = first(headers, 'subject') ?? '';
  const nullSender = /^<\s*>$/.test(first(headers, 'return-path')?.trim() ?? '');
  if (DAEMON.test(from) || /mail delivery (system|subsystem)/i.test(first(headers, 'from') ?? '')) return true;
  return nullSender && BOUNCE_SUBJECT.test(subject);
}

export function isSesSender(headers: Headers): boolean {
  const from = addressesIn(first(headers, 'from'))[0] ?? '';
  return DAEMON.test(from) && /(^|\.)amazonses\.com$/.test(from.slice(from.indexOf('@') + 1));
}

/**
 * Reads a bounce. `deliveryStatus` is the decoded message/delivery-status part when the
 * MIME parser found one; otherwise the raw text is searched for the same fields.
 */
export function parseBounce(raw: string, headers: Headers = parseHeaderBlock(raw), deliveryStatus?: string): BounceFacts {
  const body = raw.slice(Math.max(0, raw.search(/\r?\n\r?\n/)));
  const recipients = parseDeliveryStatus(deliveryStatus ?? body);
  if (recipients.length === 0) {
    for (const v of headers.get('x-failed-recipients') ?? []) {
      for (const r of v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) recipients.push({ recipient: r, action: 'failed' });
    }
  }
  return { fromSes: isSesSender(headers), recipients, originalMessageIds: embeddedMessageIds(body) };
}

/** Per-recipient fields of an RFC 3464 report; continuation lines unfolded. */
export function parseDeliveryStatus(text: string): BouncedRecipient[] {
  const out: BouncedRecipient[] = [];
  const blocks = text.replace(/\r\n/g, '\n').replace(/\n[ \t]+/g, ' ').split(/\n\s*\n/);
  for (const block of blocks) {
    const field = (name: string) => block.match(new RegExp(`^${name}:\\s*(.*)$`, 'im'))?.[1]?.trim();
    const finalRcpt = field('Final-Recipient') ?? field('Original-Recipient');
    if (!finalRcpt) continue;
    const recipient = finalRcpt.replace(/^[a-z0-9-]+\s*;\s*/i, '').replace(/^<|>$/g, '').trim().toLowerCase();
    if (!recipient) continue;
    const diagnostic = field('Diagnostic-Code')?.replace(/^[a-z0-9-]+\s*;\s*/i, '');
    out.push({ recipient, action: field('Action')?.toLowerCase(), status: field('Status'), diagnostic });
  }
  return out;
}

/** Message-ID headers inside the bounce body (the returned original's headers). */
function embeddedMessageIds(body: string): string[] {
  const ids = [...body.matchAll(/^(?:message-id|x-original-message-id):[ \t]*(?:\r?\n[ \t]+)?(<?[^\s<>]+@[^\s<>]+>?)/gim)].map((m) => m[1]);
  return [...new Set(ids)];
}

/**
 * Keys to look up in ses-outbound-messages for a Message-ID seen in a bounce. SES
 * returns a bare id from SendRawEmail (stored as the key) but writes the header as
 * `<id@region.amazonses.com>`; either form must match.
 */
export function sesMessageIdCandidates(messageId: string): string[] {
  const bare = messageId.trim().replace(/^<|>$/g, '');
  if (!bare) return [];
  const out = [bare];
  const at = bare.lastIndexOf('@');
  if (at > 0 && /(^|\.)amazonses\.com$/i.test(bare.slice(at + 1))) out.unshift(bare.slice(0, at));
  return [...new Set(out)];
}

export interface BounceRewrite {
  bouncedRecipient: string;
  status?: string;
  diagnostic?: string;
  originalSubject?: string;
}

/**
 * The copy the user receives: From and Reply-To become the recipient that bounced,
 * the Subject says what happened, and the originals survive as X-Original-* headers.
 * The body (the DSN itself) is untouched.
 */
export function rewriteBounce(raw: Buffer, info: BounceRewrite, workerName: string): Buffer {
  const split = findHeaderEnd(raw);
  const headerText = raw.subarray(0, split.headerEnd).toString('utf8');
  const rest = raw.subarray(split.headerEnd);
  const nl = split.newline;
  const lines = headerText.split(/\r?\n/);
  const kept: string[] = [];
  const originals: Record<string, string> = {};
  let skipping = false;
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      if (skipping) originals[Object.keys(originals).at(-1)!] += ' ' + line.trim();
      else kept.push(line);
      continue;
    }
    const name = line.slice(0, line.indexOf(':')).trim().toLowerCase();
    skipping = ['from', 'reply-to', 'subject'].includes(name);
    if (skipping) originals[name] = line.slice(line.indexOf(':') + 1).trim();
    else if (line !== '') kept.push(line);
  }
  const reason = [info.status, info.diagnostic].filter(Boolean).join(' ').replace(/[\r\n]+/g, ' ').slice(0, 300);
  const subject = `Delivery failed to ${info.bouncedRecipient}${reason ? `: ${reason}` : ''}${info.originalSubject ? ` (Re: ${info.originalSubject})` : ''}`;
  const added = [
    `From: ${encodeWords(`Mail Delivery (${info.bouncedRecipient})`, 'Q', 52)} <${info.bouncedRecipient}>`,
    `Reply-To: <${info.bouncedRecipient}>`,
    `Subject: ${encodeWords(subject.replace(/[\r\n]+/g, ' '), 'Q', 52)}`,
    ...(['from', 'reply-to', 'subject'] as const)
      .filter((h) => originals[h] !== undefined)
      .map((h) => `X-Original-${h === 'reply-to' ? 'Reply-To' : h[0].toUpperCase() + h.slice(1)}: ${originals[h]}`),
    `X-Mailroom-Bounced-Recipient: ${info.bouncedRecipient}`,
    `${LOOP_HEADER}: ${workerName}`,
  ];
  return Buffer.concat([Buffer.from([...added, ...kept].join(nl) + nl, 'utf8'), rest]);
}

function findHeaderEnd(raw: Buffer): { headerEnd: number; newline: string } {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { headerEnd: crlf + 2, newline: '\r\n' };
  if (lf >= 0) return { headerEnd: lf + 1, newline: '\n' };
  return { headerEnd: raw.length, newline: '\r\n' };
}
