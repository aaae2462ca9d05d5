// Which of our users an inbound email is for.
//
// SES notifications carry the envelope recipients (RCPT TO), and those are the truth:
// they include Bcc recipients and exclude addresses in To/Cc that were never sent to us.
// An S3 object alone has only headers. Then we take To, Cc, Delivered-To/X-Original-To
// and the `for <addr>` clause of the topmost Received header (SES writes the envelope
// recipient there when there is exactly one).
//
// Either way only addresses in the object's own domain count: SES stores a copy of the
// message in each served domain's bucket, and that domain's workflow delivers those.
// A Bcc recipient appears in none of these when the message had several envelope
// recipients, so without the notification such a recipient gets nothing: replay the
// SES notification (starters/process-object.ts --notification) to reach them.
import { addressesIn, domainOf, first, type Headers, isAddress } from './headers';

export interface RecipientChoice {
  recipients: string[];
  source: 'envelope' | 'headers';
  /** Addresses outside the object's domain (left to that domain's own copy). */
  foreign: string[];
}

export function chooseRecipients(opts: {
  envelope?: readonly string[];
  headers: Headers;
  domain: string;
}): RecipientChoice {
  const domain = opts.domain.toLowerCase();
  const ours = (a: string) => domainOf(a) === domain;
  let candidates: string[];
  let source: RecipientChoice['source'];
  if (opts.envelope && opts.envelope.length > 0) {
    candidates = opts.envelope.map((a) => a.trim().toLowerCase()).filter(isAddress);
    source = 'envelope';
  } else {
    const h = opts.headers;
    candidates = [
      ...['to', 'cc', 'delivered-to', 'x-original-to'].flatMap((n) => (h.get(n) ?? []).flatMap((v) => addressesIn(v))),
      ...receivedFor(first(h, 'received')),
    ];
    source = 'headers';
  }
  const unique = [...new Set(candidates)];
  return { recipients: unique.filter(ours), source, foreign: unique.filter((a) => !ours(a)) };
}

function receivedFor(received: string | undefined): string[] {
  const m = received?.match(/\bfor\s+<?([^\s<>;]+@[^\s<>;]+)>?/i);
  return m && isAddress(m[1]) ? [m[1].toLowerCase()] : [];
}
