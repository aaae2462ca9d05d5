// A real SQS-compatible server for the SQS bridge's tests and the local stack: goaws
// (scripts/install-goaws.sh builds it with Go), a child process bound to 127.0.0.1 and
// configured by a generated YAML file. It speaks the AWS JSON protocol of the current
// @aws-sdk/client-sqs, keeps messages in memory, honours visibility timeouts, long
// polling and RedrivePolicy (maxReceiveCount), and does not check signatures.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from './ports';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';

export const GOAWS_VERSION = 'v0.5.4';
const BINARY = 'goaws-mailroom';

/** Any credentials do: goaws does not check signatures. */
export const GOAWS_CREDENTIALS = { accessKeyId: 'goaws', secretAccessKey: 'goaws' };

/** Finds the goaws build: $GOAWS_BIN, then PATH, then Go's bin directory. */
export function goawsBinary(): string {
  const candidates = [process.env.GOAWS_BIN];
  try {
    candidates.push(execFileSync('sh', ['-c', `command -v ${BINARY}`], { encoding: 'utf8' }).trim());
  } catch {
    /* not on PATH */
  }
  try {
    candidates.push(join(execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim(), 'bin', BINARY));
  } catch {
    /* no go */
  }
  candidates.push(join(process.env.HOME ?? '/root', 'go', 'bin', BINARY));
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found)
    throw new Error(`${BINARY} not found: run scripts/install-goaws.sh (builds goaws ${GOAWS_VERSION} with Go)`);
  return found;
}

export interface QueueSpec {
  name: string;
  visibilityTimeout?: number;
  /** JSON, as SQS takes it: {"maxReceiveCount": 3, "deadLetterTargetArn": "arn:aws:sqs:...:name"} */
  redrivePolicy?: string;
}

export interface LocalSqs {
  endpoint: string;
  port: number;
  /** The account id in queue URLs and ARNs (arn:aws:sqs::<account>:<name>). */
  accountId: string;
  stop(): Promise<void>;
}

function configYaml(port: number, accountId: string, queues: QueueSpec[]): string {
  // JSON is YAML; goaws reads it with ghodss/yaml. No Region: goaws would prefix it to the
  // host in queue URLs (us-east-1.127.0.0.1), which resolves nowhere.
  const env = {
    Local: {
      Host: '127.0.0.1',
      Port: String(port),
      AccountId: accountId,
      LogToFile: false,
      QueueAttributeDefaults: { VisibilityTimeout: 30, ReceiveMessageWaitTimeSeconds: 0 },
      Queues: queues.map((q) => ({
        Name: q.name,
        VisibilityTimeout: q.visibilityTimeout ?? 0,
        RedrivePolicy: q.redrivePolicy ?? '',
      })),
      Topics: [],
    },
  };
  return JSON.stringify(env, null, 2);
}

async function waitHealthy(
  endpoint: string,
  child: ChildProcess,
  output: () => string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`goaws exited (${child.exitCode ?? child.signalCode}): ${output()}`);
    try {
      const res = await fetch(`${endpoint}/health`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`goaws did not answer on ${endpoint} within ${timeoutMs} ms: ${output()}`);
}

/** Starts goaws on 127.0.0.1 (a free port unless given), with `queues` created at start. */
export async function startSqsServer(
  options: { port?: number; queues?: QueueSpec[]; accountId?: string; logLevel?: string } = {},
): Promise<LocalSqs> {
  const binary = goawsBinary();
  const port = options.port ?? (await freePort());
  const accountId = options.accountId ?? '000000000000';
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-goaws-'));
  const config = join(dir, 'goaws.yaml');
  writeFileSync(config, configYaml(port, accountId, options.queues ?? []));
  const child = spawn(binary, ['-config', config, '-bind', '127.0.0.1', '-loglevel', options.logLevel ?? 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(endpoint, child, () => out);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint,
    port,
    accountId,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function sqsClientFor(endpoint: string, region = 'us-east-1'): SQSClient {
  return new SQSClient({ endpoint, region, credentials: GOAWS_CREDENTIALS });
}

// `node --import tsx scripts/stack/sqs.ts [port] [queue...]`: goaws in the foreground.
if (require.main === module) {
  const [portArg, ...names] = process.argv.slice(2);
  startSqsServer({ port: portArg ? Number(portArg) : 4100, queues: names.map((name) => ({ name })), logLevel: 'info' })
    .then((sqs) => {
      console.log(`goaws ${GOAWS_VERSION} on ${sqs.endpoint} (AWS_ENDPOINT_URL_SQS=${sqs.endpoint}); Ctrl-C stops it`);
      const stop = () => void sqs.stop().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch((err: Error) => {
      console.error(err.message);
      process.exit(1);
    });
}
