// Periodic safety net, run by a Temporal Schedule (starters/schedule-sweep.ts): starts
// the inbound workflow for every object in the domain's bucket that is not yet tagged and
// was modified since the last successful sweep (activities/sweep.ts over lib/sweep/sweep.ts).
import { proxyActivities } from '@temporalio/workflow';
import type { createSweepActivities } from '../activities/sweep';
import type { SweepInput, SweepResult } from '../contracts/sweep';

const { sweepDomainBucket } = proxyActivities<ReturnType<typeof createSweepActivities>>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '10s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 5 },
});

export async function sweepDomain(input: SweepInput): Promise<SweepResult> {
  return sweepDomainBucket(input);
}
