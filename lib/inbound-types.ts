// Data that crosses the workflow/activity boundary for inbound mail. It lands in
// Temporal history, so it holds ids, addresses and short facts, never message bodies.
import type { BounceFacts } from './bounce';
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
}

export type FetchResult =
  | { kind: 'email'; summary: EmailSummary }
  | { kind: 'terminal'; status: Extract<EmailStatus, 'missing' | 'oversize' | 'invalid' | 'unknown_domain' | 'already_processed'>; reason: string; size?: number };

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
}

export interface RecipientRules {
  recipient: string;
  outOfOffice?: { message: string; contentType: 'text' | 'html' };
  forwards: string[];
}

export interface InboundResult {
  status: EmailStatus;
  bucket: string;
  key: string;
  messageId?: string;
  reason?: string;
  recipients: RecipientResult[];
  autoReplies: { recipient: string; to: string; sent: boolean; reason?: string }[];
  forwards: { recipient: string; to: string; route: 'internal' | 'outbound' }[];
  bounce?: { matched: boolean; bouncedRecipient?: string };
}
