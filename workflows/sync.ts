// Workflow bundle of the sync worker (workers/sync.ts): the account-sync workflows only,
// kept apart from the inbound bundle (workflows/inbound.ts) so each worker loads just its own;
// with them the delivery of new-message webhooks (workflows/messageWebhook.ts).
export { syncAccount } from './syncAccount';
export { deliverMessageWebhook } from './messageWebhook';
export { watchAccount } from './watchAccount';
