// A complete inbound environment for end-to-end tests, all real servers on loopback:
// Temporal (the dev server, or the real server on PostgreSQL: temporalBackend), versitygw (S3), dynalite, an SMTP target for mailboxes and a second
// one on the "internal" port (so forwards can be told apart), the local SES v2 server for
// outbound mail (auto-replies, outside forwards), and a running worker.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { Payload } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createAwsClients } from '../../lib/aws/clients';
import { createTransports, type Transports } from '../../lib/smtp/transports';
import { bucketForDomain, type Config, loadConfig } from '../../lib/config';
import { mailroomDataConverter } from '../../lib/temporal/data-converter';
import { codecFromEnv, codecKeyList } from '../../lib/temporal/codec';
import { startInbound } from '../../starters/start-inbound';
import type { InboundResult } from '../../contracts/inbound';
import { inboundWorkflowId } from '../../contracts/inbound';
import type { ProcessInboundInput } from '../../contracts/inbound';
import { DEFAULT_TABLES, ensureTables, startDynamoServer } from '../../scripts/stack/dynamodb';
import { S3_CREDENTIALS, startS3Server } from '../../scripts/stack/s3';
import { type LocalSes, startSesServer } from '../../scripts/stack/ses';
import { startSmtpTarget, type SmtpTarget } from '../../scripts/stack/smtp-target';
import { localStackEnv } from '../../scripts/stack/worker-env';
import { createInboundWorker } from '../../workers/inbound';
import type { TemporalPostgresOptions } from '../../scripts/stack/temporal-postgres';
import { startTestTemporal, type TemporalBackend } from './temporal';

export const DOMAIN = 'example.com';
export const OTHER_DOMAIN = 'example.org';
export const BUCKET = bucketForDomain(DOMAIN);

export interface InboundStack {
  env: TestWorkflowEnvironment;
  config: Config;
  s3: S3Client;
  dynamo: DynamoDBClient;
  mail: SmtpTarget;
  internal: SmtpTarget;
  /** The SES v2 endpoint outbound mail goes to (unless outbound: 'smtp'). */
  ses: LocalSes;
  transports: Transports;
  worker: Worker;
  /** Environment for a starter script run as a child process against this stack. */
  childEnv: NodeJS.ProcessEnv;
  /** Puts a raw message into the domain bucket and returns its key. */
  put(raw: Buffer, key?: string, domain?: string): Promise<string>;
  run(input: Partial<ProcessInboundInput> & { key: string }): Promise<InboundResult>;
  metadata(key: string, bucket?: string): Promise<Record<string, string> | undefined>;
  putItem(table: string, item: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

let keyCounter = 0;

export interface InboundStackOptions {
  mailboxes: string[];
  env?: Record<string, string>;
  lmtp?: { host: string; port: number };
  /** dev (SQLite) or postgres (real server, 4 shards); default $MAILROOM_TEMPORAL_BACKEND, else dev. */
  temporalBackend?: TemporalBackend;
  /** Overrides for the postgres backend (test/support/temporal.ts). */
  temporalPostgres?: Partial<TemporalPostgresOptions>;
  /** Outbound mail through the local SES v2 server (default) or the SMTP target as relay. */
  outbound?: 'ses' | 'smtp';
}

export async function startInboundStack(opts: InboundStackOptions): Promise<InboundStack> {
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-e2e-'));
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  // Histories are encrypted as in production (lib/temporal/codec.ts), with a fresh key per stack;
  // childEnv carries it to starters and worker processes.
  const codecKeys = opts.env?.MAILROOM_CODEC_KEYS ?? `test:${randomBytes(32).toString('base64')}`;
  const dataConverter = mailroomDataConverter({ MAILROOM_CODEC_KEYS: codecKeys });
  const [s3srv, dyn, mail, internal, env, ses] = await Promise.all([
    startS3Server({ directory: join(dir, 's3') }),
    startDynamoServer(),
    startSmtpTarget({ directory: join(dir, 'mail'), localDomains: [DOMAIN, OTHER_DOMAIN], mailboxes: opts.mailboxes }),
    startSmtpTarget({
      directory: join(dir, 'internal'),
      localDomains: [DOMAIN, OTHER_DOMAIN],
      mailboxes: opts.mailboxes,
    }),
    startTestTemporal({ dataConverter, backend: opts.temporalBackend, postgres: opts.temporalPostgres }),
    startSesServer(),
  ]);
  const settings: Record<string, string> = {
    ...localStackEnv({
      s3: s3srv.endpoint,
      dynamodb: dyn.endpoint,
      domains: [DOMAIN, OTHER_DOMAIN],
      smtpPort: mail.port,
      internalSmtpPort: internal.port,
      ses: opts.outbound === 'smtp' ? undefined : ses.endpoint,
    }),
    WORKER_NAME: 'test-worker',
    TASK_QUEUE: `inbound-test-${process.pid}`,
    MAILROOM_CODEC_KEYS: codecKeys,
    ...(opts.lmtp ? { LMTP_ENABLED: 'true', LMTP_HOST: opts.lmtp.host, LMTP_PORT: String(opts.lmtp.port) } : {}),
    ...opts.env,
  };
  const config = loadConfig(settings);
  const aws = createAwsClients(config);
  await ensureTables(aws.dynamo, DEFAULT_TABLES);
  for (const d of [DOMAIN, OTHER_DOMAIN]) await aws.s3.send(new CreateBucketCommand({ Bucket: bucketForDomain(d) }));
  const transports = createTransports(config);
  const worker = await createInboundWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    client: env.client,
    dataConverter,
    deps: { ...aws, config, transports, addressHashKeys: codecKeyList({ MAILROOM_CODEC_KEYS: codecKeys }) },
    deployment: null,
  });
  const running = worker.run();

