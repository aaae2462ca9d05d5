// The inbound workflow family's contract (workflows/processInboundEmail.ts): its input and
// result, the data that crosses the workflow/activity boundary, its query, workflow id, task
// queue and the error types its activities throw and its retry policies key on. Imported by
// the workflow, the activities, the starters and the workers alike, so it imports nothing of
// ours but contracts/, and from packages only @temporalio/workflow's definition helpers (safe
// outside a workflow). What lands in Temporal history holds ids, addresses and short facts,
// never message bodies.
import { defineQuery } from '@temporalio/workflow';
import type { EmailStatus } from './email-status';

// --- ids and queues ------------------------------------------------------------------------

/** Default task queue of the inbound worker (TASK_QUEUE overrides it, lib/config). */
export const INBOUND_TASK_QUEUE = 'mailroom-inbound';

/**
 * One workflow id per S3 object: a second trigger for the same object (SQS redelivery,
 * a sweep, an operator's replay) is rejected by Temporal instead of processing twice.
 */
export function inboundWorkflowId(bucket: string, key: string): string {
  return `inbound/${bucket}/${key}`;
}

// --- error types ---------------------------------------------------------------------------

/**
 * ApplicationFailure types the inbound activities throw. The *Refused and EmailMissing types
 * are permanent (the workflow lists them in nonRetryableErrorTypes); the *Unavailable types
 * are retried under the step's policy.
 */
export const INBOUND_ERRORS = {
  /** The mail server refused the whole message with a 5xx that is not about one recipient. */
  DeliveryRefused: 'DeliveryRefused',
  /** The mail server could not be reached or broke off: no recipient has the message. */
  DeliveryUnavailable: 'DeliveryUnavailable',
  ForwardRefused: 'ForwardRefused',
  ForwardUnavailable: 'ForwardUnavailable',
  AutoReplyRefused: 'AutoReplyRefused',
  AutoReplyUnavailable: 'AutoReplyUnavailable',
  /** The S3 object is gone (also the failure type of a run that ends `missing`). */
  EmailMissing: 'EmailMissing',
} as const;

// --- input ---------------------------------------------------------------------------------

export interface InboundRef {
  domain: string;
  bucket: string;
  key: string;
  envelopeRecipients?: string[];
  /** Process again although the object is tagged processed (an operator's re-drive). */
  redrive?: boolean;
  /** Deliver again to recipients the delivery log says already have it (`redrive --redeliver`). */
  redeliver?: boolean;
  /** SES receipt verdicts from the notification (they win over the ones in the stored header). */
  verdicts?: SesVerdicts;
}

export interface DeliveryPolicy {
  /** Delivery rounds for recipients the server defers (4xx), the first included. */
  rounds: number;
  /** Wait before the second round; doubles each round up to maxDelaySeconds. */
  firstDelaySeconds: number;
  maxDelaySeconds: number;
}

/**
 * How long an email waits for servers that are unavailable (issue 21, MTA-grade deferral).
 * The worker's configuration (DELIVERY_MAX_AGE, DELIVERY_RETRY_FIRST_DELAY,
 * DELIVERY_RETRY_MAX_DELAY, DELIVERY_ROUNDS_PER_RUN in lib/config) reaches the workflow in
 * fetchEmail's result; before a fetch has succeeded the workflow uses DEFAULT_DEFERRAL.
 */
export interface DeferralSettings {
  /** Give up (recipients `failed` with the last reason) this long after the object's arrival. */
  maxAgeSeconds: number;
  /** The first wait between tries; it doubles each try up to maxDelaySeconds. */
  firstDelaySeconds: number;
  maxDelaySeconds: number;
  /** Waits in one run before it continues as new (keeps each run's history short). */
  roundsPerRun: number;
}

/** Postfix's maximal_queue_lifetime (5 d), minimal_backoff_time (300 s is Postfix's; 60 s here), maximal_backoff_time (4000 s). */
export const DEFAULT_DEFERRAL: DeferralSettings = {
  maxAgeSeconds: 5 * 86400,
  firstDelaySeconds: 60,
  maxDelaySeconds: 4000,
  roundsPerRun: 20,
};

/**
 * What a run that continues as new carries into the next one while the email waits
 * (workflows/processInboundEmail.ts). Without `delivery` the next run starts over at fetch
 * (fetch and the lookups only read); with it, the next run goes on delivering to `pending`.
 */
export interface DeferralState {
  /** When the object arrived (unix ms): the start of DELIVERY_MAX_AGE. */
  arrival: number;
  /** Waits so far, over every run. */
  waits: number;
  lastReason?: string;
  settings?: DeferralSettings;
  /** The S3 object already carries the `deferred` tag. */
  tagged?: boolean;
  delivery?: {
    summary: EmailSummary;
    rewrite?: BounceRewriteInfo;
    /** The recipients delivery was for (blocked ones left out). */
    active: string[];
    /** Outcomes so far of the active recipients, delivered or final. */
    outcomes: RecipientResult[];
    pending: string[];
    /** What the result holds so far (blocked recipients, bounce match, verdicts, message id). */
    result: InboundResult;
    blocked: { recipient: string; pattern: string; sender: string }[];
    rules?: RecipientRules[];
  };
}

