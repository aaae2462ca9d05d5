// Workflow bundle of the sync worker (workers/sync.ts) and of the send worker beside it
// (workers/send.ts, its own task queue): the account workflows only, kept apart from the
// inbound bundle (workflows/inbound.ts) so each worker loads just its own; with them the
// delivery of new-message webhooks (workflows/messageWebhook.ts).
export { syncAccount } from './syncAccount';
export { deliverMessageWebhook } from './messageWebhook';
export { sendMessage } from './sendMessage';
