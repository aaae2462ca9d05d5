// Text a server chose (IMAP folder names, NO/BAD texts, OAuth2 error descriptions) made safe
// for where mailroom puts it. Two rules, because the two places refuse different things:
//   valid      PostgreSQL's `text` refuses NUL ("invalid byte sequence for encoding UTF8:
//              0x00") and a UTF-16 surrogate without its partner cannot be UTF-8 at all (node-pg
//              silently turns it into U+FFFD, encodeURIComponent throws URIError). Both become
//              U+FFFD; nothing else changes, so a name already stored keeps its key.
//   printable  for a terminal, a log line or an error message an operator reads: also one line,
//              and no control character or escape sequence left to act on the terminal (colours,
//              cursor moves, OSC 8 links, window titles; the bidirectional overrides that make
//              text read differently from what it is). Escape sequences become one U+FFFD, other
//              controls U+FFFD, a run of line breaks and tabs one space.
// Pure functions, no I/O: unit-tested in test/unit/server-text.test.ts.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

// ECMA-48 sequences: CSI with parameters and a final byte; OSC, DCS, SOS, PM, APC strings up to
// BEL or ST (at most 512 characters, so one left open does not swallow the text); any other ESC
// with its next character. 7-bit forms (ESC ...) and, for terminals only, the 8-bit C1 forms
// (U+009B CSI, U+009D OSC, ...): in stored content a lone C1 character is more often a
// mis-decoded windows-1252 byte than a sequence, and is only removed (lib/sync-store/storable.ts).
function escapeSequences(c1: boolean): RegExp {
  const csi = c1 ? String.raw`(?:\u001B\[|\u009B)` : String.raw`\u001B\[`;
  const str = c1 ? String.raw`(?:\u001B[\]PX^_]|[\u0090\u0098\u009D\u009E\u009F])` : String.raw`\u001B[\]PX^_]`;
  return new RegExp(
    [
      String.raw`${csi}[\u0030-\u003F]*[\u0020-\u002F]*[\u0040-\u007E]?`,
      String.raw`${str}[^\u0007\u001B\u009C]{0,512}(?:\u0007|\u001B\\|\u009C)?`,
      String.raw`\u001B[\u0020-\u007E]?`,
    ].join('|'),
    'g',
  );
}
const ESCAPE_SEQUENCE = escapeSequences(true);
const ESCAPE_SEQUENCE_7BIT = escapeSequences(false);
// eslint-disable-next-line no-control-regex
const LINE_BREAKS = /[\t\n\r\u000B\u000C\u0085\u2028\u2029]+/g;
// C0, DEL, C1, and the Unicode format characters that reorder or hide text.
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

/** Cuts at `maxLength` code units without leaving half a surrogate pair. */
function cut(value: string, maxLength: number): string {
  if (value.length <= maxLength) return value;
  let out = value.slice(0, Math.max(0, maxLength - 1));
  if (/[\uD800-\uDBFF]$/.test(out)) out = out.slice(0, -1);
  return `${out}…`;
}

/** Valid for a PostgreSQL `text` value and for UTF-8: NUL and lone surrogates become U+FFFD, nothing else changes. */
export function validText(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/\u0000/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
}

/** Removes whole escape sequences (not just their ESC, which would leave "[31m" behind); for stored content. */
export function withoutEscapeSequences(value: string): string {
  return value.replace(ESCAPE_SEQUENCE_7BIT, '');
}

/** One printable line: valid, escape sequences and control characters neutralised, at most `maxLength` characters. */
export function printableText(value: string, maxLength = Infinity): string {
  const out = validText(value).replace(ESCAPE_SEQUENCE, '\uFFFD').replace(LINE_BREAKS, ' ').replace(CONTROLS, '\uFFFD');
  return cut(out, maxLength);
}

/** Longest server text kept in an error message or a recorded reason. */
export const SERVER_TEXT_LIMIT = 2000;

/** Anything a server or a library said (a string, an Error, nothing), as a bounded printable line for messages, logs and recorded errors. */
export function serverText(value: unknown, maxLength = SERVER_TEXT_LIMIT): string {
  const text =
    typeof value === 'string'
      ? value
      : value instanceof Error
        ? value.message
        : value === null || value === undefined
          ? ''
          : String(value);
  return printableText(text, maxLength).trim();
}

/**
 * The key a folder is stored under (folder_sync_state, messages, sync_errors): the server's
 * name made valid. IMAP commands keep using the server's own name; only what is stored changes.
 */
export function folderKey(path: string): string {
  return validText(path);
}

/** How a folder is named in messages and on terminals: printable, quoted by the caller. */
export function folderLabel(path: string): string {
  return printableText(path, 200);
}

/**
 * Folders whose key is already taken by an earlier folder of the list (two server names that
 * differ only in what folderKey replaces, e.g. a NUL and a real U+FFFD): each such path, with
 * the path that has the key. Those cannot be stored apart and are not synced.
 */
export function folderKeyClashes(paths: string[]): Map<string, string> {
  const owner = new Map<string, string>();
  const clashes = new Map<string, string>();
  for (const path of paths) {
    const key = folderKey(path);
    const first = owner.get(key);
    if (first === undefined) owner.set(key, path);
    else if (first !== path) clashes.set(path, first);
  }
  return clashes;
}
