// When a scheduled send goes out, as an operator or a front end writes it: an ISO 8601 time
// with its zone (2026-12-24T09:00:00Z, 2026-12-24T10:00+01:00) or a delay from now (+10m,
// +90s, +2h, +1d). A time without a zone is refused rather than guessed: the command runs on a
// server whose zone is rarely the user's, and mail sent an hour off is not undone.
//
// Pure functions, no I/O: unit-tested in test/unit/outbox-input.test.ts.

/** Invalid input from a user or front end (a usage error for the starters, a 400 for a web front end). */
export class OutboxInputError extends Error {
  override name = 'OutboxInputError';
}

/** A time this far in the past is a mistake, not "now": the clock of a front end may be a little behind. */
export const PAST_TOLERANCE_MS = 60_000;
/** Further ahead than this is refused: a year covers every reminder, and a typo (2062) does not wait for decades. */
export const MAX_DELAY_MS = 366 * 86_400_000;

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const RELATIVE = /^\+\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)$/i;
// Date and time with seconds and fractions optional, and a zone: Z or ±hh:mm (±hhmm, ±hh).
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;
const ISO_WITHOUT_ZONE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$/;

/**
 * The moment `value` names, checked: not more than a minute in the past (a time a little in the
 * past means "now" and is returned as `now`), not more than a year ahead.
 */
export function parseSendTime(value: string, now: Date = new Date()): Date {
  const v = value.trim();
  let at: Date;
  const rel = RELATIVE.exec(v);
  if (rel) {
    at = new Date(now.getTime() + Number(rel[1]) * UNIT_MS[rel[2].toLowerCase()]);
  } else if (ISO_WITH_ZONE.test(v)) {
    // Date understands ±hhmm and ±hh only in some engines: write the zone as ±hh:mm first.
    const normal = v
      .replace(' ', 'T')
      .replace(/([+-]\d{2})(\d{2})?$/, (_, h: string, m?: string) => `${h}:${m ?? '00'}`);
    at = new Date(normal);
  } else if (ISO_WITHOUT_ZONE.test(v)) {
    throw new OutboxInputError(
      `${value} has no time zone: add one (${v.includes('T') || v.includes(' ') ? v.replace(' ', 'T') : `${v}T09:00`}Z for UTC, or +01:00) or give a delay such as +10m`,
    );
  } else {
    throw new OutboxInputError(
      `${value} is not a time: use an ISO 8601 time with its zone (2026-12-24T09:00:00Z, 2026-12-24T10:00+01:00) or a delay from now (+90s, +10m, +2h, +1d)`,
    );
  }
  if (Number.isNaN(at.getTime())) throw new OutboxInputError(`${value} is not a valid date and time`);
  const ahead = at.getTime() - now.getTime();
  if (ahead < -PAST_TOLERANCE_MS)
    throw new OutboxInputError(
      `${value} (${at.toISOString()}) is in the past (now ${now.toISOString()}); leave the time out to send now`,
    );
  if (ahead > MAX_DELAY_MS)
    throw new OutboxInputError(
      `${value} (${at.toISOString()}) is more than a year ahead; mail is scheduled a year ahead at most`,
    );
  return ahead < 0 ? new Date(now.getTime()) : at;
}
