// Text from mail (subjects, addresses, folder names) on an operator's terminal. Anyone who can
// send a user a mail chooses those strings, so nothing in them may move the cursor, recolour,
// retitle or clear the terminal, or reorder the line: C0 and C1 controls (ESC, and CSI U+009B
// as much as ESC [), DEL, the Unicode bidirectional overrides and isolates, and line separators.
//
// Pure functions, no I/O: unit-tested in test/unit/search-flags.test.ts.

// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]/g;
// Characters JSON.stringify leaves raw that a terminal may still act on (it escapes only C0).
const RAW_IN_JSON = /[\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]/g;
// ESC [ parameters intermediates final: the whole sequence goes, so no "[31m" is left behind.
// eslint-disable-next-line no-control-regex
const CSI_SEQUENCE = /(\u001B\[|\u009B)[0-?]*[ -/]*[@-~]/g;

/** One table cell: controls and escape sequences replaced, at most `width` characters (… marks a cut). */
export function printable(value: string | null | undefined, width = Infinity): string {
  const text = (value ?? '').replace(CSI_SEQUENCE, '').replace(UNPRINTABLE, ' ');
  const chars = [...text];
  return chars.length > width ? `${chars.slice(0, Math.max(0, width - 1)).join('')}…` : text;
}

/** Pretty JSON in which no string carries a raw control, bidi override or line separator. */
export function printableJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    RAW_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
