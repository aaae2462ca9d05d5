// Entry point of the inbound workflow bundle (the worker's workflowsPath).
export { processInboundEmail } from './processInboundEmail';
export { sweepDomain } from './sweepDomain';
