// The outbox data model as lib/outbox/store.ts returns it: one row per message a user sends from
// one of their accounts (migrations/006_outbox.sql), and the account's SMTP settings.
import type { OutboxStatus } from '../../contracts/send';
import type { Mailbox } from '../mail/send-recipients';

export type { OutboxStatus };
export type { Mailbox };

/** An attachment by reference: its bytes are read when the message is built, never stored in the row or in history. */
export type AttachmentRef = {
  filename: string;
  contentType: string;
  /** Bytes, as declared when the draft was made (checked against the cap, and again when read). */
  size: number;
} & ({ path: string; s3Bucket?: undefined; s3Key?: undefined } | { path?: undefined; s3Bucket: string; s3Key: string });

export type RecipientOutcome = 'accepted' | 'failed' | 'deferred';

/** One recipient's SMTP reply (the outbox row's recipient_results, keyed by address). */
export interface RecipientResult {
  status: RecipientOutcome;
  /** The SMTP reply code (250, 550, 451...), when the server gave one. */
  code: number | null;
  /** The server's reply text (or how the outcome was established, e.g. found in the Sent folder). */
  reply: string;
  /** ISO time of the reply. */
  at: string;
}

export interface OutboxMessage {
  id: string;
  userId: string;
  accountId: string;
  from: Mailbox;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  subject: string;
  text: string | null;
  html: string | null;
  attachments: AttachmentRef[];
  /** "<...@domain>", fixed at creation. */
  messageId: string;
  sendAt: Date | null;
  status: OutboxStatus;
  statusReason: string | null;
  workflowId: string | null;
  /** Whether the MIME message was built (the `raw` column; read it with getRaw). */
  built: boolean;
  recipientResults: Record<string, RecipientResult>;
  submitAttempts: number;
  submitStartedAt: Date | null;
  /** An attempt was opened and its outcome not recorded (the worker may have died mid-transaction). */
  submitPending: boolean;
  submittedAt: Date | null;
  smtpResponse: string | null;
  submitRecovery: string | null;
  sentCopyFolder: string | null;
  sentCopyAt: Date | null;
  finishedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A message's content as a draft holds it; recipients are validated (lib/mail/send-recipients.ts) by createDraft. */
export interface DraftContent {
  /** Default: the account's from_address, else its imap_user when that is an address. */
  from?: string;
  fromName?: string | null;
  /** Address lists as typed ("A <a@x.org>, b@y.org") or one entry each. */
  to?: string | string[];
  cc?: string | string[];
  bcc?: string | string[];
  subject?: string;
  text?: string | null;
  html?: string | null;
  attachments?: AttachmentRef[];
}

export interface OutboxListFilter {
  accountId?: string;
  status?: OutboxStatus | OutboxStatus[];
  limit?: number;
}

export type SmtpTls = 'implicit' | 'starttls' | 'none';

/** Where and how an account submits mail; the login is the account's own (password or OAuth2). */
export interface SmtpSettings {
  /** null: the account cannot send until it is set. */
  host: string | null;
  port: number | null;
  tls: SmtpTls;
  /** Folder the Sent copy is appended to; null: none appended (the provider saves its own). */
  sentFolder: string | null;
  /** The From address; null: the account's imap_user when it is an address. */
  fromAddress: string | null;
}

/** What createDraft / updateDraft refuse: every problem, each naming the field or file. */
export class OutboxValidationError extends Error {
  override name = 'OutboxValidationError';
  constructor(
    readonly problems: string[],
    what = 'Cannot queue the message',
  ) {
    super(`${what}: ${problems.join('; ')}`);
  }
}
