// Bounces and complaints: recognising delivery-status notifications (RFC 3464) and
// feedback reports (RFC 5965), reading who bounced or complained and why, finding the
// original outbound message id, and rewriting the report so the user sees at a glance
// which recipient failed. Pure functions over the header block and decoded text.
import { encodeWords } from 'nodemailer/lib/mime-funcs';
import type { BouncedRecipient, BounceFacts } from '../../contracts/inbound';
import { addressList, domainOf, localPartOf, normalizeAddress } from './address';
import { first, type Headers, type HeaderBlock, readHeaderBlock } from './headers';
import { outgoingMessage, singleLine } from './outgoing';
import { LOOP_HEADER } from '../../contracts/email-status';

export type { BouncedRecipient, BounceFacts };

const BOUNCE_SUBJECT =
  /(undeliver|undelivered|delivery (status )?notification|delivery failure|failure notice|returned mail|mail delivery (failed|failure|subsystem)|non[- ]?delivery|could not be delivered|delivery has failed|not delivered|rejected|returned to sender|message status|unzustellbar|nicht zugestellt|niedostarczalna|delivery problem|warning: could not send|mail system error)/i;
const DAEMON = /^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)$/i;

function fromAddress(headers: Headers): string {
  return addressList(first(headers, 'from'))[0] ?? '';
}

/** multipart/report with the given report-type (RFC 6522). */
function reportType(headers: Headers): string | undefined {
  const ct = first(headers, 'content-type')?.toLowerCase() ?? '';
  if (!ct.startsWith('multipart/report')) return undefined;
  return /report-type\s*=\s*"?([a-z0-9-]+)/.exec(ct)?.[1] ?? '';
}

/** Whether the message is a feedback report (ARF, RFC 5965): a complaint. */
export function isComplaint(headers: Headers): boolean {
  if (reportType(headers) === 'feedback-report') return true;
  const from = fromAddress(headers);
  return /^complaints?$/.test(localPartOf(from)) && /(^|\.)amazonses\.com$/.test(domainOf(from));
}

/** Whether the message is a delivery-status notification (bounce or delay warning). */
export function isBounce(headers: Headers): boolean {
  const type = reportType(headers);
  if (type === 'delivery-status' || type === 'global-delivery-status') return true;
  if (headers.has('x-failed-recipients')) return true;
  const from = fromAddress(headers);
  const subject = first(headers, 'subject') ?? '';
  const nullSender = /^<\s*>$/.test(first(headers, 'return-path')?.trim() ?? '');
  if (
    (from && DAEMON.test(localPartOf(from))) ||
    /mail delivery (system|subsystem)/i.test(first(headers, 'from') ?? '')
  )
    return true;
  return nullSender && BOUNCE_SUBJECT.test(subject);
}

export function isSesSender(headers: Headers): boolean {
  const from = fromAddress(headers);
  return DAEMON.test(localPartOf(from)) && /(^|\.)amazonses\.com$/.test(domainOf(from));
}

/** Decoded MIME parts of a report, by content type (lower case). */
export interface ReportParts {
  deliveryStatus?: string;
  feedbackReport?: string;
  /** Returned original message or its headers (message/rfc822, text/rfc822-headers), and text bodies. */
  texts?: string[];
}

// The facts land in workflow history: a report naming thousands of recipients or ids is cut.
const MAX_IDS = 20;
const MAX_RECIPIENTS = 50;

/**
 * Reads a bounce or complaint. `body` is the message body (after the header block read
 * into `block`) with CRLF line endings; `parts` are the decoded parts when the MIME parser
 * found them (otherwise the raw body is searched for the same fields).
 */
export function parseBounce(body: string, block: HeaderBlock, parts: ReportParts = {}): BounceFacts {
  const headers = block.headers;
  const complaint = isComplaint(headers);
  const recipients = complaint
    ? parseFeedbackReport(parts.feedbackReport ?? body)
    : parseDeliveryStatus(parts.deliveryStatus ?? body);
  if (!complaint && recipients.length === 0) {
    for (const v of headers.get('x-failed-recipients') ?? []) {
      for (const r of v.split(',')) {
        const a = normalizeAddress(r);
        if (a && !recipients.some((x) => x.recipient === a)) recipients.push({ recipient: a, action: 'failed' });
      }
    }
  }
  const searched = [body, ...(parts.texts ?? [])];
  const ids = [
    ...searched.flatMap(embeddedMessageIds),
    ...searched.flatMap(sesMessageIds),
    // SES ids in the report's own header too: the VERP bounce address (X-Original-To,
    // Delivered-To) of a bounce SES forwards carries the id of the message that bounced.
    ...[...headers.values()].flatMap((vs) => vs.flatMap(sesMessageIds)),
    ...['in-reply-to', 'references'].flatMap((n) =>
      (headers.get(n) ?? []).flatMap((v) => v.match(/<[^<>\s]{1,300}>/g) ?? []),
    ),
  ];
  return {
    fromSes: isSesSender(headers),
    recipients: recipients.slice(0, MAX_RECIPIENTS),
    originalMessageIds: [...new Set(ids)].slice(0, MAX_IDS),
    kind: complaint ? 'complaint' : 'bounce',
  };
}

