// The activities a workflow run made, in history order, whether regular (ActivityTaskScheduled)
// or local (a core_local_activity marker, whose bookkeeping payload names the type in plain
// JSON: the SDK core writes it, not the data converter).
import type { temporal } from '@temporalio/proto';

export interface Step {
  type: string;
  local: boolean;
}

export function activitySteps(history: temporal.api.history.v1.IHistory): Step[] {
  const steps: Step[] = [];
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (scheduled) steps.push({ type: scheduled, local: false });
    const marker = e.markerRecordedEventAttributes;
    const data = marker?.markerName === 'core_local_activity' ? marker.details?.data?.payloads?.[0]?.data : undefined;
    if (data)
      steps.push({
        type: (JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type: string }).activity_type,
        local: true,
      });
  }
  return steps;
}
