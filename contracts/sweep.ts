// The sweep workflow family's contract (workflows/sweepDomain.ts, run by a Temporal Schedule
// per domain): its input and result, and the ids of its schedule and runs. Imports nothing of
// ours but contracts/.

/** Where a sweep's window came from (lib/sweep/window.ts). */
export type WindowSource = 'state' | 'fallback' | 'all' | 'since';

/** Id of the Temporal Schedule that sweeps a domain's bucket, and of the runs it starts. */
export function sweepScheduleId(domain: string): string {
  return `sweep/${domain}`;
}

export const sweepWorkflowId = sweepScheduleId;

export interface SweepProgress {
  /** Objects in the listing. */
  listed: number;
  /** Read with a HEAD: inside the window. */
  read: number;
  /** Modified after the window's end (younger than SWEEP_MIN_AGE): left to the SQS bridge and the next sweep. */
  tooYoung: number;
  unprocessed: number;
  started: number;
  alreadyRunning: number;
  /** Listed, then gone before the HEAD (blocked mail deleted meanwhile). */
  vanished: number;
}

export interface SweepResult extends SweepProgress {
  window: { from: string | null; until: string; source: WindowSource };
  /** Whether this sweep moved the bucket's mark (lib/storage/sweep-state.ts) to the window's end. */
  stateAdvanced: boolean;
  /** Why the mark could not be read or written, when that happened. */
  stateNote?: string;
  seconds: number;
}

/** What a sweep is asked to do; every field but the domain is optional. */
export interface SweepInput {
  domain: string;
  prefix?: string;
  /** A full pass: every object, whatever its LastModified. */
  all?: boolean;
  /** Unix seconds: look at objects modified since then instead of since the last sweep. */
  since?: number;
  /** Seconds; default SWEEP_MIN_AGE. An operator's one-off sweep may pass 0. */
  minAge?: number;
  concurrency?: number;
}
