// The outbox: messages users send from their accounts (migrations/006_outbox.sql). The store's
// API is described at the top of ./store.ts; ./limits.ts holds the pure limits (attachment cap,
// send rate), lib/mail/send-recipients.ts the recipient check.
export * from './types';
export {
  createOutboxStore,
  DEFAULT_MAX_ATTACHMENT_BYTES,
  type OutboxStore,
  type OutboxStoreOptions,
  type SubmitAttempt,
} from './store';
export { allRecipients, pendingRecipients } from './rows';
export { attachmentProblems, oversize, rateLimitWait } from './limits';
