// The production image's build, as its Dockerfile runs it, without Docker: production
// dependencies only (npm ci --omit=dev) in a scratch directory, the app compiled and its
// workflow bundles built there (npm run build), then the workers started from that directory
// with `node` alone: the inbound worker processes an email from the bundle made at build
// time, the sync worker starts from its bundle.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { rawMail } from '../../scripts/stack/demo-emails';
import { freePort } from '../../scripts/stack/ports';
import { imageWorkerArgs } from '../../scripts/stack/image-command';
import { startInbound } from '../../starters/start-inbound';
import { BUCKET, DOMAIN, type InboundStack, startInboundStack } from '../support/inbound-stack';

const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);
let app: string;
let stack: InboundStack;
const children: ChildProcess[] = [];

before(async () => {
  app = mkdtempSync(join(tmpdir(), 'mailroom-image-'));
  for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(ROOT, f), join(app, f));
  // The Dockerfile's commands: production dependencies, then `npm run build` into the app.
  await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: app,
    timeout: 300_000,
  });
  await run('bash', [join(ROOT, 'scripts', 'build.sh'), join(app, 'dist')], { cwd: ROOT, timeout: 300_000 });
  stack = await startInboundStack({ mailboxes: ['alice@example.com'] });
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.stop();
  if (app) rmSync(app, { recursive: true, force: true });
});

/** Starts `node <script>` (or `node <args...>`) in the scratch app; resolves once `ready` matches a log line. */
async function startCompiled(
  script: string | string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ child: ChildProcess; output: () => string; ms: number }> {
  const started = Date.now();
  const argv = typeof script === 'string' ? [script] : script;
  const child = spawn(process.execPath, argv, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  while (!ready.test(out)) {
    if (child.exitCode !== null) assert.fail(`${argv.join(' ')} exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) assert.fail(`${argv.join(' ')} did not log ${ready} within 60 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, output: () => out, ms: Date.now() - started };
}

test('production dependencies only: no TypeScript tooling, test servers or s3rver', () => {
  const modules = join(app, 'node_modules');
  for (const dev of [
    'tsx',
    'typescript',
    'eslint',
    'dynalite',
    '@temporalio/testing',
    'playwright-core',
    's3rver',
    'dicer',
  ]) {
    assert.equal(existsSync(join(modules, dev)), false, `${dev} is not in the production install`);
  }
  assert.ok(existsSync(join(modules, '@temporalio', 'worker')));
  assert.deepEqual(readdirSync(join(app, 'dist', 'workflow-bundles')).sort(), ['inbound.js', 'sync.js']);
});

test('the compiled inbound worker starts with node alone, loads the prebuilt bundle and processes an email', async () => {
  const taskQueue = `compiled-${process.pid}`;
  const env = {
    ...stack.childEnv,
    TASK_QUEUE: taskQueue,
    HEALTH_PORT: String(await freePort()),
    METRICS_PORT: String(await freePort()),
    TEMPORAL_METRICS_BIND: `127.0.0.1:${await freePort()}`,
    WORKER_NAME: 'compiled-worker',
    LOG_LEVEL: 'info',
  };
  // Exactly the image's command line (Dockerfile CMD): its V8 options must be ones this Node accepts.
  const args = imageWorkerArgs();
  assert.equal(args.at(-1), 'dist/workers/main.js', 'the image starts the inbound worker');
  const worker = await startCompiled(args, env, /"msg":"worker started"/);
  console.log(`compiled worker ready in ${worker.ms} ms (prebuilt workflow bundle)`);
  assert.match(worker.output(), /"workflowBundle":"[^"]*dist\/workflow-bundles\/inbound\.js"/);
  assert.doesNotMatch(worker.output(), /Workflow bundle created/, 'no webpack at start');

  const key = await stack.put(
    rawMail({ from: 'x@sender.example', to: ['alice@example.com'], subject: 'Through the compiled worker' }),
  );
  const { workflowId } = await startInbound(stack.env.client, taskQueue, { domain: DOMAIN, bucket: BUCKET, key });
  const result = await stack.env.client.workflow.getHandle(workflowId).result();
  assert.equal(result.status, 'delivered');
  assert.equal((await stack.metadata(key))?.processed_by, 'compiled-worker');
  assert.equal(
    (await stack.mail.messagesFor('alice@example.com')).filter((m) =>
      m.includes('Subject: Through the compiled worker'),
    ).length,
    1,
  );

  worker.child.kill('SIGTERM');
  const [code] = await once(worker.child, 'exit');
  assert.equal(code, 0, worker.output());
});

test("compose's setup job runs from the compiled app: tables and buckets, twice (idempotent)", async () => {
  for (let i = 0; i < 2; i++) {
    const { stdout } = await run(process.execPath, [join('dist', 'scripts', 'setup-aws.js')], {
      cwd: app,
      env: { ...stack.childEnv, LOG_LEVEL: 'info' },
      timeout: 60_000,
    });
    assert.match(
      stdout,
      /"buckets":\["example-com-emails","example-org-emails"\],"msg":"DynamoDB tables and S3 buckets ready"/,
    );
  }
});

test('the compiled sync worker starts from its prebuilt bundle', async () => {
  const env = {
    ...stack.childEnv,
    SYNC_TASK_QUEUE: `compiled-sync-${process.pid}`,
    SYNC_METRICS_PORT: '0',
    MAILROOM_SECRET_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    LOG_LEVEL: 'info',
  };
  const worker = await startCompiled(join('dist', 'workers', 'sync-main.js'), env, /"msg":"sync worker started"/);
  assert.match(worker.output(), /"workflowBundle":"[^"]*dist\/workflow-bundles\/sync\.js"/);
  worker.child.kill('SIGTERM');
  const [code] = await once(worker.child, 'exit');
  assert.equal(code, 0, worker.output());
});
