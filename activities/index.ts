// The inbound activity set, built from injected clients (the samples'
// activities-dependency-injection pattern): the worker passes real clients, tests pass
// clients pointing at local servers. One factory per pipeline step (activities/inbound/),
// each a thin adapter over lib/ (aws, smtp, storage, mail); the activity names are those
// in the recorded histories and must not change.
import type { Config } from '../lib/config';
import type { KeyList } from '../lib/config/key-list';
import type { AwsClients } from '../lib/aws/clients';
import type { Transports } from '../lib/smtp/transports';
import { heartbeating } from '../lib/temporal/heartbeat';
import { createDeliverActivities } from './inbound/deliver';
import { createDeliverAndTagActivities } from './inbound/deliver-and-tag';
import { createFetchActivities } from './inbound/fetch';
import { createFetchAndDeliverActivities } from './inbound/fetch-and-deliver';
import { createLookupActivities, createRecipientLookupActivities } from './inbound/lookups';
import { createRulesActivities } from './inbound/rules';
import { createTagActivities } from './inbound/tag';

export interface InboundDeps extends AwsClients {
  config: Config;
  transports: Transports;
  /** MAILROOM_CODEC_KEYS, for the address hashes fetchEmail reports (activities/inbound/fetch.ts). */
  addressHashKeys?: KeyList;
}

export function createInboundActivities(deps: InboundDeps) {
  // Each heartbeats while it runs, so a killed worker's activities are retried elsewhere
  // after the workflow's heartbeat timeout, not after their whole start-to-close timeout.
  const lookups = createLookupActivities(deps);
  const rules = createRulesActivities(deps);
  const recipientLookups = createRecipientLookupActivities({
    checkBlocklist: lookups.checkBlocklist,
    loadRules: rules.loadRules,
  });
  const deliver = createDeliverActivities(deps);
  const tag = createTagActivities(deps);
  // fetchEmail; asked with `lookups`, it also answers lookupRecipients and findOutboundMessage
  const fetch = createFetchActivities({
    ...deps,
    lookups: { ...recipientLookups, findOutboundMessage: lookups.findOutboundMessage },
  });
  const deliverAndTag = createDeliverAndTagActivities({ deliverEmail: deliver.deliverEmail, tagEmail: tag.tagEmail });
  return heartbeating({
    ...fetch,
    ...lookups, // checkBlocklist, findOutboundMessage
    ...recipientLookups, // lookupRecipients (fast path)
    ...deliver, // deliverEmail
    ...rules, // loadRules, forwardEmail, sendAutoReply
    ...tag, // tagEmail, deleteEmail
    // deliverAndTag (fast path): the delivery that ends an email tags it too
    ...deliverAndTag,
    // fetchAndDeliver (fast path): an email that needs nothing but its delivery, in one step
    ...createFetchAndDeliverActivities({ fetchEmail: fetch.fetchEmail, deliverAndTag: deliverAndTag.deliverAndTag }),
  });
}

export type InboundActivities = ReturnType<typeof createInboundActivities>;
