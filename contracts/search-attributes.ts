// Custom search attributes, so operators can filter runs in the Temporal Web UI
// ("all blocked mail for example.com", "failed syncs"). Registered by the local stack
// (temporal server start-dev --search-attribute ...) and by docker-compose's setup.
// Safe to import from workflow code: @temporalio/common is deterministic.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const MAIL_DOMAIN = defineSearchAttributeKey('MailDomain', SearchAttributeType.KEYWORD);
export const MAIL_STATUS = defineSearchAttributeKey('MailStatus', SearchAttributeType.KEYWORD);
export const ACCOUNT_ID = defineSearchAttributeKey('AccountId', SearchAttributeType.KEYWORD);
export const SYNC_STATUS = defineSearchAttributeKey('SyncStatus', SearchAttributeType.KEYWORD);
// The outbox status of a sendMessage run (scheduled, sending, sent, partial, failed, cancelled).
export const SEND_STATUS = defineSearchAttributeKey('SendStatus', SearchAttributeType.KEYWORD);
// Keyed hashes of an inbound email's sender (From and Return-Path) and recipients, never the
// addresses (lib/mail/address-hash.ts, docs/privacy.md): `npm run find` searches by them.
export const MAIL_FROM_HASH = defineSearchAttributeKey('MailFromHash', SearchAttributeType.KEYWORD_LIST);
export const MAIL_TO_HASH = defineSearchAttributeKey('MailToHash', SearchAttributeType.KEYWORD_LIST);

/** `name=Type` pairs for `temporal server start-dev --search-attribute`. */
export const SEARCH_ATTRIBUTE_FLAGS = [
  'MailDomain=Keyword',
  'MailStatus=Keyword',
  'AccountId=Keyword',
  'SyncStatus=Keyword',
  'SendStatus=Keyword',
  'MailFromHash=KeywordList',
  'MailToHash=KeywordList',
];