/** Per-recipient fields of an RFC 3464 report; continuation lines unfolded. */
export function parseDeliveryStatus(text: string): BouncedRecipient[] {
  const out: BouncedRecipient[] = [];
  for (const block of fieldBlocks(text)) {
    const field = (name: string) => fieldOf(block, name);
    const finalRcpt = field('Final-Recipient') ?? field('Original-Recipient');
    if (!finalRcpt) continue;
    const recipient = normalizeAddress(finalRcpt.replace(/^[a-z0-9-]+\s*;\s*/i, ''));
    if (!recipient || out.some((r) => r.recipient === recipient)) continue;
    const diagnostic = field('Diagnostic-Code')
      ?.replace(/^[a-z0-9-]+\s*;\s*/i, '')
      .slice(0, 300);
    out.push({
      recipient,
      action: field('Action')?.toLowerCase().slice(0, 20),
      status: field('Status')?.slice(0, 40),
      diagnostic,
    });
    if (out.length >= MAX_RECIPIENTS) break;
  }
  return out;
}

/** Who complained, from an RFC 5965 report (Original-Rcpt-To, or RFC 6650 Removal-Recipient). */
export function parseFeedbackReport(text: string): BouncedRecipient[] {
  const out: BouncedRecipient[] = [];
  for (const block of fieldBlocks(text)) {
    const type = fieldOf(block, 'Feedback-Type');
    if (!type) continue;
    for (const name of ['Original-Rcpt-To', 'Removal-Recipient']) {
      for (const m of block.matchAll(new RegExp(`^${name}:[ \\t]*(.{1,400})$`, 'gim'))) {
        const a = normalizeAddress(m[1].trim());
        if (a && !out.some((r) => r.recipient === a))
          out.push({ recipient: a, action: 'complained', diagnostic: type.slice(0, 100) });
      }
    }
  }
  return out;
}

function fieldBlocks(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/\n[ \t]+/g, ' ')
    .split(/\n[ \t]*\n/);
}

function fieldOf(block: string, name: string): string | undefined {
  return new RegExp(`^${name}:[ \\t]*(.{0,1000})$`, 'im').exec(block)?.[1]?.trim();
}

/** Message-ID headers inside the report's body (the returned original's headers). */
function embeddedMessageIds(body: string): string[] {
  const ids = [
    ...body.matchAll(
      /^(?:message-id|x-original-message-id|original-message-id):[ \t]*(?:\r?\n[ \t]+)?(<?[^\s<>@]{1,250}@[^\s<>]{1,250}>?)/gim,
    ),
  ].map((m) => m[1]);
  return [...new Set(ids)];
}

// SES message ids: 16 hex digits, a UUID, 6 hex digits ("0100018c...-...-000000").
const SES_ID = /\b[0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{6}\b/gi;

/** SES message ids anywhere in a text: in returned headers, VERP addresses, quoted replies. */
function sesMessageIds(text: string): string[] {
  return [...new Set((text.match(SES_ID) ?? []).map((s) => s.toLowerCase()))].slice(0, MAX_IDS);
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
  kind?: 'bounce' | 'complaint';
}

const REPLACED = ['from', 'reply-to', 'subject'] as const;

/**
 * The copy the user receives: From and Reply-To become the recipient that bounced (or
 * complained), the Subject says what happened, and the originals survive as X-Original-*
 * headers. The body (the report itself) is untouched but for CRLF line endings.
 */
export function rewriteBounce(raw: Buffer, info: BounceRewrite, workerName: string): Buffer {
  const { headers } = readHeaderBlock(raw);
  const originals: [string, string][] = [];
  for (const h of REPLACED) {
    const v = first(headers, h);
    if (v !== undefined)
      originals.push([`X-Original-${h === 'reply-to' ? 'Reply-To' : h[0].toUpperCase() + h.slice(1)}`, v]);
  }
  const who = info.bouncedRecipient;
  const reason = singleLine([info.status, info.diagnostic].filter(Boolean).join(' ')).slice(0, 300);
  const what = info.kind === 'complaint' ? `Complaint from ${who}` : `Delivery failed to ${who}`;
  const subject = `${what}${reason ? `: ${reason}` : ''}${info.originalSubject ? ` (Re: ${singleLine(info.originalSubject)})` : ''}`;
  const label = info.kind === 'complaint' ? 'Complaint' : 'Mail Delivery';
  return outgoingMessage(raw, {
    remove: [...REPLACED],
    add: [
      ['From', `${encodeWords(`${label} (${who})`, 'Q', 52)} <${who}>`],
      ['Reply-To', `<${who}>`],
      ['Subject', encodeWords(subject, 'Q', 52)],
      ...originals,
      ['X-Mailroom-Bounced-Recipient', who],
      [LOOP_HEADER, workerName],
    ],
  });
}
