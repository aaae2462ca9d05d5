// The S3 server of the local stack, the demo, the chaos stack and the tests: Versity S3
// Gateway (versitygw, built with Go by scripts/install-versitygw.sh), the server
// docker-compose.yml runs from its published image, as a child process on 127.0.0.1 with
// its posix backend. Buckets are directories and objects plain files under `directory`
// (inspectable by hand); metadata lives in a sidecar directory beside them, so any file
// system does (the default, extended attributes, is not available everywhere). It checks
// SigV4 signatures, so clients must sign with S3_CREDENTIALS.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BucketAlreadyOwnedByYou, CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './ports';

export const S3_SERVER_VERSION = 'v1.8.0';
const BINARY = 'versitygw';
/** Where versitygw answers GET with 200 once it serves S3 (its --health option). */
const HEALTH_PATH = '/health';

/** The root account of the local S3 server (development only; docker-compose.yml uses the same). */
export const S3_CREDENTIALS = { accessKeyId: 'mailroom', secretAccessKey: 'mailroom-local-secret' };

/** Finds the versitygw build: $S3_SERVER_BIN, then PATH, then Go's bin directory. */
export function s3ServerBinary(): string {
  const candidates = [process.env.S3_SERVER_BIN];
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
    throw new Error(
      `${BINARY} not found: run scripts/install-versitygw.sh (go install github.com/versity/versitygw/cmd/versitygw@${S3_SERVER_VERSION}) or npm run setup`,
    );
  return found;
}

export interface LocalS3 {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

async function waitHealthy(
  endpoint: string,
  child: ChildProcess,
  output: () => string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`versitygw exited (${child.exitCode ?? child.signalCode}): ${output()}`);
    try {
      const res = await fetch(`${endpoint}${HEALTH_PATH}`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`versitygw did not answer on ${endpoint} within ${timeoutMs} ms: ${output()}`);
}

/** Starts versitygw on 127.0.0.1 (a free port unless given), storing under `directory`. */
export async function startS3Server(options: { port?: number; directory: string }): Promise<LocalS3> {
  const binary = s3ServerBinary();
  const data = join(options.directory, 'data');
  const sidecar = join(options.directory, 'meta');
  mkdirSync(data, { recursive: true });
  mkdirSync(sidecar, { recursive: true });
  const port = options.port ?? (await freePort());
  const credentials = ['--access', S3_CREDENTIALS.accessKeyId, '--secret', S3_CREDENTIALS.secretAccessKey];
  // --keep-alive: the SDK reuses connections; without it the server closes each after one request.
  const args = [
    ...credentials,
    '--port',
    `127.0.0.1:${port}`,
    '--health',
    HEALTH_PATH,
    '--keep-alive',
    '--quiet',
    'posix',
    '--sidecar',
    sidecar,
    data,
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
    throw err;
  }
  return {
    endpoint,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

export function s3ClientFor(endpoint: string, region = 'us-east-1'): S3Client {
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
    // Only checksum where S3 itself requires it, as the worker does against local endpoints
    // (lib/aws/clients.ts), so the tests exercise the worker's request shapes.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Creates each bucket unless it exists (idempotent: the demo and stacks run it at every start). */
export async function ensureBuckets(client: S3Client, buckets: string[]): Promise<void> {
  for (const Bucket of buckets) {
    try {
      await client.send(new CreateBucketCommand({ Bucket }));
    } catch (err) {
      if (!(err instanceof BucketAlreadyOwnedByYou)) throw err;
    }
  }
}

// `node --import tsx scripts/stack/s3.ts [port] [directory]`: versitygw in the foreground.
if (require.main === module) {
  const [portArg, dirArg] = process.argv.slice(2);
  startS3Server({ port: portArg ? Number(portArg) : 7070, directory: dirArg ?? join('.local', 's3') })
    .then((s3) => {
      console.log(
        `versitygw ${S3_SERVER_VERSION} on ${s3.endpoint} (AWS_ENDPOINT_URL_S3=${s3.endpoint}, key ${S3_CREDENTIALS.accessKeyId} / ${S3_CREDENTIALS.secretAccessKey}); Ctrl-C stops it`,
      );
      const stop = () => void s3.stop().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch((err: Error) => {
      console.error(err.message);
      process.exit(1);
    });
}
