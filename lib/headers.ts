// A read-only view of a message's header block, built from the raw bytes so that
// decisions (loops, auto-replies, bounces) see exactly what the sender wrote,
// malformed or not. Pure: no I/O, safe in tests and activities alike.
import addressparser from 'nodemailer/lib/addressparser';

export type Headers = ReadonlyMap<string, readonly string[]>;

/** Splits raw message bytes at the first empty line and unfolds the header lines. */
export function parseHeaderBlock(raw: Buffer | string): Headers {
  const text = typeof raw === 'string' ? raw : raw.subarray(0, headerEnd(raw)).toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  const block = end === -1 ? text : text.slice(0, end);
  const map = new Map<string, string[]>();
  let current: { name: string; value: string } | undefined;
  const flush = () => {
    if (!current) return;
    const list = map.get(current.name) ?? [];
    list.push(current.value.trim());
    map.set(current.name, list);
    current = undefined;
  };
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && current) {
      current.value += ' ' + line.trim();
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    if (colon > 0) current = { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1) };
  }
  flush();
  return map;
}

function headerEnd(raw: Buffer): number {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const ends = [crlf, lf].filter((i) => i >= 0);
  return ends.length ? Math.min(...ends) + 4 : raw.length;
}

export function first(headers: Headers, name: string): string | undefined {
  return headers.get(name.toLowerCase())?.[0];
}

export function has(headers: Headers, name: string): boolean {
  return (headers.get(name.toLowerCase())?.length ?? 0) > 0;
}

/** Bare, lower-cased addresses in an address header value; groups flattened, junk dropped. */
export function addressesIn(value: string | undefined): string[] {
  if (!value) return [];
  const out: string[] = [];
  const walk = (entries: ReturnType<typeof addressparser>) => {
    for (const e of entries) {
      if ('group' in e && e.group) walk(e.group);
      else if ('address' in e && e.address && isAddress(e.address)) out.push(e.address.toLowerCase());
    }
  };
  try {
    walk(addressparser(value));
  } catch {
    /* an unparseable header yields no address; the caller decides what that means */
  }
  return [...new Set(out)];
}

export function isAddress(s: string): boolean {
  return /^[^\s@<>,;]+@[^\s@<>,;]+\.[^\s@<>,;]+$/.test(s);
}

export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}
