// Blocklist patterns: `*@spam.example`, `newsletter-*@*.shop`, `bad@x.org`; case-insensitive,
// `*` matches any run of characters and `?` one character. picomatch does the matching;
// the options make it treat an address as one string, not a path.
import picomatch from 'picomatch';

const cache = new Map<string, (s: string) => boolean>();

function matcherFor(pattern: string): (s: string) => boolean {
  let m = cache.get(pattern);
  if (!m) {
    // Addresses have no path separators; escape brackets and braces so only * and ? are special.
    const escaped = pattern.trim().toLowerCase().replace(/[[\]{}()!+]/g, (c) => `\\${c}`);
    m = picomatch(escaped, { nocase: true, dot: true, noextglob: true, nobrace: true, contains: false });
    cache.set(pattern, m);
  }
  return m;
}

export function matchesPattern(address: string, pattern: string): boolean {
  const a = address.trim().toLowerCase();
  if (!a || !pattern.trim()) return false;
  // picomatch stops `*` at `/`; an address may legally contain one, so compare without it.
  return matcherFor(pattern.replaceAll('/', '\u0001'))(a.replaceAll('/', '\u0001'));
}

/** The first pattern that blocks `sender`, or undefined. */
export function findBlockingPattern(sender: string, patterns: readonly string[]): string | undefined {
  return patterns.find((p) => matchesPattern(sender, p));
}
