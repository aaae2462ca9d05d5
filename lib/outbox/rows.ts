// Row mapping of the outbox store: PostgreSQL rows to the types of ./types.
import type { Row } from '../sync-store/rows';
import type {
  AttachmentRef,
  Mailbox,
  OutboxMessage,
  OutboxStatus,
  RecipientResult,
  SmtpSettings,
  SmtpTls,
} from './types';

/** Every column but the built message (raw, raw_sent): listings never carry message bytes. */
export const OUTBOX_COLUMNS = `o.id, o.account_id, o.user_id, o.from_address, o.from_name, o.to_recipients, o.cc_recipients,
  o.bcc_recipients, o.subject, o.text_body, o.html_body, o.attachments, o.message_id, o.send_at, o.status, o.status_reason,
  o.workflow_id, (o.raw IS NOT NULL) AS built, o.recipient_results, o.submit_attempts, o.submit_started_at, o.submit_pending, o.submitted_at,
  o.smtp_response, o.submit_recovery, o.sent_copy_folder, o.sent_copy_at, o.finished_at, o.created_at, o.updated_at`;

export function toOutboxMessage(r: Row): OutboxMessage {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    accountId: r.account_id as string,
    from: r.from_name
      ? { address: r.from_address as string, name: r.from_name as string }
      : { address: r.from_address as string },
    to: (r.to_recipients as Mailbox[]) ?? [],
    cc: (r.cc_recipients as Mailbox[]) ?? [],
    bcc: (r.bcc_recipients as Mailbox[]) ?? [],
    subject: (r.subject as string) ?? '',
    text: (r.text_body as string | null) ?? null,
    html: (r.html_body as string | null) ?? null,
    attachments: (r.attachments as AttachmentRef[]) ?? [],
    messageId: r.message_id as string,
    sendAt: (r.send_at as Date | null) ?? null,
    status: r.status as OutboxStatus,
    statusReason: (r.status_reason as string | null) ?? null,
    workflowId: (r.workflow_id as string | null) ?? null,
    built: Boolean(r.built),
    recipientResults: (r.recipient_results as Record<string, RecipientResult>) ?? {},
    submitAttempts: Number(r.submit_attempts ?? 0),
    submitStartedAt: (r.submit_started_at as Date | null) ?? null,
    submitPending: Boolean(r.submit_pending),
    submittedAt: (r.submitted_at as Date | null) ?? null,
    smtpResponse: (r.smtp_response as string | null) ?? null,
    submitRecovery: (r.submit_recovery as string | null) ?? null,
    sentCopyFolder: (r.sent_copy_folder as string | null) ?? null,
    sentCopyAt: (r.sent_copy_at as Date | null) ?? null,
    finishedAt: (r.finished_at as Date | null) ?? null,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  };
}

export function toSmtpSettings(r: Row): SmtpSettings {
  return {
    host: (r.smtp_host as string | null) ?? null,
    port: (r.smtp_port as number | null) ?? null,
    tls: ((r.smtp_tls as SmtpTls | null) ?? 'starttls') as SmtpTls,
    sentFolder: (r.sent_folder as string | null) ?? null,
    fromAddress: (r.from_address as string | null) ?? null,
  };
}

/** Every recipient address of a message (To, Cc, Bcc), once each, in that order. */
export function allRecipients(m: Pick<OutboxMessage, 'to' | 'cc' | 'bcc'>): string[] {
  return [...new Set([...m.to, ...m.cc, ...m.bcc].map((x) => x.address))];
}

/** Recipients without a final reply yet (not accepted, not failed for good). */
export function pendingRecipients(m: Pick<OutboxMessage, 'to' | 'cc' | 'bcc' | 'recipientResults'>): string[] {
  return allRecipients(m).filter((a) => {
    const s = m.recipientResults[a]?.status;
    return s !== 'accepted' && s !== 'failed';
  });
}
