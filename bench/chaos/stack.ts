// The local stack as the chaos harness needs it: every server a separate, breakable
// piece. S3 and DynamoDB sit behind fault proxies, the worker is a real child process
// (workers/main.ts, killable with SIGKILL), Temporal is the dev server or the server on
// PostgreSQL (both killable and restartable on their own state), and the SMTP targets
// can defer, refuse or hold a reply.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { Client, Connection } from '@temporalio/client';
import { bucketForDomain } from '../../lib/config';
import {
  DEFAULT_TABLES,
  dynamoClientFor,
  ensureTables,
  startDynamoServer,
  type LocalDynamo,
} from '../../scripts/stack/dynamodb';
import { startHttpFaultProxy, type HttpFaultProxy } from '../../scripts/stack/fault-proxy';
import { freePort } from '../../scripts/stack/ports';
import { S3_CREDENTIALS, s3ClientFor, startS3Server, type LocalS3 } from '../../scripts/stack/s3';
import { startSmtpTarget, type SmtpTarget } from '../../scripts/stack/smtp-target';
import { startTemporalDevServer } from '../../scripts/stack/temporal-dev';
import { localStackEnv } from '../../scripts/stack/worker-env';
import {
  DEFAULT_TEMPORAL_PG_URL,
  freeTemporalPort,
  startTemporalPostgres,
} from '../../scripts/stack/temporal-postgres';
import { dropDatabase, withDatabase } from '../../lib/storage/db';
import { onlyOnce } from './interrupt';
import { ALL_MAILBOXES, AWAY, BLOCKER, DOMAIN, LOOP_PEER, LOOPER, LOOPER2, STRIPPING_PEER } from './mails';

export const OTHER_DOMAIN = 'example.org';
export type Backend = 'dev' | 'postgres';

const ROOT = join(__dirname, '..', '..');

