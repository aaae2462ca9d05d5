// What leaves mailroom over SMTP, LMTP or SES is the stored message with valid line
// endings (CRLF: RFC 5321 section 2.3.8; SES wants the same) and our header edits, and
// otherwise the stored bytes. SES stores mail as it arrived, so a message with bare-LF or
// bare-CR lines is written out with CRLF here, not passed on as is.
import { readHeaderBlock } from './headers';

const CRLF = Buffer.from('\r\n');

/** Every line break (CRLF, bare LF, bare CR) as CRLF. Returns the input when it has no other kind. */
export function toCrlf(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  let i = 0;
  let changed = false;
  while (i < raw.length) {
    const b = raw[i];
    if (b === 0x0d) {
      if (raw[i + 1] === 0x0a) {
        i += 2;
        continue;
      }
      parts.push(raw.subarray(from, i), CRLF); // bare CR
      changed = true;
      from = ++i;
    } else if (b === 0x0a) {
      parts.push(raw.subarray(from, i), CRLF); // bare LF
      changed = true;
      from = ++i;
    } else i++;
  }
  if (!changed) return raw;
  parts.push(raw.subarray(from));
  return Buffer.concat(parts);
}

export interface HeaderEdit {
  /** Header lines put on top, in this order: [name, value]; values must be single-line. */
  add?: readonly (readonly [string, string])[];
  /** Field names (any case) dropped from the stored header. */
  remove?: readonly string[];
}

/**
 * The stored message rebuilt for sending: added fields first, the stored fields that are
 * not removed, one empty line, the body; all with CRLF line endings. A header block the
 * reader ended without an empty line gets one, so the body cannot be read as headers.
 */
export function outgoingMessage(raw: Buffer, edit: HeaderEdit = {}): Buffer {
  const block = readHeaderBlock(raw);
  const remove = new Set((edit.remove ?? []).map((n) => n.toLowerCase()));
  const out: Buffer[] = [];
  for (const [name, value] of edit.add ?? []) out.push(Buffer.from(`${name}: ${singleLine(value)}\r\n`, 'utf8'));
  for (const f of block.fields) {
    if (remove.has(f.name)) continue;
    const bytes = toCrlf(raw.subarray(f.start, f.end));
    out.push(bytes);
    if (!endsWithCrlf(bytes)) out.push(CRLF); // the last field of a message without a body
  }
  out.push(CRLF, toCrlf(raw.subarray(block.bodyStart)));
  return Buffer.concat(out);
}

/** A header value cannot carry a line break (header injection): any CR/LF run becomes a space. */
export function singleLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ');
}

function endsWithCrlf(b: Buffer): boolean {
  return b.length >= 2 && b[b.length - 2] === 0x0d && b[b.length - 1] === 0x0a;
}
