// Which objects a sweep looks at, by the LastModified of the bucket listing: a listing is
// one request per 1,000 objects, a HEAD is one per object, so only objects inside the window
// are read. The window ends SWEEP_MIN_AGE before now (younger mail is the SQS bridge's, whose
// notification carries the envelope) and starts where the last successful sweep ended, minus
// an overlap; a sweep moves that mark only when its window covered everything since it.
import type { WindowSource } from '../../contracts/sweep';

export type { WindowSource };

export interface SweepWindow {
  /** Unix ms; objects modified before it are not read. undefined = no lower bound (--all). */
  from?: number;
  /** Unix ms; objects modified after it are left for a later sweep (too young). */
  until: number;
  source: WindowSource;
  /** Whether a success may record `until` as the new mark (the window covered the default one). */
  advancesState: boolean;
}

export interface WindowInput {
  /** Unix ms. */
  now: number;
  /** Seconds. */
  minAge: number;
  overlap: number;
  fallbackWindow: number;
  /** Unix ms: where the last successful sweep ended; undefined when none is recorded. */
  sweptUntil?: number;
  /** A full pass over the bucket. */
  all?: boolean;
  /** Unix ms: an operator's explicit lower bound. */
  since?: number;
}

export function sweepWindow(w: WindowInput): SweepWindow {
  const until = w.now - w.minAge * 1000;
  // What a sweep without options looks at; any window that includes it may move the mark.
  const defaultFrom = w.sweptUntil !== undefined ? w.sweptUntil - w.overlap * 1000 : w.now - w.fallbackWindow * 1000;
  if (w.all) return { until, source: 'all', advancesState: true };
  if (w.since !== undefined) return { from: w.since, until, source: 'since', advancesState: w.since <= defaultFrom };
  return { from: defaultFrom, until, source: w.sweptUntil !== undefined ? 'state' : 'fallback', advancesState: true };
}

/** Where an object falls: read it, too young (a later sweep's), or before the window (already swept). */
export function placeInWindow(w: SweepWindow, lastModified: Date | undefined): 'read' | 'young' | 'old' {
  // Without a LastModified (no S3 leaves it out, but nothing guarantees it) read it: a HEAD too many is cheap, a skipped email is not.
  if (!lastModified) return 'read';
  const t = lastModified.getTime();
  if (t > w.until) return 'young';
  if (w.from !== undefined && t < w.from) return 'old';
  return 'read';
}
