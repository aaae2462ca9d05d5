// Turns raw message bytes into the facts the inbound workflow decides on. Pure apart
// from parsing; shared by the fetch activity, the corpus tests and the benchmark.
import { simpleParser } from 'mailparser';
import libmime from 'libmime';
import { autoReplyDecision } from './autoreply';
import { isBounce, parseBounce } from './bounce';
import { addressesIn, first, parseHeaderBlock } from './headers';
import type { FetchResult, InboundRef } from './inbound-types';
import { chooseRecipients } from './recipients';
import { LEGACY_LOOP_HEADER, LOOP_HEADER } from './status';

/**
 * More Received headers than this is a mail loop that lost our marker header on the way
 * (a forwarder that rebuilds headers): RFC 5321 section 6.3 counts hops; 50 is Postfix's
 * hopcount_limit, far above any honest path.
 */
export const MAX_HOPS = 50;

const clip = (s: string | undefined, n: number) => (s === undefined ? undefined : s.replace(/[\r\n]+/g, ' ').slice(0, n));

/** RFC 2047 encoded-words to text; a broken encoding leaves the raw text. */
export function decodeHeader(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

export async function summarizeEmail(raw: Buffer, ref: InboundRef): Promise<FetchResult> {
  const where = `s3://${ref.bucket}/${ref.key}`;
  const headers = parseHeaderBlock(raw);
  if (headers.size === 0) {
    return { kind: 'terminal', status: 'invalid', reason: `${where} has no header block: not an RFC 5322 message`, size: raw.length };
  }
  const choice = chooseRecipients({ envelope: ref.envelopeRecipients, headers, domain: ref.domain });
  if (choice.recipients.length === 0) {
    const named = choice.foreign.length ? ` (it names only ${choice.foreign.slice(0, 5).join(', ')})` : '';
    return { kind: 'terminal', status: 'invalid', reason: `${where} has no recipient in ${ref.domain} in its ${choice.source}${named}`, size: raw.length };
  }
  const from = addressesIn(first(headers, 'from'))[0];
  const returnPath = addressesIn(first(headers, 'return-path'))[0];
  const loopMarker = first(headers, LOOP_HEADER) ?? first(headers, LEGACY_LOOP_HEADER);
  const hops = headers.get('received')?.length ?? 0;

  let bounce;
  if (isBounce(headers)) {
    // Only bounces need the MIME structure: the delivery-status part may be encoded.
    let deliveryStatus: string | undefined;
    try {
      const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true });
      const part = parsed.attachments.find((a) => /^message\/(global-)?delivery-status$/i.test(a.contentType));
      deliveryStatus = part?.content.toString('utf8');
    } catch {
      /* malformed MIME: fall back to searching the raw text */
    }
    bounce = parseBounce(raw.toString('utf8'), headers, deliveryStatus);
  }
  const decision = autoReplyDecision(headers, '');
  return {
    kind: 'email',
    summary: {
      messageId: clip(first(headers, 'message-id'), 300),
      from,
      sender: returnPath ?? from,
      subject: clip(decodeHeader(first(headers, 'subject')), 300),
      size: raw.length,
      recipients: choice.recipients,
      recipientSource: choice.source,
      loop: loopMarker
        ? `marker header present (processed by ${clip(loopMarker, 100)})`
        : hops > MAX_HOPS
          ? `${hops} Received headers: more than ${MAX_HOPS} hops, a mail loop`
          : undefined,
      bounce,
      autoReply: bounce ? { skip: 'bounce or delivery report' } : decision.reply ? { to: decision.to } : { skip: decision.reason },
    },
  };
}
