// The worker as operators run it: a process with /health, /domains and /metrics that
// processes mail from its task queue and exits cleanly on SIGTERM, writing one stream of
// JSON log lines (its own, the Temporal SDK's and core's, and workflow code's).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { rawMail } from '../../scripts/stack/demo-emails';
import { freePort } from '../../scripts/stack/ports';
import { startInbound } from '../../starters/start-inbound';
import { BUCKET, DOMAIN, type InboundStack, startInboundStack } from '../support/inbound-stack';

let stack: InboundStack;
let worker: ChildProcess;
let healthPort: number;
let metricsPort: number;
const taskQueue = `worker-process-${process.pid}`;
// The one variable must be enough: no HEALTH_PORT/METRICS_PORT inherited from the shell.
const withoutPorts = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'HEALTH_PORT' && k !== 'METRICS_PORT'));
let output = '';

async function waitFor(url: string, timeoutMs = 60_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fetch(url);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${url} did not answer: ${(err as Error).message}\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

before(async () => {
  stack = await startInboundStack({ mailboxes: ['alice@example.com'] });
  [healthPort, metricsPort] = [await freePort(), await freePort()];
  worker = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: join(__dirname, '..', '..'),
    env: {
      ...stack.childEnv,
      TASK_QUEUE: taskQueue,
      HEALTH_PORT: String(healthPort),
      METRICS_PORT: String(metricsPort),
      TEMPORAL_METRICS_BIND: `127.0.0.1:${await freePort()}`,
      WORKER_NAME: 'worker-proc',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout!.on('data', (d) => (output += d));
  worker.stderr!.on('data', (d) => (output += d));
});
after(async () => {
  if (worker && worker.exitCode === null) worker.kill('SIGKILL');
  await stack?.stop();
});

test('health, domains, processing, metrics, then a clean SIGTERM shutdown', async () => {
  const health = await waitFor(`http://127.0.0.1:${healthPort}/health`);
  const report = (await health.json()) as { status: string; checks: Record<string, { ok: boolean }> };
  assert.equal(health.status, 200, JSON.stringify(report));
  assert.equal(report.status, 'healthy');
  assert.deepEqual(Object.keys(report.checks).sort(), ['dynamodb', 's3', 'smtp', 'temporal']);

  const domains = await (await fetch(`http://127.0.0.1:${healthPort}/domains`)).json();
  assert.deepEqual(domains, ['example.com', 'example.org']);

  const key = await stack.put(
    rawMail({ from: 'x@sender.example', to: ['alice@example.com'], subject: 'Through the worker process' }),
  );
  const { workflowId } = await startInbound(stack.env.client, taskQueue, { domain: DOMAIN, bucket: BUCKET, key });
  const result = await stack.env.client.workflow.getHandle(workflowId).result();
  assert.equal(result.status, 'delivered');
  assert.equal((await stack.metadata(key))?.processed_by, 'worker-proc');

  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(metrics, /emails_processed_total\{domain="example\.com",status="delivered"\} 1/);
  assert.match(metrics, /^temporal_[a-z_]+/m, 'the Temporal worker metrics are served too');

  worker.kill('SIGTERM');
  const [code] = await once(worker, 'exit');
  assert.equal(code, 0, output);
  assert.match(output, /worker stopped/);

  // One log stream: every line of stdout and stderr is one JSON object.
  const lines = output.split('\n').filter((l) => l.trim());
  const parsed = lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      assert.fail(`not a JSON log line: ${line}`);
    }
  });
  const finished = parsed.find((l) => l.msg === 'email finished');
  assert.ok(finished, `workflow code's log line is in the stream:\n${output}`);
  assert.equal(finished.sdkComponent, 'workflow');
  assert.equal(finished.workflowId, workflowId);
  assert.ok(finished.runId);
  const tagged = parsed.find((l) => l.msg === 'tagged' && l.key === key);
  assert.ok(tagged, `the tag's line is in the stream:\n${output}`);
  assert.equal(tagged.workflowId, workflowId);
  assert.equal(tagged.runId, finished.runId);
  // A plain email: fetched, delivered and tagged in one local activity (FETCH_AND_DELIVER_PATCH).
  assert.equal(tagged.activityType, 'fetchAndDeliver');
  // Recipient addresses are masked by default (LOG_ADDRESSES=plain shows them).
  assert.doesNotMatch(output, /alice@example\.com/);
  assert.match(output, /a\*\*\*@example\.com/);
});

test('a second worker on the same machine: WORKER_PORTS=free picks free ports and logs them; a taken port names its variable', async () => {
  let log = '';
  const second = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: join(__dirname, '..', '..'),
    // No TEMPORAL_METRICS_BIND: the SDK exporter takes a free loopback port of its own.
    env: {
      ...withoutPorts(stack.childEnv),
      TASK_QUEUE: taskQueue,
      WORKER_PORTS: 'free',
      TEMPORAL_METRICS_BIND: '',
      WORKER_NAME: 'worker-second',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  second.stdout!.on('data', (d) => (log += d));
  second.stderr!.on('data', (d) => (log += d));
  try {
    const deadline = Date.now() + 60_000;
    let started: { healthPort: number; metricsPort: number; temporalMetrics: string } | undefined;
    while (!started && Date.now() < deadline) {
      const line = log.split('\n').find((l) => l.includes('"worker started"'));
      if (line) started = JSON.parse(line);
      else await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(started, `no 'worker started' line: ${log}`);
    assert.ok(started.healthPort > 0 && started.metricsPort > 0, 'the ports it picked are logged');
    assert.match(started.temporalMetrics, /^127\.0\.0\.1:[1-9]\d*$/);
    assert.equal((await fetch(`http://127.0.0.1:${started.healthPort}/health`)).status, 200);
    assert.match(await (await fetch(`http://127.0.0.1:${started.metricsPort}/metrics`)).text(), /^temporal_[a-z_]+/m);

    // A third one told to use the second's health port: the variable is named, not a raw EADDRINUSE.
    const clash = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
      cwd: join(__dirname, '..', '..'),
      env: {
        ...stack.childEnv,
        TASK_QUEUE: taskQueue,
        HEALTH_PORT: String(started.healthPort),
        METRICS_PORT: '0',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let clashOut = '';
    clash.stdout!.on('data', (d) => (clashOut += d));
    clash.stderr!.on('data', (d) => (clashOut += d));
    const [code] = await once(clash, 'exit');
    assert.equal(code, 1);
    assert.match(
      clashOut,
      new RegExp(
        `HEALTH_PORT: port ${started.healthPort} on [\\d.]+ is already in use .*set HEALTH_PORT to a free port, or to 0`,
      ),
    );
    const bind = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
      cwd: join(__dirname, '..', '..'),
      env: {
        ...stack.childEnv,
        TASK_QUEUE: taskQueue,
        HEALTH_PORT: '0',
        METRICS_PORT: '0',
        TEMPORAL_METRICS_BIND: started.temporalMetrics,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let bindOut = '';
    bind.stderr!.on('data', (d) => (bindOut += d));
    bind.stdout!.on('data', (d) => (bindOut += d));
    assert.equal((await once(bind, 'exit'))[0], 1);
    assert.match(bindOut, /TEMPORAL_METRICS_BIND: port \d+ on 127\.0\.0\.1 is already in use/);
  } finally {
    if (second.exitCode === null) {
      second.kill('SIGTERM');
      await once(second, 'exit');
    }
  }
});
