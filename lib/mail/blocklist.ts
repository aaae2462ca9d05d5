// Blocklist patterns: `*@spam.example`, `newsletter-*@*.shop`, `bad@x.org`; case-insensitive,
// `*` matches any run of characters and `?` one character, nothing else is special.
//
// Matched without backtracking: the pattern is cut at its stars into literal pieces (with
// `?`), the first piece must start the address, the last must end it, and each piece in
// between is taken at its leftmost place after the previous one. Leftmost is always right
// for `*`-separated pieces, so the search only moves forward: at most (address length x
// piece length) comparisons per piece, with both capped. A pattern like `*a*a*a*a*a*a*z`
// against an 80-character sender costs microseconds, not the seconds a backtracking glob
// engine spends.

/** Longer patterns are ignored: no address (RFC 5321: 64 + 1 + 255) needs more. */
export const MAX_PATTERN_LENGTH = 320;
/** At most this many patterns of one recipient are checked. */
export const MAX_PATTERNS = 1000;
/** A longer "sender" is not an address; only its first characters are matched. */
export const MAX_ADDRESS_LENGTH = 512;

interface Compiled {
  /** The pattern cut at its stars; a pattern without a star is one piece. */
  pieces: string[];
}

const cache = new Map<string, Compiled | null>();

function compile(pattern: string): Compiled | null {
  let c = cache.get(pattern);
  if (c !== undefined) return c;
  const p = pattern.trim().toLowerCase();
  if (!p || p.length > MAX_PATTERN_LENGTH) c = null;
  else c = { pieces: p.split('*') };
  if (cache.size > 10_000) cache.clear();
  cache.set(pattern, c);
  return c;
}

/** Whether `piece` (with `?` wildcards) matches `s` at `at`. */
function matchesAt(s: string, at: number, piece: string): boolean {
  if (at + piece.length > s.length) return false;
  for (let i = 0; i < piece.length; i++) if (piece[i] !== '?' && piece[i] !== s[at + i]) return false;
  return true;
}

/** Leftmost index >= from where `piece` matches, or -1. */
function find(s: string, from: number, piece: string): number {
  if (!piece.includes('?')) return s.indexOf(piece, from);
  for (let at = from; at + piece.length <= s.length; at++) if (matchesAt(s, at, piece)) return at;
  return -1;
}

export function matchesPattern(address: string, pattern: string): boolean {
  const a = address.trim().toLowerCase().slice(0, MAX_ADDRESS_LENGTH);
  const c = compile(pattern);
  if (!a || !c) return false;
  const { pieces } = c;
  if (pieces.length === 1) return a.length === pieces[0].length && matchesAt(a, 0, pieces[0]);
  const head = pieces[0];
  const tail = pieces[pieces.length - 1];
  if (head.length + tail.length > a.length) return false;
  if (!matchesAt(a, 0, head) || !matchesAt(a, a.length - tail.length, tail)) return false;
  let pos = head.length;
  const end = a.length - tail.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i];
    if (!piece) continue;
    const at = find(a, pos, piece);
    if (at < 0 || at + piece.length > end) return false;
    pos = at + piece.length;
  }
  return true;
}

/** The first pattern that blocks `sender`, or undefined. */
export function findBlockingPattern(sender: string, patterns: readonly string[]): string | undefined {
  return patterns.slice(0, MAX_PATTERNS).find((p) => matchesPattern(sender, p));
}
