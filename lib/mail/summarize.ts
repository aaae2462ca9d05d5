// Turns raw message bytes into the facts the inbound workflow decides on. Pure apart
// from parsing; shared by the fetch activity, the corpus tests and the benchmark.
// Everything reads the one header reader (lib/mail/headers.ts) over the message with its line
// endings made CRLF, so CRLF, LF, bare-CR and mixed mail get the same decisions.
import { simpleParser } from 'mailparser';
import libmime from 'libmime';
import { addressList } from './address';
import { automaticMail, autoReplyDecision, type MailFacts, outsideForwardDecision } from './autoreply';
import { type BounceFacts, isBounce, isComplaint, parseBounce, type ReportParts } from './bounce';
import { first, readHeaderBlock } from './headers';
import type { FetchResult, InboundRef } from '../../contracts/inbound';
import { toCrlf } from './outgoing';
import { chooseRecipients } from './recipients';
import { failedAuthentication, mergeVerdicts, verdictsFromHeaders } from './ses-verdicts';
import { isSnsMail, namesSesNotification, parseSesFeedback } from './sns-mail';
import { LEGACY_LOOP_HEADER, LOOP_HEADER } from '../../contracts/email-status';

/**
 * More Received headers than this is a mail loop that lost our marker header on the way
 * (a forwarder that rebuilds headers): RFC 5321 section 6.3 counts hops; 50 is Postfix's
 * hopcount_limit, far above any honest path.
 */
export const MAX_HOPS = 50;

export interface SummarizeOptions {
  /** SES spam verdict FAIL: deliver (marked) or quarantine (SPAM_ACTION). */
  spamAction: 'deliver' | 'quarantine';
  /** Above this many of our recipients from headers (no envelope), nothing is delivered (MAX_HEADER_RECIPIENTS). */
  maxHeaderRecipients: number;
}

export const DEFAULT_SUMMARIZE_OPTIONS: SummarizeOptions = { spamAction: 'deliver', maxHeaderRecipients: 50 };

const clip = (s: string | undefined, n: number) =>
  s === undefined ? undefined : s.replace(/[\r\n]+/g, ' ').slice(0, n);

