// DynamoDB activities: blocklist, rules and the outbound-message log. Each lookup for
// many recipients is one BatchGetItem (chunks of 100), with UnprocessedKeys retried
// under backoff: DynamoDB returns them under throttling, and dropping them would
// silently let blocked mail through. Writes of many items go the same way (BatchWriteItem,
// chunks of 25, UnprocessedItems retried).
import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  BatchWriteItemCommand,
  type BatchWriteItemCommandOutput,
  type DynamoDBClient,
  type KeysAndAttributes,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { domainOf, normalizeAddress } from '../lib/address';
import type { Config } from '../lib/config';
import { sesMessageIdCandidates } from '../lib/bounce';
import type { RecipientRules } from '../lib/inbound-types';
import { findBlockingPattern } from '../lib/wildcard';
import { dynamodbRequests } from '../lib/metrics';

export interface DynamoDeps {
  dynamo: DynamoDBClient;
  config: Config;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** All items for the given hash-key values; missing keys are simply absent. */
export async function batchGetAll(dynamo: DynamoDBClient, table: string, keyName: string, values: readonly string[], maxRounds = 8): Promise<Record<string, unknown>[]> {
  const unique = [...new Set(values)];
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < unique.length; i += 100) {
    let request: Record<string, KeysAndAttributes> | undefined = {
      [table]: { Keys: unique.slice(i, i + 100).map((v) => ({ [keyName]: { S: v } })) },
    };
    for (let round = 0; request && Object.keys(request).length > 0; round++) {
      if (round >= maxRounds) throw new Error(`DynamoDB ${table}: keys still unprocessed after ${maxRounds} rounds (throttled); the activity will retry`);
      if (round > 0) await sleep(Math.min(2000, 50 * 2 ** round));
      dynamodbRequests.inc({ table, operation: 'BatchGetItem' });
      const out: BatchGetItemCommandOutput = await dynamo.send(new BatchGetItemCommand({ RequestItems: request }));
      for (const item of out.Responses?.[table] ?? []) items.push(unmarshall(item));
      request = out.UnprocessedKeys;
    }
  }
  return items;
}

/** Puts all items (chunks of 25, one request each); throws when some are still unprocessed after `maxRounds`. */
export async function batchWriteAll(dynamo: DynamoDBClient, table: string, items: readonly Record<string, AttributeValue>[], maxRounds = 8): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    let request: Record<string, WriteRequest[]> | undefined = { [table]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) };
    for (let round = 0; request && Object.keys(request).length > 0; round++) {
      if (round >= maxRounds) throw new Error(`DynamoDB ${table}: items still unwritten after ${maxRounds} rounds (throttled)`);
      if (round > 0) await sleep(Math.min(2000, 50 * 2 ** round));
      dynamodbRequests.inc({ table, operation: 'BatchWriteItem' });
      const out: BatchWriteItemCommandOutput = await dynamo.send(new BatchWriteItemCommand({ RequestItems: request }));
      request = out.UnprocessedItems;
    }
  }
}

const stringList = (v: unknown): string[] => {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (v instanceof Set) return [...v].filter((x): x is string => typeof x === 'string');
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  return [];
};

export function createDynamoActivities({ dynamo, config }: DynamoDeps) {
  return {
    /** Which recipients block the sender (From or envelope sender), and by which pattern. */
    async checkBlocklist(input: { senders: string[]; recipients: string[] }): Promise<{ recipient: string; pattern: string; sender: string }[]> {
      const items = await batchGetAll(dynamo, config.tables.blocked, 'email_address', input.recipients.map((r) => r.toLowerCase()));
      const byRecipient = new Map(items.map((it) => [String(it.email_address).toLowerCase(), stringList(it.blocked_patterns)]));
      const blocked: { recipient: string; pattern: string; sender: string }[] = [];
      for (const recipient of input.recipients) {
        const patterns = byRecipient.get(recipient.toLowerCase()) ?? [];
        for (const sender of input.senders) {
          const pattern = findBlockingPattern(sender, patterns);
          if (pattern) {
            blocked.push({ recipient, pattern, sender });
            break;
          }
        }
      }
      return blocked;
    },

    /** The original outbound message a bounce refers to, matched by either Message-ID form. */
    async findOutboundMessage(input: { messageIds: string[] }): Promise<{ messageId: string; source?: string; subject?: string; destinations: string[] } | null> {
      const candidates = input.messageIds.flatMap(sesMessageIdCandidates);
      if (candidates.length === 0) return null;
      const items = await batchGetAll(dynamo, config.tables.messages, 'MessageId', candidates);
      // Prefer the candidate order (the bare SES id first).
      for (const c of candidates) {
        const it = items.find((i) => i.MessageId === c);
        if (it) {
          return {
            messageId: c,
            source: typeof it.source === 'string' ? it.source : undefined,
            subject: typeof it.subject === 'string' ? it.subject : undefined,
            destinations: stringList(it.destinations),
          };
        }
      }
      return null;
    },

    /** Out-of-office and forwarding rules of the recipients, in one batch call. */
    async loadRules(input: { recipients: string[] }): Promise<RecipientRules[]> {
      const items = await batchGetAll(dynamo, config.tables.rules, 'email_address', input.recipients.map((r) => r.toLowerCase()));
      const out: RecipientRules[] = [];
      for (const it of items) {
        const recipient = String(it.email_address).toLowerCase();
        const ooo = it.ooo_active === true || it.ooo_active === 'true';
        // Normalised like every address (lib/address.ts); what is not an address is no forward.
        const forwards = [...new Set(stringList(it.forwards).map((f) => normalizeAddress(f)).filter((f): f is string => !!f && f !== recipient))];
        if (!ooo && forwards.length === 0) continue;
        out.push({
          recipient,
          outOfOffice: ooo ? { message: typeof it.ooo_message === 'string' && it.ooo_message ? it.ooo_message : 'I am out of the office.', contentType: it.ooo_content_type === 'html' ? 'html' : 'text' } : undefined,
          forwards,
          outside: forwards.filter((f) => !config.domains.includes(domainOf(f))),
        });
      }
      return out;
    },
  };
}
