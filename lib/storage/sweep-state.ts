// Where each bucket's (and prefix's) last successful sweep ended, in DynamoDB (table
// `mailroom-sweep-state`, DYNAMODB_SWEEP_TABLE), so the next sweep, scheduled or run by
// an operator from any machine, lists only what came after it. Written only after a sweep
// in which every object of its window was read and started (or found started): a failed
// sweep leaves the mark where it was, and its objects are in the next sweep's window.
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-dynamodb';

export const sweepStateKey = (bucket: string, prefix = '') => `${bucket}|${prefix}`;

export interface SweepMark {
  /** Unix ms: every object modified up to here was read by a successful sweep. */
  sweptUntil: number;
  /** Unix ms: when that sweep finished. */
  sweptAt: number;
}

/** The mark, or undefined when no sweep has succeeded; `missingTable` when the table does not exist. */
export async function readSweepMark(
  dynamo: DynamoDBClient,
  table: string,
  bucket: string,
  prefix?: string,
): Promise<{ mark?: SweepMark; missingTable?: boolean }> {
  try {
    const out = await dynamo.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: sweepStateKey(bucket, prefix) } }, ConsistentRead: true }),
    );
    if (!out.Item?.swept_until?.N) return {};
    return { mark: { sweptUntil: Number(out.Item.swept_until.N), sweptAt: Number(out.Item.swept_at?.N ?? 0) } };
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return { missingTable: true };
    throw err;
  }
}

/**
 * Moves the mark forward to `sweptUntil` (never back: a slower sweep that started earlier
 * must not undo a later one's). Returns whether it moved.
 */
export async function recordSweepMark(
  dynamo: DynamoDBClient,
  table: string,
  bucket: string,
  prefix: string | undefined,
  mark: SweepMark & { read: number; started: number },
): Promise<boolean> {
  try {
    await dynamo.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          pk: { S: sweepStateKey(bucket, prefix) },
          swept_until: { N: String(mark.sweptUntil) },
          swept_at: { N: String(mark.sweptAt) },
          read: { N: String(mark.read) },
          started: { N: String(mark.started) },
        },
        ConditionExpression: 'attribute_not_exists(pk) OR swept_until < :u',
        ExpressionAttributeValues: { ':u': { N: String(mark.sweptUntil) } },
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return false;
    throw err;
  }
}
