// One normal form for an email address, used for the recipient list, the SMTP envelope,
// the delivery log, the blocklist and the per-recipient results alike. The parser is
// nodemailer's (the one that builds the SMTP envelope), so what we list is exactly what is
// sent: `"q"@example.com` and `a(comment)@example.com` are `q@example.com` and
// `a@example.com` everywhere, and a result always matches its recipient.
import addressparser from 'nodemailer/lib/addressparser';

// RFC 5322 atext, plus any non-ASCII character (RFC 6532).
const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uffff-]+$/;
const LABEL = /^(?!-)[a-z0-9\u0080-\uffff-]{1,63}(?<!-)$/;

/**
 * The normal form of one address (lower case, no quotes or comments), or undefined when it
 * is not a deliverable mailbox: a local part that needs quoting (spaces, "@", line breaks),
 * an address literal, a domain without a dot, or longer than SMTP allows (RFC 5321 4.5.3.1).
 */
export function normalizeAddress(input: string | undefined): string | undefined {
  if (!input) return undefined;
  let parsed: ReturnType<typeof addressparser>;
  try {
    parsed = addressparser(input.trim());
  } catch {
    return undefined;
  }
  const one = parsed.length === 1 && 'address' in parsed[0] ? parsed[0].address : undefined;
  return one ? checked(one) : undefined;
}

function checked(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0) return undefined;
  const local = address.slice(0, at);
  const domain = address
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, '');
  if (local.length > 64 || domain.length > 253 || !local.split('.').every((atom) => ATOM.test(atom))) return undefined;
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return undefined;
  return `${local.toLowerCase()}@${domain}`;
}

/** Every deliverable address in an address-list header value (groups flattened), normalised, in order, once each. */
export function addressList(value: string | undefined): string[] {
  if (!value) return [];
  const out = new Set<string>();
  const walk = (entries: ReturnType<typeof addressparser>) => {
    for (const e of entries) {
      if ('group' in e && e.group) walk(e.group);
      else if ('address' in e && e.address) {
        const a = checked(e.address);
        if (a) out.add(a);
      }
    }
  };
  try {
    walk(addressparser(value));
  } catch {
    /* an unparseable header yields no address; the caller decides what that means */
  }
  return [...out];
}

export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

export function localPartOf(address: string): string {
  return address.slice(0, address.lastIndexOf('@')).toLowerCase();
}

/** One entry of an address list as written, with its normal form when it is a deliverable mailbox. */
export interface ParsedMailbox {
  /** The display name, '' when none. */
  name: string;
  /** The normal form, or undefined when the entry is not a deliverable mailbox. */
  address: string | undefined;
  /** The entry as the parser read it (for error messages). */
  input: string;
}

/**
 * Every entry of an address list (groups flattened), in order, each with its normal form or
 * undefined: unlike addressList, nothing is dropped silently, so a sender can be told which
 * recipient is wrong. Undefined when the value cannot be parsed at all.
 */
export function mailboxList(value: string): ParsedMailbox[] | undefined {
  let parsed: ReturnType<typeof addressparser>;
  try {
    parsed = addressparser(value);
  } catch {
    return undefined;
  }
  const out: ParsedMailbox[] = [];
  const walk = (entries: ReturnType<typeof addressparser>) => {
    for (const e of entries) {
      if ('group' in e && e.group) walk(e.group);
      else {
        const raw = 'address' in e ? (e.address ?? '') : '';
        const name = e.name ?? '';
        out.push({ name, address: raw ? checked(raw) : undefined, input: raw || name });
      }
    }
  };
  walk(parsed);
  return out;
}

// Anything shaped like local@domain.tld, with or without angle brackets.
const ADDRESS_IN_TEXT = /<?[^\s<>@"'(),;:]+@[A-Za-z0-9\u0080-\uffff.-]+\.[A-Za-z\u0080-\uffff]{2,}>?/g;

/**
 * The text with every email address replaced by `<address>`: server replies ("550 5.1.1
 * <bob@example.com>: no such user") made fit for workflow results and history, which hold no
 * addresses. The full reply stays where the user's data is (the outbox row).
 */
export function redactAddresses(text: string): string {
  return text.replace(ADDRESS_IN_TEXT, '<address>');
}