interface RunningTemporal {
  address: string;
  uiUrl: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export interface ChaosStack {
  dir: string;
  taskQueue: string;
  backend: Backend;
  client: Client;
  /** Direct clients (not through the fault proxies), for the harness's own reads. */
  s3: S3Client;
  dynamo: DynamoDBClient;
  s3Proxy: HttpFaultProxy;
  dynamoProxy: HttpFaultProxy;
  mail: SmtpTarget;
  internal: SmtpTarget;
  maxMessageBytes: number;
  put(raw: Buffer, key: string, domain?: string): Promise<void>;
  metadata(key: string, domain?: string): Promise<Record<string, string> | undefined>;
  /**
   * Starts worker process `index` (default 0) on the stack's task queue unless it runs. Several
   * indexes run several processes on the one queue (test/integration/multi-worker.test.ts);
   * each has its own identity, `workerIdentity(index)`, kept across restarts.
   */
  startWorker(index?: number): Promise<void>;
  /** SIGKILLs worker process `index` (default 0) and waits until it is gone. */
  killWorker(index?: number): Promise<void>;
  /** The identity worker `index` gives Temporal (WORKER_NAME): it names it in the histories. */
  workerIdentity(index?: number): string;
  /** SIGKILLs the Temporal server, waits `downMs`, starts it again on the same state. */
  crashTemporal(downMs: number): Promise<void>;
  useBackend(backend: Backend): Promise<void>;
  workerLog: string;
  temporalAddress(): string;
  stop(): Promise<void>;
}

export async function startChaosStack(
  opts: {
    backend?: Backend;
    maxMessageBytes?: number;
    /** More worker settings (a shortened run's deferral delays, bench/chaos.ts). */
    workerEnv?: Record<string, string>;
  } = {},
): Promise<ChaosStack> {
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-chaos-'));
  const maxMessageBytes = opts.maxMessageBytes ?? 40 * 2 ** 20;
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  const domains = [DOMAIN, OTHER_DOMAIN];
  const [s3srv, dyn, mail, internal]: [LocalS3, LocalDynamo, SmtpTarget, SmtpTarget] = await Promise.all([
    startS3Server({ directory: join(dir, 's3') }),
    startDynamoServer(),
    startSmtpTarget({ directory: join(dir, 'mail'), localDomains: domains, mailboxes: ALL_MAILBOXES }),
    startSmtpTarget({ directory: join(dir, 'internal'), localDomains: domains, mailboxes: ALL_MAILBOXES }),
  ]);
  const [s3Proxy, dynamoProxy] = await Promise.all([
    startHttpFaultProxy({ target: s3srv.endpoint, kind: 's3', seed: 1 }),
    startHttpFaultProxy({ target: dyn.endpoint, kind: 'dynamodb', seed: 2 }),
  ]);
  const s3 = s3ClientFor(s3srv.endpoint);
  const dynamo = dynamoClientFor(dyn.endpoint);
  await ensureTables(dynamo, DEFAULT_TABLES);
  for (const d of domains) await s3.send(new CreateBucketCommand({ Bucket: bucketForDomain(d) }));
  const putItem = (table: string, item: Record<string, unknown>) =>
    dynamo.send(new PutItemCommand({ TableName: table, Item: marshall(item) }));
  await putItem(DEFAULT_TABLES.blocked, { email_address: BLOCKER, blocked_patterns: ['*@spam.example'] });
  await putItem(DEFAULT_TABLES.rules, {
    email_address: AWAY,
    ooo_active: true,
    ooo_message: 'Away until Monday.',
    ooo_content_type: 'text',
    forwards: [],
  });
  await putItem(DEFAULT_TABLES.rules, { email_address: LOOPER, ooo_active: false, forwards: [LOOP_PEER] });
  await putItem(DEFAULT_TABLES.rules, { email_address: LOOPER2, ooo_active: false, forwards: [STRIPPING_PEER] });

  // The PostgreSQL backend's other services take ports next to the frontend's.
  const temporalPort = await freeTemporalPort();
  const uiPort = await freePort();
  const taskQueue = `chaos-${process.pid}`;
  let backend: Backend = opts.backend ?? 'dev';
  const temporalDatabases = {
    default: `chaos_temporal_${process.pid}`,
    visibility: `chaos_temporal_vis_${process.pid}`,
  };
  let usedPostgres = backend === 'postgres';
  const startTemporal = async (b: Backend): Promise<RunningTemporal> =>
    b === 'dev'
      ? startTemporalDevServer({
          dbFile: join(dir, 'temporal.sqlite'),
          port: temporalPort,
          uiPort,
          logFile: join(dir, 'temporal-dev.log'),
        })
      : startTemporalPostgres({
          port: temporalPort,
          uiPort,
          stateDir: join(dir, 'temporal-pg'),
          logFile: join(dir, 'temporal-pg.log'),
          databases: temporalDatabases,
        });

  let temporal = await startTemporal(backend);
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: 'default' });

  const workers = new Map<number, ChildProcess>();
  const workerLog = join(dir, 'worker.log');
  const workerIdentity = (index = 0) => (index === 0 ? 'chaos-worker' : `chaos-worker-${index}`);
  const workerEnv = async (index: number): Promise<NodeJS.ProcessEnv> => ({
    ...process.env,
    ...localStackEnv({
      s3: s3Proxy.endpoint,
      dynamodb: dynamoProxy.endpoint,
      domains,
      smtpPort: mail.port,
      internalSmtpPort: internal.port,
    }),
    MAX_MESSAGE_BYTES: String(maxMessageBytes),
    AUTOREPLY_INTERVAL_HOURS: '1',
    TASK_QUEUE: taskQueue,
    WORKER_NAME: workerIdentity(index),
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: 'default',
    // Plaintext payloads: the harness reads results without the codec.
    MAILROOM_CODEC_KEYS: 'none',
    HEALTH_PORT: String(await freePort()),
    METRICS_PORT: String(await freePort()),
    TEMPORAL_METRICS_BIND: `127.0.0.1:${await freePort()}`,
    // 'worker started' (info) is how startWorker knows it is up.
    LOG_LEVEL: 'info',
    ...opts.workerEnv,
  });

  const stack: ChaosStack = {
    dir,
    taskQueue,
    get backend() {
      return backend;
    },
    client,
    s3,
    dynamo,
    s3Proxy,
    dynamoProxy,
    mail,
    internal,
    maxMessageBytes,
    workerLog,
    temporalAddress: () => temporal.address,
    async put(raw, key, domain = DOMAIN) {
      await s3.send(
        new PutObjectCommand({ Bucket: bucketForDomain(domain), Key: key, Body: raw, ContentType: 'message/rfc822' }),
      );
    },
    async metadata(key, domain = DOMAIN) {
      try {
        return (await s3.send(new HeadObjectCommand({ Bucket: bucketForDomain(domain), Key: key }))).Metadata ?? {};
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
        throw err;
      }
    },
    workerIdentity,
    async startWorker(index = 0) {
      const running = workers.get(index);
      if (running && running.exitCode === null && running.signalCode === null) return;
      // Worker 0 writes worker.log as before; more workers write worker-<index>.log beside it.
      const logFile = index === 0 ? workerLog : join(dir, `worker-${index}.log`);
      const log = createWriteStream(logFile, { flags: 'a' });
      const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
        cwd: ROOT,
        env: await workerEnv(index),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.pipe(log);
      child.stderr!.pipe(log);
      workers.set(index, child);
      // Ready when it says so; a worker that dies on start must not leave the harness waiting.
      await new Promise<void>((resolve, reject) => {
        let seen = '';
        const onData = (d: Buffer) => {
          seen += d.toString();
          if (seen.includes('worker started')) {
            child.stdout!.off('data', onData);
            resolve();
          }
        };
        child.stdout!.on('data', onData);
        child.once('exit', (code, signal) =>
          reject(new Error(`worker exited (${signal ?? code}) before it started; see ${logFile}`)),
        );
      });
    },
    async killWorker(index = 0) {
      const w = workers.get(index);
      if (!w || w.exitCode !== null || w.signalCode !== null) return;
      const exited = once(w, 'exit');
      w.kill('SIGKILL');
      await exited;
    },
    async crashTemporal(downMs) {
      await temporal.kill();
      await new Promise((r) => setTimeout(r, downMs));
      temporal = await startTemporal(backend);
    },
    async useBackend(b) {
      if (b === backend) return;
      await stack.killWorker();
      await temporal.stop();
      backend = b;
      usedPostgres ||= b === 'postgres';
      temporal = await startTemporal(b);
      await stack.startWorker();
    },
    // Once only: an interrupted run stops the stack from its signal handler and from its `finally`.
    stop: onlyOnce(async () => {
      for (const index of workers.keys()) await stack.killWorker(index);
      await connection.close();
      await temporal.stop();
      await Promise.all([s3Proxy.stop(), dynamoProxy.stop(), mail.stop(), internal.stop(), s3srv.stop(), dyn.stop()]);
      if (usedPostgres)
        for (const name of Object.values(temporalDatabases))
          await dropDatabase(withDatabase(DEFAULT_TEMPORAL_PG_URL, name));
      rmSync(dir, { recursive: true, force: true });
    }),
  };
  return stack;
}
