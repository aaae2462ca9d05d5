// The inbound activity set, built from injected clients (the samples'
// activities-dependency-injection pattern): the worker passes real clients, tests pass
// clients pointing at local servers.
import type { Config } from '../lib/config';
import type { AwsClients } from './clients';
import { createDeliveryActivities, type Transports } from './delivery';
import { createDynamoActivities } from './dynamodb';
import { createRulesActivities } from './rules';
import { createS3Activities } from './s3';

export interface InboundDeps extends AwsClients {
  config: Config;
  transports: Transports;
}

export function createInboundActivities(deps: InboundDeps) {
  return {
    ...createS3Activities(deps),
    ...createDynamoActivities(deps),
    ...createDeliveryActivities(deps),
    ...createRulesActivities(deps),
  };
}

export type InboundActivities = ReturnType<typeof createInboundActivities>;
