// In-process DynamoDB emulator (dynalite, in memory) and the table layout mailroom
// expects, shared by the demo, the integration tests and any real DynamoDB endpoint.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { componentLogger } from '../../lib/observability/logger';

const log = componentLogger('local-dynamodb');

// dynalite ships no type declarations; this is the part of its API we use.
type Dynalite = (options: { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;

export const DUMMY_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface LocalDynamo {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export async function startDynamoServer(options: { port?: number } = {}): Promise<LocalDynamo> {
  // Loaded here, not at the top: dynalite is a dev dependency, and the production image's
  // setup job (scripts/setup-aws.ts) uses ensureTables from this file without it.
  const dynalite = require('dynalite') as Dynalite;
  // dynalite's default 500 ms CREATING phase only slows tests down.
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      // The SDK keeps sockets alive; without dropping them close() waits for their idle timeout.
      server.closeAllConnections();
      await closed;
    },
  };
}

export function dynamoClientFor(endpoint: string, region = 'us-east-1'): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region, credentials: DUMMY_CREDENTIALS });
}

export interface TableNames {
  blocked: string;
  rules: string;
  messages: string;
  autoreply: string;
  delivery: string;
  sweep: string;
}

export const DEFAULT_TABLES: TableNames = {
  blocked: 'email-blocked-senders',
  rules: 'email-rules',
  messages: 'ses-outbound-messages',
  autoreply: 'email-autoreply-log',
  delivery: 'email-delivery-log',
  sweep: 'mailroom-sweep-state',
};

/** Creates mailroom's tables where missing (existing ones are left as they are) and waits until all are ACTIVE. */
export async function ensureTables(client: DynamoDBClient, tables: TableNames = DEFAULT_TABLES): Promise<void> {
  const keys: [string, string][] = [
    [tables.blocked, 'email_address'],
    [tables.rules, 'email_address'],
    [tables.messages, 'MessageId'],
    [tables.autoreply, 'pk'],
    [tables.delivery, 'pk'],
    [tables.sweep, 'pk'],
  ];
  await Promise.all(
    keys.map(async ([name, hashKey]) => {
      const created = await createIfMissing(client, name, hashKey);
      await waitActive(client, name);
      if (created && (name === tables.autoreply || name === tables.delivery))
        await enableTtl(client, name, 'expires_at');
    }),
  );
}

async function createIfMissing(client: DynamoDBClient, name: string, hashKey: string): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: name }));
    return false;
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
  }
  try {
    await client.send(
      new CreateTableCommand({
        TableName: name,
        AttributeDefinitions: [{ AttributeName: hashKey, AttributeType: 'S' }],
        KeySchema: [{ AttributeName: hashKey, KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    log.info({ table: name }, 'created table');
    return true;
  } catch (err) {
    // Another process (a second worker, a parallel test) created it first.
    if ((err as Error).name === 'ResourceInUseException') return false;
    throw err;
  }
}

async function waitActive(client: DynamoDBClient, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    if (Date.now() > deadline)
      throw new Error(`DynamoDB table ${name} still ${Table?.TableStatus} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function enableTtl(client: DynamoDBClient, name: string, attribute: string): Promise<void> {
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: name,
        TimeToLiveSpecification: { Enabled: true, AttributeName: attribute },
      }),
    );
  } catch (err) {
    // dynalite has no TTL support; expiry is only housekeeping, the log is still correct without it.
    log.debug({ table: name, err: (err as Error).name }, 'could not enable TTL');
  }
}
