// Per-recipient gates the workflow applies before running a recipient's rules. Pure and
// free of Node modules: workflows/processInboundEmail.ts imports it (deterministic code).
import type { EmailSummary } from '../../contracts/inbound';

/**
 * Where `recipient`'s out-of-office reply may go, or why it must not go. The message-wide
 * verdict comes from fetchEmail (lib/mail/autoreply.ts); RFC 5230 section 4.5 adds that a
 * vacation answers only mail naming the user in To, Cc or Bcc (not lists, not Bcc to
 * others) and never the user itself.
 */
export function autoReplyTarget(summary: EmailSummary, recipient: string): { to: string } | { skip: string } {
  if (!('to' in summary.autoReply)) return { skip: summary.autoReply.skip };
  if (summary.addressed && !summary.addressed.includes(recipient)) {
    return {
      skip: 'the recipient is not named in To, Cc or Bcc (RFC 5230 4.5: no vacation reply to mail not addressed to the user)',
    };
  }
  if (summary.autoReply.to === recipient.toLowerCase()) return { skip: 'message from the recipient itself' };
  return { to: summary.autoReply.to };
}

/**
 * The recipient a bounce or complaint is about: one of our message's destinations if the report
 * names it. With `destinationsOnly` (issue 21) nothing else: a report that names none of them
 * gets undefined (it is delivered unmodified), since the rewrite makes the named address the
 * From and Reply-To, and a forged report that cites one of our message ids could otherwise
 * speak for anyone. A report that names nobody is about the message's one destination, if it had one.
 */
export function reportedRecipient(
  bounce: NonNullable<EmailSummary['bounce']>,
  destinations: readonly string[] | undefined,
  destinationsOnly = false,
): string | undefined {
  const ours = new Set((destinations ?? []).map((d) => d.toLowerCase()));
  const named = bounce.recipients;
  // Case-blind only on the new path: the old one must pick as it did for runs in flight.
  const isOurs = (r: { recipient: string }) => ours.has(destinationsOnly ? r.recipient.toLowerCase() : r.recipient);
  const pick =
    named.find((r) => isOurs(r) && (r.action === 'failed' || r.action === 'complained')) ??
    named.find(isOurs) ??
    (destinationsOnly
      ? undefined
      : (named.find((r) => r.action === 'failed' || r.action === 'complained') ?? named[0]));
  if (pick) return pick.recipient;
  if (destinationsOnly && named.length > 0) return undefined;
  return destinations && destinations.length === 1 ? destinations[0].toLowerCase() : undefined;
}
