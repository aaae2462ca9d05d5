// `npm run bench:worker-start`: how long the inbound worker takes from `node` to ready
// ("worker started": connected, workflows loaded, polling), three starts each way on the
// test stack: the compiled app with the workflow bundle made at build time (what the
// production image runs; built here with npm run build into dist/) against the TypeScript
// sources through tsx, where the SDK bundles the workflows with webpack at start
// (workflowsPath). Prints the figures; asserts nothing.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { freePort } from '../scripts/stack/ports';
import { startInboundStack } from '../test/support/inbound-stack';
import { workerCommand } from '../scripts/stack/image-command';

const ROOT = join(__dirname, '..');
const RUNS = 3;

async function timeToReady(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const started = process.hrtime.bigint();
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      ...env,
      HEALTH_PORT: String(await freePort()),
      METRICS_PORT: String(await freePort()),
      TEMPORAL_METRICS_BIND: `127.0.0.1:${await freePort()}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const ready = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('"msg":"worker started"')) resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
    child.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready:\n${out}`)));
  });
  try {
    return await ready;
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
  }
}

async function main(): Promise<void> {
  console.log('npm run build ...');
  execFileSync('bash', ['scripts/build.sh'], { cwd: ROOT, stdio: 'ignore' });
  const stack = await startInboundStack({ mailboxes: ['alice@example.com'] });
  try {
    const env = { ...stack.childEnv, TASK_QUEUE: `worker-start-${process.pid}`, LOG_LEVEL: 'info' };
    const ways = {
      // As the image and npm run worker start it (scripts/stack/image-command.ts).
      'compiled, prebuilt bundle (workflowBundle)': workerCommand(true),
      'sources via tsx, bundled at start (workflowsPath)': workerCommand(false),
    };
    for (const [label, args] of Object.entries(ways)) {
      const ms: number[] = [];
      for (let i = 0; i < RUNS; i++) ms.push(await timeToReady(args, env));
      console.log(
        `${label.padEnd(52)} ${ms.map((m) => `${(m / 1000).toFixed(2)} s`).join('  ')}   median ${(ms.sort((a, b) => a - b)[1] / 1000).toFixed(2)} s`,
      );
    }
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
