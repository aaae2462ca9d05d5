// DynamoDB batch calls for many keys at once. Each lookup for many recipients is one
// BatchGetItem (chunks of 100), with UnprocessedKeys retried under backoff: DynamoDB returns
// them under throttling, and dropping them would silently let blocked mail through. Writes of
// many items go the same way (BatchWriteItem, chunks of 25, UnprocessedItems retried).
// Reads of different tables started together (in the same turn of the event loop: the copy
// counter, the blocklist, the rules and a bounce's outbound message, read by fetchEmail at
// once) go out as one BatchGetItem (issue 24: DynamoDB requests per email); a merged read
// that fails is sent again table by table, so one unreadable table fails only its own lookup.
// Best-effort writes (the copy counter) can wait for the next write to their table (writeBehind).
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

/** BatchGetItem's limit on keys per request. */
const MAX_GET_KEYS = 100;

/** One table's part of a BatchGetItem, waiting for the next flush. */
interface PendingGet {
  table: string;
  keys: Record<string, AttributeValue>[];
  resolve(out: { items: Record<string, AttributeValue>[]; unprocessed?: KeysAndAttributes }): void;
  reject(err: unknown): void;
}

const pendingGets = new WeakMap<DynamoDBClient, PendingGet[]>();

/** Sends parts as one request (distinct tables, at most MAX_GET_KEYS keys in all) and hands each its items. */
async function sendGets(dynamo: DynamoDBClient, parts: PendingGet[]): Promise<void> {
  const request = Object.fromEntries(parts.map((p) => [p.table, { Keys: p.keys }]));
  dynamodbRequests.inc({ table: parts.map((p) => p.table).join('+'), operation: 'BatchGetItem' });
  let out: BatchGetItemCommandOutput;
  try {
    out = await dynamo.send(new BatchGetItemCommand({ RequestItems: request }));
  } catch (err) {
    if (parts.length === 1) parts[0].reject(err);
    // One table missing or unreadable fails the whole request: each part again on its own.
    else for (const p of parts) void sendGets(dynamo, [p]);
    return;
  }
  for (const p of parts)
    p.resolve({
      items: out.Responses?.[p.table] ?? [],
      ...(out.UnprocessedKeys?.[p.table] ? { unprocessed: out.UnprocessedKeys[p.table] } : {}),
    });
}

/** Every part queued in this turn, grouped into as few requests as the limits allow. */
function flushGets(dynamo: DynamoDBClient): void {
  const queue = pendingGets.get(dynamo) ?? [];
  pendingGets.delete(dynamo);
  const groups: PendingGet[][] = [];
  for (const part of queue) {
    const group = groups.find(
      (g) =>
        !g.some((p) => p.table === part.table) &&
        g.reduce((n, p) => n + p.keys.length, 0) + part.keys.length <= MAX_GET_KEYS,
    );
    if (group) group.push(part);
    else groups.push([part]);
  }
  for (const g of groups) void sendGets(dynamo, g);
}

/** One table's keys (at most MAX_GET_KEYS), read with whatever other tables are read in the same turn. */
function getTogether(
  dynamo: DynamoDBClient,
  table: string,
  keys: Record<string, AttributeValue>[],
): Promise<{ items: Record<string, AttributeValue>[]; unprocessed?: KeysAndAttributes }> {
  return new Promise((resolve, reject) => {
    let queue = pendingGets.get(dynamo);
    if (!queue) {
      pendingGets.set(dynamo, (queue = []));
      queueMicrotask(() => flushGets(dynamo));
    }
    queue.push({ table, keys, resolve, reject });
  });
}

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
  for (let i = 0; i < unique.length; i += MAX_GET_KEYS) {
    let keys: Record<string, AttributeValue>[] | undefined = unique
      .slice(i, i + MAX_GET_KEYS)
      .map((v) => ({ [keyName]: { S: v } }));
    for (let round = 0; keys?.length; round++) {
      if (round >= maxRounds)
        throw new Error(
          `DynamoDB ${table}: keys still unprocessed after ${maxRounds} rounds (throttled); the activity will retry`,
        );
      if (round > 0) await sleep(Math.min(2000, 50 * 2 ** round));
      const out = await getTogether(dynamo, table, keys);
      for (const item of out.items) items.push(unmarshall(item));
      keys = out.unprocessed?.Keys;
    }
  }
  return items;
}

/** Best-effort items waiting to go out with the next write to their table (writeBehind). */
interface PendingWrites {
  keyName: string;
  items: Record<string, AttributeValue>[];
  timer: NodeJS.Timeout;
  onError(err: Error): void;
}

const pendingWrites = new WeakMap<DynamoDBClient, Map<string, PendingWrites>>();

/** The items waiting for `table`, taken out of the queue (their timer stopped). */
function takePending(dynamo: DynamoDBClient, table: string): PendingWrites | undefined {
  const byTable = pendingWrites.get(dynamo);
  const pending = byTable?.get(table);
  if (!pending) return undefined;
  byTable!.delete(table);
  clearTimeout(pending.timer);
  return pending;
}

/**
 * Puts best-effort items (the copy counter) with the next batchWriteAll to the same table, or on
 * their own after `maxDelayMs`: an email's counter then goes out with its delivery log entries,
 * one request instead of two (issue 24). Only for items whose loss is already acceptable (a
 * write that fails is logged and dropped, as when DynamoDB is down), since a worker that dies
 * meanwhile never writes them. `keyName`: the table's hash key, so a later item for the same key
 * replaces a waiting one (one request may not put a key twice).
 */
export function writeBehind(
  dynamo: DynamoDBClient,
  table: string,
  keyName: string,
  items: readonly Record<string, AttributeValue>[],
  onError: (err: Error) => void,
  maxDelayMs = 1000,
): void {
  if (items.length === 0) return;
  const earlier = takePending(dynamo, table);
  const merged = mergeByKey(keyName, earlier?.items ?? [], items);
  const timer = setTimeout(() => {
    const due = takePending(dynamo, table);
    if (due) batchWriteAll(dynamo, table, due.items, 4).catch(due.onError);
  }, maxDelayMs);
  let byTable = pendingWrites.get(dynamo);
  if (!byTable) pendingWrites.set(dynamo, (byTable = new Map()));
  byTable.set(table, { keyName, items: merged, timer, onError });
}

/** `earlier` then `later`, a key of `later` replacing the same key of `earlier`. */
function mergeByKey(
  keyName: string,
  earlier: readonly Record<string, AttributeValue>[],
  later: readonly Record<string, AttributeValue>[],
): Record<string, AttributeValue>[] {
  const keyOf = (item: Record<string, AttributeValue>) => JSON.stringify(item[keyName]);
  const replaced = new Set(later.map(keyOf));
  return [...earlier.filter((i) => !replaced.has(keyOf(i))), ...later];
}

/**
 * Puts all items (chunks of 25, one request each), with any best-effort items waiting for the
 * table (writeBehind); throws when some are still unprocessed after `maxRounds`.
 */
export async function batchWriteAll(
  dynamo: DynamoDBClient,
  table: string,
  ownItems: readonly Record<string, AttributeValue>[],
  maxRounds = 8,
): Promise<void> {
  const waiting = takePending(dynamo, table);
  const items = waiting ? mergeByKey(waiting.keyName, waiting.items, ownItems) : ownItems;
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
