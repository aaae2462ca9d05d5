// The email's end status from its recipients' outcomes, with the audit fields that go with it.
// One decision for the workflow's last step and for a delivery that tags the object itself
// (activities/inbound/deliver-and-tag.ts): both must write the same tag. Pure: the workflow
// bundle imports it.
import type { EmailStatus } from '../../contracts/email-status';
import type { RecipientResult } from '../../contracts/inbound';

export interface EmailOutcome {
  status: EmailStatus;
  /** The problems, joined (failed recipients, then rule errors); absent when there were none. */
  reason?: string;
  invalidInboxes: string[];
  deliveredCount: number;
}

/**
 * delivered: every one of `expected` recipients has it; partial: some; rejected: none, and every
 * refusal was an invalid inbox; failed otherwise. Blocked recipients count as not delivered.
 */
export function emailOutcome(
  recipients: readonly RecipientResult[],
  expected: number,
  ruleErrors: readonly string[] = [],
): EmailOutcome {
  let deliveredCount = 0;
  const invalidInboxes: string[] = [];
  const problems: string[] = [];
  for (const r of recipients) {
    if (r.outcome === 'delivered') deliveredCount++;
    else if (r.outcome === 'invalid') invalidInboxes.push(r.recipient);
    else if (r.outcome === 'failed') problems.push(`${r.recipient}: ${r.detail ?? 'failed'}`);
  }
  const failures = problems.length;
  let status: EmailStatus;
  if (deliveredCount === expected) status = 'delivered';
  else if (deliveredCount > 0) status = 'partial';
  else if (invalidInboxes.length > 0 && failures === 0) status = 'rejected';
  else status = 'failed';
  problems.push(...ruleErrors);
  return { status, ...(problems.length ? { reason: problems.join('; ') } : {}), invalidInboxes, deliveredCount };
}
