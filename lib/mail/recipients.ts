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
import { addressList, domainOf, normalizeAddress } from './address';
import { first, type Headers } from './headers';

export interface RecipientChoice {
  recipients: string[];
  source: 'envelope' | 'headers';
  /** Addresses outside the object's domain (left to that domain's own copy). */
  foreign: string[];
  /** Envelope entries that are not deliverable addresses (lib/mail/address.ts), as given. */
  unusable: string[];
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
  const unusable: string[] = [];
  if (opts.envelope && opts.envelope.length > 0) {
    candidates = [];
    for (const given of opts.envelope) {
      const a = normalizeAddress(given);
      if (a) candidates.push(a);
      else unusable.push(given.replace(/[\r\n]+/g, ' ').slice(0, 100));
    }
    source = 'envelope';
  } else {
    const h = opts.headers;
    candidates = [
      ...['to', 'cc', 'delivered-to', 'x-original-to'].flatMap((n) => (h.get(n) ?? []).flatMap((v) => addressList(v))),
      ...receivedFor(first(h, 'received')),
    ];
    source = 'headers';
  }
  const unique = [...new Set(candidates)];
  return { recipients: unique.filter(ours), source, foreign: unique.filter((a) => !ours(a)), unusable };
}

function receivedFor(received: string | undefined): string[] {
  const m = received?.match(/\bfor\s+<?([^\s<>;]{1,320})>?/i);
  const a = m ? normalizeAddress(m[1]) : undefined;
  return a ? [a] : [];
}
