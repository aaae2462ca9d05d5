// States of an inbound email, as written to S3 metadata `status` and the MailStatus search
// attribute. The first five are the existing worker's values. Every state is terminal but
// `deferred` (DEFERRED_STATUS): the email waits for a server to come back and its run goes on.
export const EMAIL_STATUSES = [
  'delivered', // every recipient accepted the message
  'partial', // some recipients accepted, others were unknown, blocked or kept failing
  'blocked', // every recipient blocks the sender: tagged, then deleted
  'loop', // mailroom already sent or processed this message
  'failed', // temporary failures outlasted the retry policy, or an unexpected error
  'rejected', // every recipient is unknown to the mail server (5xx)
  'invalid', // malformed message, or no recipient in our domains
  'unknown_domain', // the domain is not in domains.txt
  'oversize', // larger than MAX_MESSAGE_BYTES; kept in S3 for an operator
  'quarantined', // SES virus verdict FAIL (or spam with SPAM_ACTION=quarantine): not delivered, kept in S3, tagged
  'already_processed', // the object already carries processed=true
  'missing', // the S3 object does not exist (nothing to tag)
  'deferred', // not terminal: a server (SMTP/LMTP, DynamoDB, S3) is unavailable; the run retries until DELIVERY_MAX_AGE
] as const;
export type EmailStatus = (typeof EMAIL_STATUSES)[number];
/** The one state that is not terminal: the run is still waiting and trying. */
export const DEFERRED_STATUS = 'deferred' satisfies EmailStatus;
/** The states an email ends in (what emails_processed_total counts). */
export const TERMINAL_STATUSES = EMAIL_STATUSES.filter((s) => s !== DEFERRED_STATUS);

/** Header that everything mailroom sends or rewrites carries, so it is never processed twice. */
export const LOOP_HEADER = 'X-Mailroom-Processed';
/** The header of the Python worker it replaces; honoured so the two can run side by side. */
export const LEGACY_LOOP_HEADER = 'X-SES-Worker-Processed';
