// The one reader of a message's header block. Everything that decides on headers (loops,
// auto-replies, bounces, recipients) and everything that rewrites them (delivery, bounce
// rewrite, forwards) reads the block through readHeaderBlock, so they agree on where the
// headers end whatever the line endings: CRLF, LF, bare CR, or a mix of them. Pure: no
// I/O, safe in tests and activities alike.
import { addressList, normalizeAddress } from './address';

export type Headers = ReadonlyMap<string, readonly string[]>;

export interface HeaderField {
  /** Lower-cased field name. */
  name: string;
  /** Unfolded value, trimmed. */
  value: string;
  /** Byte offsets in the raw message: the field's first line, and just past its last line break. */
  start: number;
  end: number;
}

export interface HeaderBlock {
  fields: HeaderField[];
  headers: Headers;
  /** Byte offset where the body starts (after the empty line, if there is one). */
  bodyStart: number;
  /**
   * Why the block cannot be read with confidence, when it cannot: then nothing automatic
   * (auto-reply, outside forward) may act on it; it is still delivered as stored.
   */
  doubt?: string;
}

/** A header block larger than this is not one (RFC 5322 has no limit; real ones are far smaller). */
export const MAX_HEADER_BYTES = 1024 * 1024;
// RFC 5322 fields that occur at most once; two of them make the message ambiguous (which
// From does a mail client show, which Content-Type does a parser take?).
const SINGLE = ['from', 'sender', 'content-type'];
const CR = 0x0d;
const LF = 0x0a;

/**
 * Reads the header block: lines end at CRLF, a bare LF or a bare CR. The block ends at the
 * first empty line; a line that is neither a header field nor a folded continuation also
 * ends it (that line is the start of the body, as Postfix reads such mail), and so does
 * MAX_HEADER_BYTES. A leading mbox "From " line is skipped.
 */
export function readHeaderBlock(input: Buffer | string): HeaderBlock {
  const raw = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const fields: HeaderField[] = [];
  const doubts: string[] = [];
  let current: { name: string; parts: string[]; start: number; end: number } | undefined;
  const flush = () => {
    if (current)
      fields.push({
        name: current.name,
        value: current.parts.join(' ').trim(),
        start: current.start,
        end: current.end,
      });
    current = undefined;
  };
  let pos = 0;
  let bodyStart = raw.length;
  let lineNo = 0;
  while (pos < raw.length) {
    if (pos >= MAX_HEADER_BYTES) {
      doubts.push(`header block longer than ${MAX_HEADER_BYTES} bytes`);
      bodyStart = pos;
      break;
    }
    let eol = pos;
    while (eol < raw.length && raw[eol] !== CR && raw[eol] !== LF) eol++;
    const next = eol >= raw.length ? raw.length : raw[eol] === CR && raw[eol + 1] === LF ? eol + 2 : eol + 1;
    lineNo++;
    if (eol === pos) {
      bodyStart = next; // the empty line
      break;
    }
    const line = raw.subarray(pos, eol);
    if (line.includes(0)) doubts.push(`NUL byte in header line ${lineNo}`);
    if (line[0] === 0x20 || line[0] === 0x09) {
      if (!current) {
        bodyStart = pos;
        break;
      }
      current.parts.push(line.toString('utf8').trim());
      current.end = next;
    } else {
      const colon = fieldNameEnd(line);
      if (colon < 0) {
        if (lineNo === 1 && line.subarray(0, 5).toString('latin1') === 'From ') {
          pos = next; // mbox separator, not part of the message
          continue;
        }
        if (fields.length > 0 || current)
          doubts.push(`line ${lineNo} is neither a header field nor a folded line (no empty line before the body)`);
        bodyStart = pos;
        break;
      }
      flush();
      current = {
        name: line.subarray(0, colon).toString('latin1').trim().toLowerCase(),
        parts: [line.subarray(colon + 1).toString('utf8')],
        start: pos,
        end: next,
      };
    }
    pos = next;
  }
  flush();
  const map = new Map<string, string[]>();
  for (const f of fields) {
    const list = map.get(f.name);
    if (list) list.push(f.value);
    else map.set(f.name, [f.value]);
  }
  for (const name of SINGLE)
    if ((map.get(name)?.length ?? 0) > 1) doubts.push(`${map.get(name)!.length} ${name} fields`);
  return { fields, headers: map, bodyStart, doubt: doubts.length ? doubts.join('; ') : undefined };
}

/**
 * Index of the colon that ends a field name, or -1: RFC 5322 field names are printable
 * US-ASCII except the colon (ftext), optionally followed by spaces (obsolete syntax).
 */
function fieldNameEnd(line: Buffer): number {
  let i = 0;
  while (i < line.length && i < 256 && line[i] >= 33 && line[i] <= 126 && line[i] !== 0x3a) i++;
  if (i === 0) return -1;
  let j = i;
  while (j < line.length && (line[j] === 0x20 || line[j] === 0x09)) j++;
  return line[j] === 0x3a ? j : -1;
}

/** The header fields only (the first value of each name comes first). */
export function parseHeaderBlock(raw: Buffer | string): Headers {
  return readHeaderBlock(raw).headers;
}

export function first(headers: Headers, name: string): string | undefined {
  return headers.get(name.toLowerCase())?.[0];
}

export function has(headers: Headers, name: string): boolean {
  return (headers.get(name.toLowerCase())?.length ?? 0) > 0;
}

/** Normalised addresses in an address header value (lib/mail/address.ts); groups flattened, junk dropped. */
export function addressesIn(value: string | undefined): string[] {
  return addressList(value);
}

/** Whether `s` is one deliverable address as it stands. */
export function isAddress(s: string): boolean {
  return normalizeAddress(s) !== undefined && !/[\s<>(),;"]/.test(s);
}
