// Data that crosses the workflow/activity boundary for inbound mail. It lands in
// Temporal history, so it holds ids, addresses and short facts, never message bodies.
import type { AutomaticClass } from './autoreply';
import type { BounceFacts } from './bounce';
import type { SesVerdicts } from './ses-verdicts';
import type { EmailStatus } from './status';
export type { InboundRef } from './ses-notification';

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
  /** Why this is automatic mail (lib/autoreply.ts), if it is. */
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

export type FetchResult =
  | { kind: 'email'; summary: EmailSummary }
  | { kind: 'terminal'; status: Extract<EmailStatus, 'missing' | 'oversize' | 'invalid' | 'unknown_domain' | 'already_processed' | 'quarantined'>; reason: string; size?: number; verdicts?: SesVerdicts };

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
  bounce?: { matched: boolean; bouncedRecipient?: string; kind?: 'bounce' | 'complaint'; rewritten?: boolean; reason?: string };
  /** SES receipt verdicts, compact (lib/ses-verdicts.ts). */
  verdicts?: string;
}
