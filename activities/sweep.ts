// The sweep activity: one activity per sweep of a domain's bucket, heartbeating its progress.
// The sweep itself (listing, window, HEADs, starts) is lib/sweep/sweep.ts; the starts go
// through the worker's injected `start` (starters/start-inbound.ts).
import { Context } from '@temporalio/activity';
import type { SweepInput, SweepResult } from '../contracts/sweep';
import { type SweepDeps, sweepBucket } from '../lib/sweep/sweep';

export function createSweepActivities(deps: SweepDeps) {
  return {
    async sweepDomainBucket(input: SweepInput): Promise<SweepResult> {
      return sweepBucket(deps, input, (p) => Context.current().heartbeat(p));
    },
  };
}
