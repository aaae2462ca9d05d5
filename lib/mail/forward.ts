// A forward to an address outside our domains leaves through SES (or the relay), which sends
// only from verified identities, and its receiver applies DMARC to the From domain. So the
// copy is sent in our name: From becomes the forwarding recipient ("Original Name via
// example.com" <erin@example.com>), the original sender stays reachable through Reply-To
// (unless the message has one) and is recorded in X-Original-From, and the headers that
// would now lie (Return-Path, Sender, DKIM-Signature) are dropped. Pure.
import libmime from 'libmime';
import { encodeWords } from 'nodemailer/lib/mime-funcs';
import { addressList, domainOf } from './address';
import { first, readHeaderBlock } from './headers';
import { outgoingMessage, singleLine } from './outgoing';
import { LOOP_HEADER } from '../../contracts/email-status';

export const SPAM_HEADER = 'X-Mailroom-Spam';

/** Headers a forward in our name must not carry on: they vouch for the original sender or path. */
const LYING = ['return-path', 'sender', 'dkim-signature', 'x-original-from', SPAM_HEADER.toLowerCase()];

/** A display name fit for a header: decoded, control characters gone (no header injection), at most 64 characters. */
export function displayName(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let text = raw;
  try {
    text = libmime.decodeWords(raw);
  } catch {
    /* keep the raw text */
  }
  const clean = text
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 64);
  return clean || undefined;
}

/** `"Name" <address>`, the name quoted, or RFC 2047-encoded when it is not ASCII. */
export function formatAddress(name: string, address: string): string {
  const phrase = /[^\x20-\x7e]/.test(name) ? encodeWords(name, 'Q', 52, true) : `"${name.replace(/["\\]/g, '\\$&')}"`;
  return `${phrase} <${address}>`;
}

/** The stored message as it is forwarded outside our domains by `recipient`. */
export function outsideForward(raw: Buffer, opts: { recipient: string; marker: string; spam?: boolean }): Buffer {
  const { headers } = readHeaderBlock(raw);
  const originalFrom = first(headers, 'from');
  // The address as lib/mail/address.ts reads it; the name as written before it (an encoded word
  // may hold anything, a colon included, so the name is not left to the address parser).
  const address = addressList(originalFrom)[0];
  const lt = originalFrom?.lastIndexOf('<') ?? -1;
  const rawName =
    lt > 0
      ? originalFrom!
          .slice(0, lt)
          .trim()
          .replace(/^"(.*)"$/, '$1')
          .replace(/\\(.)/g, '$1')
      : undefined;
  const who = displayName(rawName) ?? address ?? 'unknown sender';
  const add: [string, string][] = [
    [LOOP_HEADER, `${opts.marker}; forwarded-for=${opts.recipient}`],
    ['From', formatAddress(`${who} via ${domainOf(opts.recipient)}`, opts.recipient)],
  ];
  const keepsReplyTo = (headers.get('reply-to')?.length ?? 0) > 0;
  if (!keepsReplyTo && originalFrom && address) add.push(['Reply-To', singleLine(originalFrom)]);
  if (originalFrom) add.push(['X-Original-From', singleLine(originalFrom)]);
  if (opts.spam) add.push([SPAM_HEADER, 'yes']);
  return outgoingMessage(raw, { add, remove: ['from', ...LYING] });
}

/** The stored message as delivered or forwarded within our domains: our marker, our spam mark, nothing else changed. */
export function internalCopy(raw: Buffer, opts: { marker?: string; spam?: boolean }): Buffer {
  const add: [string, string][] = [];
  if (opts.marker) add.push([LOOP_HEADER, opts.marker]);
  if (opts.spam) add.push([SPAM_HEADER, 'yes']);
  return outgoingMessage(raw, { add, remove: [SPAM_HEADER] });
}