  const stack: InboundStack = {
    env,
    config,
    s3: aws.s3,
    dynamo: aws.dynamo,
    mail,
    internal,
    ses,
    transports,
    worker,
    childEnv: {
      ...process.env,
      ...settings,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: env.namespace ?? 'default',
      LOG_LEVEL: 'warn',
    },
    async put(raw, key = `mail-${process.pid}-${++keyCounter}`, domain = DOMAIN) {
      await aws.s3.send(
        new PutObjectCommand({ Bucket: bucketForDomain(domain), Key: key, Body: raw, ContentType: 'message/rfc822' }),
      );
      return key;
    },
    async run(input) {
      const full: ProcessInboundInput = { domain: DOMAIN, bucket: bucketForDomain(input.domain ?? DOMAIN), ...input };
      const { workflowId } = await startInbound(env.client, config.taskQueue, full);
      return env.client.workflow.getHandle(workflowId).result();
    },
    async metadata(key, bucket = BUCKET) {
      try {
        return (await aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata;
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
        throw err;
      }
    },
    async putItem(table, item) {
      await aws.dynamo.send(new PutItemCommand({ TableName: table, Item: marshall(item) }));
    },
    async stop() {
      worker.shutdown();
      await running;
      transports.close();
      await env.teardown();
      await Promise.all([mail.stop(), internal.stop(), s3srv.stop(), dyn.stop(), ses.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/**
 * The message of the first failed workflow task of `workflowId` (decrypted with the stack's
 * keys: the worker encrypts failure messages), waiting up to `timeoutMs` for one.
 */
export async function firstWorkflowTaskFailure(
  stack: InboundStack,
  workflowId: string,
  timeoutMs = 30_000,
): Promise<string> {
  const codec = codecFromEnv(stack.childEnv)!;
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    const history = await stack.env.client.workflow.getHandle(workflowId).fetchHistory();
    const failure = history.events?.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes
      ?.failure;
    if (failure) {
      if (!failure.encodedAttributes) return failure.message ?? '';
      const [attrs] = await codec.decode([failure.encodedAttributes as Payload]);
      return (JSON.parse(Buffer.from(attrs.data ?? []).toString('utf8')) as { message: string }).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${workflowId}: no failed workflow task within ${timeoutMs} ms`);
}

export { inboundWorkflowId };
