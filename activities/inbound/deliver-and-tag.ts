// The fast path's last step in one: deliver, and when that ends the email (no recipient
// deferred, no rules after it), tag the S3 object with the status the workflow would have
// tagged it with (lib/mail/email-outcome.ts). One local activity and one workflow activation
// instead of two. A tag that fails here is left to the workflow's own tag step, with its
// retries and waits; the delivery's answer is never lost to it.
import type { DeliveredAndTagged, DeliveryTagPlan, RecipientResult } from '../../contracts/inbound';
import { emailOutcome } from '../../lib/mail/email-outcome';
import { componentLogger } from '../../lib/observability/logger';
import type { createDeliverActivities } from './deliver';
import type { createTagActivities } from './tag';

const log = componentLogger('delivery');

type DeliverInput = Parameters<ReturnType<typeof createDeliverActivities>['deliverEmail']>[0];

/** The outcomes of the whole email once `answers` are in, as the workflow records them; undefined while one is deferred. */
export function outcomesAfterDelivery(
  recipients: readonly string[],
  answers: readonly RecipientResult[],
  plan: DeliveryTagPlan,
): RecipientResult[] | undefined {
  const by = new Map(answers.map((a) => [a.recipient, a]));
  const mine = recipients.map((r) => by.get(r));
  if (mine.some((a) => a === undefined || a.outcome === 'deferred')) return undefined;
  return [...plan.before, ...(mine as RecipientResult[]), ...plan.after];
}

export function createDeliverAndTagActivities(deps: {
  deliverEmail: ReturnType<typeof createDeliverActivities>['deliverEmail'];
  tagEmail: ReturnType<typeof createTagActivities>['tagEmail'];
}) {
  return {
    /** deliverEmail, then tagEmail when the delivery ended the email. */
    async deliverAndTag(input: DeliverInput & { tag: DeliveryTagPlan }): Promise<DeliveredAndTagged> {
      const { tag: plan, ...delivery } = input;
      const recipients = await deps.deliverEmail(delivery);
      const all = outcomesAfterDelivery(delivery.recipients, recipients, plan);
      if (!all) return { recipients };
      const { status, reason, invalidInboxes, deliveredCount } = emailOutcome(all, all.length);
      try {
        await deps.tagEmail({
          domain: input.domain,
          bucket: input.bucket,
          key: input.key,
          record: { status, invalidInboxes, deliveredCount, ...(reason ? { error: reason } : {}), ...plan.record },
        });
      } catch (err) {
        log.warn(
          { bucket: input.bucket, key: input.key, err: (err as Error).message },
          'tag after delivery failed: the workflow tags the object in a step of its own',
        );
        return { recipients };
      }
      return { recipients, tagged: status };
    },
  };
}
