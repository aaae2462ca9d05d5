// Values from an IMAP server made storable in PostgreSQL. Anyone who can send a user a mail
// controls its headers: a Subject of `=?UTF-8?B?AA==?=` decodes to a NUL character, which
// PostgreSQL refuses in `text` ("invalid byte sequence for encoding UTF8: 0x00"), and one such
// row used to roll back its whole batch. Every text field is cleaned here before it is stored;
// what still fails is skipped per message by the store (lib/sync-store/messages.ts).
//
// Pure functions, no I/O: unit-tested in test/unit/storable.test.ts.

import { withoutEscapeSequences } from '../imap/server-text';

// C0 control characters except tab (0x09) and newline (0x0A), DEL and the C1 controls (U+009B
// is a terminal's CSI as much as ESC [ is). CR goes too: headers arrive unfolded, so a CR left
// in a value is an artefact or an attack, never content. Whole escape sequences go first, so a
// colour code leaves no "[31m" behind (lib/imap/server-text.ts).
// eslint-disable-next-line no-control-regex
const CONTROLS_EXCEPT_TAB_LF = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;
// A UTF-16 surrogate without its partner cannot be encoded as UTF-8 at all.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text fit for a PostgreSQL `text` column and a terminal: escape sequences and controls (but tab and newline) removed, unencodable code units replaced, at most `maxLength` characters. */
export function cleanText(value: string, maxLength = Infinity): string {
  let out = withoutEscapeSequences(value).replace(CONTROLS_EXCEPT_TAB_LF, '').replace(LONE_SURROGATE, '\uFFFD');
  if (out.length > maxLength) {
    out = out.slice(0, maxLength);
    // Do not leave half a surrogate pair at the cut.
    if (/[\uD800-\uDBFF]$/.test(out)) out = out.slice(0, -1);
  }
  return out;
}

/** cleanText for optional values; undefined and null stay null. */
export function cleanOptionalText(value: string | null | undefined, maxLength = Infinity): string | null {
  return value === null || value === undefined ? null : cleanText(String(value), maxLength);
}

/**
 * Text decoded from bytes a server sent: invalid UTF-8 sequences become U+FFFD (the WHATWG
 * decoder's rule), then cleanText applies.
 */
export function cleanBytes(value: Buffer, maxLength = Infinity): string {
  return cleanText(new TextDecoder('utf-8', { fatal: false }).decode(value), maxLength);
}

/**
 * A date PostgreSQL's timestamptz can hold and a reader can use, or null. JavaScript dates
 * reach year ±275760; a forged Date header can name any of them.
 */
export function storableDate(value: Date | string | null | undefined): Date | null {
  if (value === null || value === undefined || value === '') return null;
  const d = value instanceof Date ? value : new Date(value);
  const t = d.getTime();
  if (Number.isNaN(t)) return null;
  const year = d.getUTCFullYear();
  return year >= 1 && year <= 9999 ? d : null;
}

const INT32_MAX = 2 ** 31 - 1;
const INT64_MAX = (1n << 63n) - 1n;

/** A non-negative count for an `integer` column, or null when the server's number does not fit. */
export function storableInt32(value: number | null | undefined): number | null {
  if (value === null || value === undefined || !Number.isInteger(value) || value < 0 || value > INT32_MAX) return null;
  return value;
}

/** A non-negative decimal string for a `bigint` column (mod-sequences), or null. */
export function storableBigint(value: string | bigint | number | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  let n: bigint;
  try {
    n = BigInt(value);
  } catch {
    return null;
  }
  return n >= 0n && n <= INT64_MAX ? n.toString() : null;
}

/** Limits on header-derived fields; RFC 5322 lines are at most 998 characters. */
export const FIELD_LIMITS = {
  messageId: 998,
  address: 998,
  subject: 4000,
  flag: 255,
  /** Recipients kept per message; the raw source keeps all of them. */
  recipients: 1000,
  flags: 200,
} as const;
