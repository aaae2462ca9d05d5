// Workflow bundle of the sync worker (workers/sync.ts): the account-sync workflows only,
// kept apart from the inbound bundle (workflows/inbound.ts) so each worker loads just its own.
export { syncAccount } from './syncAccount';
export { watchAccount } from './watchAccount';
