// IMAP flags in one canonical form. System flags are case-insensitive (RFC 3501 §2.3.2: "\Seen"
// and "\seen" are the same flag) and servers differ in the case they send; stored as sent, a
// filter on `\Seen` missed every message of a server that answers `\seen`. System flags are
// stored with the RFC's spelling; keywords (any other flag) stay as sent, since a keyword's
// case is its owner's choice. migrations/003_search.sql mirrors this in SQL
// (mailroom_canonical_flag) for rows written by anything else; a test compares the two.
//
// Pure functions, no I/O: unit-tested in test/unit/search-flags.test.ts.

export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '\\Recent'] as const;
export type SystemFlag = (typeof SYSTEM_FLAGS)[number];

const BY_LOWER = new Map<string, SystemFlag>(SYSTEM_FLAGS.map((f) => [f.toLowerCase(), f]));

/** `\seen`, `\SEEN` → `\Seen`; any other flag unchanged. */
export function canonicalFlag(flag: string): string {
  // toLowerCase, not a locale-aware fold: only ASCII flags can be system flags.
  return flag.startsWith('\\') ? (BY_LOWER.get(flag.toLowerCase()) ?? flag) : flag;
}

/** Canonical, each flag once, sorted (the order the store keeps and compares). */
export function canonicalFlags(flags: readonly string[]): string[] {
  return [...new Set(flags.map(canonicalFlag))].sort();
}

/** True for `\Recent` in any case: a flag of one IMAP session, never stored. */
export function isRecentFlag(flag: string): boolean {
  return flag.toLowerCase() === '\\recent';
}
