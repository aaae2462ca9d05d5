// DynamoDB batch calls for many keys at once. Each lookup for many recipients is one
// BatchGetItem (chunks of 100), with UnprocessedKeys retried under backoff: DynamoDB returns
// them under throttling, and dropping them would silently let blocked mail through. Writes of
// many items go the same way (BatchWriteItem, chunks of 25, UnprocessedItems retried).
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
import { dynamodbRequests } from '../observability/metrics';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** All items for the given hash-key values; missing keys are simply absent. */
export async function batchGetAll(
  dynamo: DynamoDBClient,
  table: string,
  keyName: string,
  values: readonly string[],
  maxRounds = 8,
): Promise<Record<string, unknown>[]> {
  const unique = [...new Set(values)];
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < unique.length; i += 100) {
    let request: Record<string, KeysAndAttributes> | undefined = {
      [table]: { Keys: unique.slice(i, i + 100).map((v) => ({ [keyName]: { S: v } })) },
    };
    for (let round = 0; request && Object.keys(request).length > 0; round++) {
      if (round >= maxRounds)
        throw new Error(
          `DynamoDB ${table}: keys still unprocessed after ${maxRounds} rounds (throttled); the activity will retry`,
        );
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
export async function batchWriteAll(
  dynamo: DynamoDBClient,
  table: string,
  items: readonly Record<string, AttributeValue>[],
  maxRounds = 8,
): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    let request: Record<string, WriteRequest[]> | undefined = {
      [table]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })),
    };
    for (let round = 0; request && Object.keys(request).length > 0; round++) {
      if (round >= maxRounds)
        throw new Error(`DynamoDB ${table}: items still unwritten after ${maxRounds} rounds (throttled)`);
      if (round > 0) await sleep(Math.min(2000, 50 * 2 ** round));
      dynamodbRequests.inc({ table, operation: 'BatchWriteItem' });
      const out: BatchWriteItemCommandOutput = await dynamo.send(new BatchWriteItemCommand({ RequestItems: request }));
      request = out.UnprocessedItems;
    }
  }
}

/** A list attribute as strings, whether stored as a list, a string set or a comma-separated string. */
export const stringList = (v: unknown): string[] => {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (v instanceof Set) return [...v].filter((x): x is string => typeof x === 'string');
  if (typeof v === 'string')
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return [];
};