export interface ProcessInboundInput extends InboundRef {
  delivery?: Partial<DeliveryPolicy>;
  /** Overrides the worker's deferral settings for this run (tests; an operator's explicit choice). */
  deferral?: Partial<DeferralSettings>;
  /** Set by the run itself when it continues as new while the email waits. */
  resume?: DeferralState;
}

/** What a trigger may already know about the email, for the summary shown in the Web UI. */
export interface InboundFacts {
  sender?: string;
  size?: number;
}

// --- facts the activities find ---------------------------------------------------------------

export type Verdict = 'PASS' | 'FAIL' | 'GRAY' | 'PROCESSING_FAILED' | 'DISABLED';
export const VERDICT_NAMES = ['spam', 'virus', 'spf', 'dkim', 'dmarc'] as const;
export type VerdictName = (typeof VERDICT_NAMES)[number];

export type SesVerdicts = Partial<Record<VerdictName, Verdict>> & {
  /** Where each verdict came from: the SES notification, the SES header block, or both. */
  source: 'notification' | 'headers' | 'notification+headers';
};

export interface BouncedRecipient {
  recipient: string;
  action?: string;
  status?: string;
  diagnostic?: string;
}

export interface BounceFacts {
  /** True when the sender is SES's MAILER-DAEMON (a bounce of mail we sent through SES). */
  fromSes: boolean;
  recipients: BouncedRecipient[];
  /** Message-IDs of the original message found in the report, as written there. */
  originalMessageIds: string[];
  /** A complaint (feedback report) rather than a bounce; absent in histories from before. */
  kind?: 'bounce' | 'complaint';
  /** SES notification mailed by SNS (lib/mail/sns-mail.ts) rather than an RFC 3464/5965 report. */
  sns?: boolean;
  /** Why the report must not choose our From/Reply-To (failed sender authentication). */
  untrusted?: string;
}

/**
 * report: a reply to or report about other mail (bounces, DSN/MDN/ARF, auto-replies); it is
 * never answered and never forwarded outside. bulk: mail sent by machines to many (lists,
 * notifications, no-reply senders); never answered, forwarded outside only when SES
 * authenticated its sender.
 */
export type AutomaticClass = 'report' | 'bulk';

// --- data between the workflow and its activities --------------------------------------------

export interface EmailSummary {
  messageId?: string;
  from?: string;
  /** Return-Path (envelope sender) when present, else From. */
  sender?: string;
  subject?: string;
  size: number;
  recipients: string[];
  recipientSource: 'envelope' | 'headers';
  /** Why this is a loop (marker header), if it is one. */
  loop?: string;
  bounce?: BounceFacts;
  /** RFC 3834 verdict for out-of-office replies: the address to reply to, or why not. */
  autoReply: { to: string } | { skip: string };
  // The fields below came with the inbound-safety change (issue 11); histories from
  // before lack them, and the workflow reads them only on its patched path.
  /** Why this is automatic mail (lib/mail/autoreply.ts), if it is. */
  automatic?: { rule: string; reason: string; class: AutomaticClass };
  /** Present when the message must not be forwarded to addresses outside our domains, with why. */
  outsideForward?: { skip: string };
  /** Our recipients named in To, Cc, Bcc or Resent-*: only their out-of-office may answer (RFC 5230 4.5). */
  addressed?: string[];
  /** SES receipt verdicts (notification first, SES's header block second). */
  verdicts?: SesVerdicts;
  /** SES says spam and SPAM_ACTION=deliver: delivered marked X-Mailroom-Spam: yes. */
  spam?: boolean;
  /** Received lines: how far the message travelled (the copy counter's measure of a loop round). */
  hops?: number;
  /** Recipients left out: the message reached them too often within an hour (a loop through a peer). */
  looped?: { recipient: string; detail: string }[];
}

/** fetchEmail asked with `fastPath` and the object is larger than FAST_PATH_MAX_BYTES: read it with the regular activity. */
export interface LargeEmail {
  kind: 'large';
  size: number;
}

export interface AddressHashes {
  from: string[];
  to: string[];
}

/** A bounce's original outbound message (findOutboundMessage's answer). */
export interface OutboundMatch {
  messageId: string;
  source?: string;
  subject?: string;
  destinations: string[];
}

/**
 * The lookups fetchEmail made with the email's own reads when asked (`lookups`, since
 * BATCHED_PATCH): what lookupRecipients (and, for a report, findOutboundMessage) would answer,
 * for the recipients left after the copy counter. Absent when any of them could not be read:
 * the workflow then runs those steps on their own, with their retries and deferral.
 */
