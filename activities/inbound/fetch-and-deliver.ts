// The fast path's whole email in one local activity (FETCH_AND_DELIVER_PATCH): fetch with the
// lookups, and when the email needs nothing but its delivery (lib/mail/plain-delivery.ts, the
// decision the workflow makes after a fetch), deliver and tag it as deliverAndTag would. One
// local activity and one workflow activation instead of two. A delivery that throws here is
// only logged: the workflow then delivers in its own step, with that step's retries, deferral
// and visible failure. Safe to run twice: the delivery log is per object and run.
import type { DeliveredAndTagged, FetchResult, InboundRef, LargeEmail } from '../../contracts/inbound';
import { plainDelivery } from '../../lib/mail/plain-delivery';
import { componentLogger } from '../../lib/observability/logger';
import type { createDeliverAndTagActivities } from './deliver-and-tag';
import type { createFetchActivities } from './fetch';

const log = componentLogger('delivery');

export function createFetchAndDeliverActivities(deps: {
  fetchEmail: ReturnType<typeof createFetchActivities>['fetchEmail'];
  deliverAndTag: ReturnType<typeof createDeliverAndTagActivities>['deliverAndTag'];
}) {
  return {
    /** fetchEmail (fast path, with the lookups), then deliverAndTag when nothing else applies. */
    async fetchAndDeliver(ref: InboundRef): Promise<FetchResult | LargeEmail> {
      const fetched = await deps.fetchEmail({ ...ref, fastPath: true, lookups: true });
      const plain = plainDelivery(ref, fetched);
      if (!plain || fetched.kind !== 'email') return fetched;
      let delivered: DeliveredAndTagged;
      try {
        delivered = await deps.deliverAndTag({ ...plain.request, tag: plain.plan });
      } catch (err) {
        log.warn(
          { bucket: ref.bucket, key: ref.key, err: (err as Error).message },
          'delivery with the fetch failed: the workflow delivers in a step of its own',
        );
        return fetched;
      }
      return { ...fetched, delivered };
    },
  };
}