/** RFC 2047 encoded-words to text; a broken encoding leaves the raw text. */
export function decodeHeader(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

// Only the first megabytes of a body are scanned for part types and ids: reports are small,
// and what follows them is the returned original.
const SCAN_BYTES = 4 * 1024 * 1024;

/** MIME types declared in the body's part headers (a light scan, not a parse). */
function partTypes(body: string): string[] {
  const out = new Set<string>();
  for (const m of body
    .slice(0, SCAN_BYTES)
    .matchAll(/^content-type:[ \t]*([a-z0-9.+-]{1,100}\/[a-z0-9.+-]{1,100})/gim)) {
    out.add(m[1].toLowerCase());
    if (out.size >= 50) break;
  }
  return [...out];
}

/** The first few KB of the body as plain-ish text: quoted-printable soft breaks undone, whitespace collapsed. */
function bodyText(body: string): string {
  return body.slice(0, 8192).replace(/=\r\n/g, '').replace(/=20/g, ' ').replace(/\s+/g, ' ');
}

const ADDRESSED = ['to', 'cc', 'bcc', 'resent-to', 'resent-cc', 'resent-bcc'];

export async function summarizeEmail(
  stored: Buffer,
  ref: InboundRef,
  options: SummarizeOptions = DEFAULT_SUMMARIZE_OPTIONS,
): Promise<FetchResult> {
  const where = `s3://${ref.bucket}/${ref.key}`;
  const raw = toCrlf(stored);
  const block = readHeaderBlock(raw);
  const headers = block.headers;
  if (headers.size === 0) {
    return {
      kind: 'terminal',
      status: 'invalid',
      reason: `${where} has no header block: not an RFC 5322 message`,
      size: stored.length,
    };
  }
  const verdicts = mergeVerdicts(ref.verdicts, verdictsFromHeaders(block));
  const quarantine =
    verdicts?.virus === 'FAIL'
      ? 'virus'
      : verdicts?.spam === 'FAIL' && options.spamAction === 'quarantine'
        ? 'spam'
        : undefined;
  if (quarantine) {
    return {
      kind: 'terminal',
      status: 'quarantined',
      reason: `SES ${quarantine} verdict FAIL (${verdicts!.source}): not delivered, kept in S3`,
      size: stored.length,
      verdicts,
    };
  }
  const choice = chooseRecipients({ envelope: ref.envelopeRecipients, headers, domain: ref.domain });
  if (choice.recipients.length === 0) {
    const named = choice.foreign.length
      ? ` (it names only ${choice.foreign.slice(0, 5).join(', ')})`
      : choice.unusable.length
        ? ` (unusable addresses: ${choice.unusable.slice(0, 3).join(', ')})`
        : '';
    return {
      kind: 'terminal',
      status: 'invalid',
      reason: `${where} has no recipient in ${ref.domain} in its ${choice.source}${named}`,
      size: stored.length,
    };
  }
  if (choice.source === 'headers' && choice.recipients.length > options.maxHeaderRecipients) {
    return {
      kind: 'terminal',
      status: 'invalid',
      reason: `${where} names ${choice.recipients.length} recipients in ${ref.domain} in its headers and no envelope is known: more than MAX_HEADER_RECIPIENTS=${options.maxHeaderRecipients}, nothing delivered (replay it from its SES notification, which carries the envelope)`,
      size: stored.length,
    };
  }
  const from = addressList(first(headers, 'from'))[0];
  const returnPath = addressList(first(headers, 'return-path'))[0];
  const loopMarker = first(headers, LOOP_HEADER) ?? first(headers, LEGACY_LOOP_HEADER);
  const hops = headers.get('received')?.length ?? 0;
  // The body by byte offset: header text may hold multi-byte characters.
  const body = raw.subarray(block.bodyStart).toString('utf8');
  const types = partTypes(body);

  // SES notification JSON: from SNS itself, or any body that names an SES notification type
  // (a forwarded one); only a match with our own outbound message makes it count as a report.
  const sns = isSnsMail(headers) || namesSesNotification(body);
  const reportish = sns || isBounce(headers) || isComplaint(headers);
  let parts: ReportParts & { text?: string } = {};
  if (reportish) parts = await reportParts(raw);
  // The decoded text first; the raw body when the parser found no text part holding it.
  const sesFeedback = sns
    ? ((parts.text !== undefined ? parseSesFeedback(parts.text) : undefined) ?? parseSesFeedback(body))
    : undefined;
  let bounce: BounceFacts | undefined;
  if (sesFeedback && (sesFeedback.type === 'Bounce' || sesFeedback.type === 'Complaint')) {
    bounce = {
      fromSes: true,
      recipients: sesFeedback.recipients,
      originalMessageIds: sesFeedback.messageId ? [sesFeedback.messageId] : [],
      kind: sesFeedback.type === 'Complaint' ? 'complaint' : 'bounce',
      sns: true,
    };
  } else if (!sesFeedback && (isBounce(headers) || isComplaint(headers))) {
    bounce = parseBounce(body, block, parts);
  }
  const failedAuth = failedAuthentication(verdicts);
  if (bounce && failedAuth.length)
    bounce.untrusted = `sender authentication failed (${failedAuth.join(', ')}): delivered as received, not rewritten`;

  const facts: MailFacts = {
    block,
    subject: decodeHeader(first(headers, 'subject')),
    partTypes: types,
    bodyText: bodyText(body),
    verdicts,
    bounce,
    sesFeedback,
  };
  const automatic = automaticMail(facts);
  const decision = autoReplyDecision(facts, automatic);
  const forward = outsideForwardDecision(facts, automatic);
  const named = new Set(ADDRESSED.flatMap((n) => (headers.get(n) ?? []).flatMap((v) => addressList(v))));
  return {
    kind: 'email',
    summary: {
      messageId: clip(first(headers, 'message-id'), 300),
      from,
      sender: returnPath ?? from,
      subject: clip(facts.subject, 300),
      size: stored.length,
      recipients: choice.recipients,
      recipientSource: choice.source,
      loop: loopMarker
        ? `marker header present (processed by ${clip(loopMarker, 100)})`
        : hops > MAX_HOPS
          ? `${hops} Received headers: more than ${MAX_HOPS} hops, a mail loop`
          : undefined,
      bounce,
      autoReply: decision.reply ? { to: decision.to } : { skip: clip(decision.reason, 300)! },
      ...(automatic ? { automatic: { ...automatic, reason: clip(automatic.reason, 300)! } } : {}),
      ...(forward.allowed ? {} : { outsideForward: { skip: clip(forward.reason, 300)! } }),
      addressed: choice.recipients.filter((r) => named.has(r)),
      hops,
      ...(verdicts ? { verdicts } : {}),
      ...(verdicts?.spam === 'FAIL' ? { spam: true } : {}),
    },
  };
}

/** The decoded report parts (delivery status, feedback report, returned message) and the text body. */
async function reportParts(raw: Buffer): Promise<ReportParts & { text?: string }> {
  try {
    const parsed = await simpleParser(raw, {
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
      skipTextLinks: true,
    });
    const part = (re: RegExp) => parsed.attachments.find((a) => re.test(a.contentType))?.content.toString('utf8');
    const returned = parsed.attachments
      .filter((a) => /^(message\/(rfc822|global)|text\/rfc822-headers|message\/global-headers)$/i.test(a.contentType))
      .map((a) => a.content.subarray(0, SCAN_BYTES).toString('utf8'));
    return {
      deliveryStatus: part(/^message\/(global-)?delivery-status$/i),
      feedbackReport: part(/^message\/feedback-report$/i),
      texts: [...returned, ...(parsed.text ? [parsed.text.slice(0, SCAN_BYTES)] : [])],
      text: parsed.text,
    };
  } catch {
    return {}; // malformed MIME: the raw text is searched instead
  }
}
