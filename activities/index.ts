// The inbound activity set, built from injected clients (the samples'
// activities-dependency-injection pattern): the worker passes real clients, tests pass
// clients pointing at local servers.
import type { Config } from '../lib/config';
import type { AwsClients } from './clients';
import { createDeliveryActivities, type Transports } from './delivery';
import { createDynamoActivities } from './dynamodb';
import { heartbeating } from './heartbeat';
import { createRulesActivities } from './rules';
import { createS3Activities } from './s3';

export interface InboundDeps extends AwsClients {
  config: Config;
  transports: Transports;
}

export function createInboundActivities(deps: InboundDeps) {
  // Each heartbeats while it runs, so a killed worker's activities are retried elsewhere
  // after the workflow's heartbeat timeout, not after their whole start-to-close timeout.
  return heartbeating({
    ...createS3Activities(deps),
    ...createDynamoActivities(deps),
    ...createDeliveryActivities(deps),
    ...createRulesActivities(deps),
  });
}

export type InboundActivities = ReturnType<typeof createInboundActivities>;
