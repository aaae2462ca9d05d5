// When a fetched email needs nothing but its delivery, and what that delivery and its tag are.
// One decision for the workflow (its steps after the fetch) and for fetchAndDeliver, which
// delivers such an email in the fetch's own local activity (FETCH_AND_DELIVER_PATCH): both build
// the request and the tag from these functions, so the activity delivers exactly what the
// workflow's own delivery step would have. Pure: the workflow bundle imports it.
import type {
  BounceRewriteInfo,
  DeliveryRequest,
  DeliveryTagPlan,
  EmailSummary,
  FetchedLookups,
  FetchResult,
  InboundRef,
  LargeEmail,
  RecipientResult,
} from '../../contracts/inbound';
import { compactVerdicts } from './ses-verdicts';

type Blocked = FetchedLookups['blocked'];

/** What deliverEmail is asked, the same on every delivery path. */
export function deliveryRequest(
  ref: InboundRef,
  summary: EmailSummary,
  recipients: string[],
  rewrite: BounceRewriteInfo | undefined,
): DeliveryRequest {
  return {
    domain: ref.domain,
    bucket: ref.bucket,
    key: ref.key,
    recipients,
    envelopeFrom: summary.bounce ? '' : summary.sender,
    ...(rewrite ? { rewrite } : {}),
    ...(summary.spam ? { spam: true } : {}),
    ...(ref.redeliver ? { redeliver: true } : {}),
  };
}

/** The blocked recipients' outcomes, recorded before the delivery's. */
export function blockedResults(blocked: Blocked): RecipientResult[] {
  return blocked.map((b) => ({
    recipient: b.recipient,
    outcome: 'blocked',
    detail: `${b.sender} matches ${b.pattern}`,
  }));
}

/** The recipients the blocklists let through, in the summary's order. */
export function notBlockedRecipients(recipients: readonly string[], blocked: Blocked): string[] {
  const blockedSet = new Set(blocked.map((b) => b.recipient));
  return recipients.filter((r) => !blockedSet.has(r));
}

/** The looped recipients (left out by the copy counter): failed, after the delivery's outcomes. */
export function loopedResults(summary: EmailSummary): RecipientResult[] {
  return (summary.looped ?? []).map((l) => ({ recipient: l.recipient, outcome: 'failed', detail: l.detail }));
}

/** The audit fields besides the status and the counts: who blocked whom, the SES verdicts. */
export function blockedRecord(blocked: Blocked, verdicts: string | undefined): DeliveryTagPlan['record'] {
  return {
    ...(blocked.length ? { blockedSender: blocked[0].sender, blockedRecipients: blocked.map((b) => b.recipient) } : {}),
    ...(verdicts ? { verdicts } : {}),
  };
}

/** Whether a rule (forward, out-of-office) names one of `active`: then the rules step runs after the delivery. */
export function rulesApply(rules: FetchedLookups['rules'], active: readonly string[]): boolean {
  if (!rules) return true; // not read: the rules step loads them
  const activeSet = new Set(active.map((r) => r.toLowerCase()));
  return rules.some((r) => activeSet.has(r.recipient));
}

/**
 * The delivery and tag of an email that needs nothing else: read with its lookups, no loop, no
 * report (bounce or complaint), at least one recipient not blocked, no rule for those. Undefined
 * when anything else applies: the workflow then takes its steps one by one.
 */
export function plainDelivery(
  ref: InboundRef,
  fetched: FetchResult | LargeEmail,
): { request: DeliveryRequest; plan: DeliveryTagPlan } | undefined {
  if (fetched.kind !== 'email' || !fetched.lookups) return undefined;
  const { summary, lookups } = fetched;
  if (summary.loop || summary.bounce) return undefined;
  const active = notBlockedRecipients(summary.recipients, lookups.blocked);
  if (active.length === 0 || rulesApply(lookups.rules, active)) return undefined;
  return {
    request: deliveryRequest(ref, summary, active, undefined),
    plan: {
      before: blockedResults(lookups.blocked),
      after: loopedResults(summary),
      record: blockedRecord(lookups.blocked, compactVerdicts(summary.verdicts)),
    },
  };
}