export interface FetchedLookups {
  blocked: { recipient: string; pattern: string; sender: string }[];
  /** Absent when the rules could not be read: applyRules loads them after delivery, as before. */
  rules?: RecipientRules[];
  /** Reports only: the matched outbound message, or null. */
  outbound?: OutboundMatch | null;
}

export type FetchResult =
  | {
      kind: 'email';
      summary: EmailSummary;
      /** Asked with `lookups` (since BATCHED_PATCH): the blocklist, rules and bounce match, read with the copy counter. */
      lookups?: FetchedLookups;
      /** When the object arrived (unix ms; S3 LastModified, or the arrived_at tag a deferred run wrote). Absent in histories from before issue 21. */
      arrival?: number;
      /** The worker's deferral settings (lib/config), recorded in history with the result. */
      deferral?: DeferralSettings;
      /**
       * Keyed hashes (lib/mail/address-hash.ts) of the sender (From, Return-Path) and of the
       * recipients, for the MailFromHash and MailToHash search attributes; never addresses.
       * Absent without MAILROOM_CODEC_KEYS and in histories from before issue 25.
       */
      addressHashes?: AddressHashes;
      /**
       * fetchAndDeliver only (since FETCH_AND_DELIVER_PATCH): the email needed nothing but its
       * delivery (lib/mail/plain-delivery.ts), and this is deliverAndTag's answer to it. Absent
       * when something else applies or that delivery threw: the workflow delivers in its own step.
       */
      delivered?: DeliveredAndTagged;
    }
  | {
      kind: 'terminal';
      status: Extract<
        EmailStatus,
        'missing' | 'oversize' | 'invalid' | 'unknown_domain' | 'already_processed' | 'quarantined'
      >;
      reason: string;
      size?: number;
      verdicts?: SesVerdicts;
    };

export type RecipientOutcome = 'delivered' | 'invalid' | 'deferred' | 'blocked' | 'failed';

export interface RecipientResult {
  recipient: string;
  outcome: RecipientOutcome;
  /** SMTP/LMTP reply code and text, or the blocking pattern. */
  code?: number;
  detail?: string;
}

export interface BounceRewriteInfo {
  bouncedRecipient: string;
  status?: string;
  diagnostic?: string;
  originalSubject?: string;
  kind?: 'bounce' | 'complaint';
}

export interface RecipientRules {
  recipient: string;
  outOfOffice?: { message: string; contentType: 'text' | 'html' };
  forwards: string[];
  /** The forwards that leave our domains (absent in histories from before issue 11). */
  outside?: string[];
}

export interface InboundResult {
  status: EmailStatus;
  bucket: string;
  key: string;
  messageId?: string;
  reason?: string;
  recipients: RecipientResult[];
  autoReplies: { recipient: string; to: string; sent: boolean; reason?: string }[];
  /** One entry per forward rule; `sent` false with the reason when it was skipped or failed (absent before issue 11: sent). */
  forwards: { recipient: string; to: string; route: 'internal' | 'outbound'; sent?: boolean; reason?: string }[];
  bounce?: {
    matched: boolean;
    bouncedRecipient?: string;
    kind?: 'bounce' | 'complaint';
    rewritten?: boolean;
    /** Why the report was delivered unmodified (untrusted sender, a recipient not among the message's destinations). */
    reason?: string;
  };
  /** SES receipt verdicts, compact (lib/mail/ses-verdicts.ts). */
  verdicts?: string;
}

// --- queries -------------------------------------------------------------------------------

/** Where a running email is: its step and the recipients' outcomes so far; while it waits, status `deferred` and what for. */
export const progressQuery = defineQuery<{
  step: string;
  recipients: RecipientResult[];
  status?: EmailStatus;
  deferred?: { reason: string; since: string; nextTry: string; giveUpAt: string; waits: number };
}>('progress');

/** What deliverEmail is asked: the stored message, to these recipients, with this envelope and these edits. */
export interface DeliveryRequest {
  domain: string;
  bucket: string;
  key: string;
  recipients: string[];
  envelopeFrom?: string;
  rewrite?: BounceRewriteInfo;
  /** SES spam verdict FAIL: deliver marked X-Mailroom-Spam: yes. */
  spam?: boolean;
  /** Deliver even to recipients the delivery log says an earlier run delivered to (an operator's explicit re-delivery). */
  redeliver?: boolean;
}

/**
 * What deliverAndTag needs to tag the object itself when the delivery ends the email (no
 * recipient deferred, no rules to run after it): the outcomes recorded before the delivery
 * (blocked recipients), those after it (looped ones), and the audit fields the workflow adds.
 */
export interface DeliveryTagPlan {
  before: RecipientResult[];
  after: RecipientResult[];
  /** Audit fields besides the status and the counts (blocked sender and recipients, SES verdicts). */
  record: { blockedSender?: string; blockedRecipients?: readonly string[]; verdicts?: string };
}

/** deliverAndTag's answer: the delivery's, and the status it tagged the object with (absent: not tagged). */
export interface DeliveredAndTagged {
  recipients: RecipientResult[];
  tagged?: EmailStatus;
}
