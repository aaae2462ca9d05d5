// docker-compose.yml loads and validates as Docker Compose would (compose-go, the loader
// Docker Compose uses, in tools/compose-check; no Docker engine here) and keeps mailroom's
// rules: images pinned to versions, one set of versions with the local stack, a healthcheck
// on every long-running service, depends_on waiting on health or a job's success, secrets
// from the environment only (it loads with .env.example's placeholders, not without them),
// memory limits on mailroom's long-running processes. The broken variants prove the checks
// can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { S3_SERVER_VERSION } from '../../scripts/stack/s3';
import { GOAWS_VERSION, startSqsServer } from '../../scripts/stack/sqs';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from '../../scripts/stack/versions';

const ROOT = join(__dirname, '..', '..');
const CHECKER = join(ROOT, 'tools', 'compose-check', 'bin', 'compose-check');
const COMPOSE = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
/** The placeholders an operator replaces (cp .env.example .env); the file needs values to load. */
const ENV_EXAMPLE = join(ROOT, '.env.example');
const MIB = 1024 * 1024;

interface Report {
  services: Record<
    string,
    {
      image: string;
      build: boolean;
      job: boolean;
      healthcheck?: string[];
      dependsOn?: Record<string, string>;
      memLimit: number;
      profiles?: string[];
      replicas: number;
      hostPorts?: string[];
    }
  >;
  violations: string[];
}

async function check(
  file: string,
  envFiles: string[] = [ENV_EXAMPLE],
): Promise<{ code: number; report?: Report; stderr: string }> {
  assert.ok(existsSync(CHECKER), `${CHECKER} is missing: npm run setup builds it (go build in tools/compose-check)`);
  try {
    const args = [...envFiles.flatMap((f) => ['--env-file', f]), file];
    const { stdout, stderr } = await promisify(execFile)(CHECKER, args, { timeout: 60_000 });
    return { code: 0, report: JSON.parse(stdout) as Report, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: e.code ?? -1,
      report: e.stdout ? (JSON.parse(e.stdout) as Report) : undefined,
      stderr: e.stderr ?? '',
    };
  }
}

/** Checks a variant of docker-compose.yml, written beside a copy of what it references. */
async function checkVariant(
  edit: (yaml: string) => string,
): Promise<{ code: number; report?: Report; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-compose-'));
  try {
    const changed = edit(COMPOSE);
    assert.notEqual(changed, COMPOSE, 'the edit applies');
    writeFileSync(join(dir, 'docker-compose.yml'), changed);
    writeFileSync(join(dir, 'domains.txt'), 'example.com\n');
    return await check(join(dir, 'docker-compose.yml'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `v1.2.3` from `NAME=v1.2.3` in one of the project's install scripts. */
function scriptVersion(script: string, name: string): string {
  const m = readFileSync(join(ROOT, 'scripts', script), 'utf8').match(new RegExp(`^${name}=(\\S+)$`, 'm'));
  assert.ok(m, `${name} in scripts/${script}`);
  return m[1];
}

function tagOf(image: string): string {
  return image.slice(image.lastIndexOf(':') + 1);
}

test('docker-compose.yml loads, validates and keeps every rule', async () => {
  const { code, report, stderr } = await check(join(ROOT, 'docker-compose.yml'));
  assert.equal(code, 0, stderr);
  assert.ok(report);
  assert.deepEqual(report.violations, []);
  const services = report.services;
  for (const [name, s] of Object.entries(services)) {
    if (!s.build) assert.doesNotMatch(s.image, /:latest$|^[^:]*$/, `${name} is pinned`);
    if (!s.job) assert.ok(s.healthcheck?.length, `${name} has a healthcheck`);
    for (const [dep, condition] of Object.entries(s.dependsOn ?? {}))
      assert.match(condition, /^service_(healthy|completed_successfully)$/, `${name} -> ${dep}`);
  }
  assert.deepEqual(
    Object.keys(services)
      .filter((n) => services[n].job)
      .sort(),
    ['temporal-admin-tools', 'temporal-schema', 'worker-setup'],
  );
  assert.ok(!Object.values(services).some((s) => /minio/.test(s.image)), 'no MinIO image');
});

test('one set of versions: compose runs the Temporal server, UI, S3 and SQS servers of the local stack', async () => {
  const { report } = await check(join(ROOT, 'docker-compose.yml'));
  const image = (name: string) => report!.services[name].image;
  const server = TEMPORAL_SERVER_VERSION.replace(/^v/, '');
  const ui = TEMPORAL_UI_VERSION.replace(/^v/, '');
  assert.equal(tagOf(image('temporal')), server);
  for (const job of ['temporal-schema', 'temporal-admin-tools'])
    assert.equal(tagOf(image(job)).split('-')[0], server, `${job}: admin-tools of the server's version`);
  assert.equal(tagOf(image('temporal-ui')), ui);
  assert.equal(image('s3'), `versity/versitygw:${S3_SERVER_VERSION}`);
  assert.equal(scriptVersion('install-versitygw.sh', 'VERSION'), S3_SERVER_VERSION);
  assert.equal(image('goaws'), `admiralpiett/goaws:${GOAWS_VERSION}`);
});

test('an unpinned image is refused', async () => {
  const { code, stderr } = await checkVariant((y) =>
    y
      .replace('amazon/dynamodb-local:3.3.2', 'amazon/dynamodb-local:latest')
      .replace('versity/versitygw:v1.8.0', 'versity/versitygw'),
  );
  assert.equal(code, 1);
  assert.match(stderr, /dynamodb: image "amazon\/dynamodb-local:latest" is not pinned/);
  assert.match(stderr, /s3: image "versity\/versitygw" is not pinned to a version: no tag/);
});

test('a service without a healthcheck, and a wait on it, are refused', async () => {
  const { code, stderr } = await checkVariant((y) =>
    y.replace(/( {2}s3:\n(?: {4}.*\n| {6}.*\n)*?) {4}healthcheck:\n(?: {6}.*\n)+/, '$1'),
  );
  assert.equal(code, 1);
  assert.match(stderr, /^s3: no healthcheck/m);
  assert.match(stderr, /worker-setup: depends_on s3 with service_healthy, but s3 has no healthcheck/);
});

test('depends_on without a condition (service_started) is refused', async () => {
  const { code, stderr } = await checkVariant((y) =>
    y.replace(
      / {6}mailserver:\n {8}condition: service_healthy/,
      '      mailserver:\n        condition: service_started',
    ),
  );
  assert.equal(code, 1);
  assert.match(stderr, /worker: depends_on mailserver with condition service_started waits for nothing/);
});

test('a file Docker Compose would reject does not load', async () => {
  const { code, stderr } = await checkVariant((y) =>
    y.replace('    image: postgres:16.15\n', '    image: postgres:16.15\n    restart_policy: always\n'),
  );
  assert.equal(code, 1);
  assert.match(stderr, /does not load: .*restart_policy/);
});

test('every secret comes from the environment: without values the file does not load, naming each', async () => {
  const { code, stderr } = await check(join(ROOT, 'docker-compose.yml'), []);
  assert.equal(code, 1);
  for (const name of [
    'POSTGRES_PASSWORD',
    'S3_ROOT_ACCESS_KEY_ID',
    'S3_ROOT_SECRET_ACCESS_KEY',
    'MAILROOM_CODEC_KEYS',
    'CODEC_SERVER_TOKEN',
    'MAILROOM_SECRET_KEYS',
  ])
    assert.match(stderr, new RegExp(`required variable ${name} is missing a value: set ${name} in \\.env`), name);
  // What .env.example lists is exactly what the file requires.
  const uncommented = COMPOSE.replace(/^\s*#.*$/gm, '');
  const required = new Set([...uncommented.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map((m) => m[1]));
  const listed = new Set([...readFileSync(ENV_EXAMPLE, 'utf8').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]));
  assert.deepEqual([...listed].sort(), [...required].sort());
});

test('the worker, the SQS bridge and the sync worker have memory limits above their measured peaks', async () => {
  const { report } = await check(join(ROOT, 'docker-compose.yml'));
  const limit = (name: string) => report!.services[name].memLimit;
  // docs/benchmarks.md: the worker's RSS peaks at 282 MiB with 1,000 emails queued.
  assert.ok(limit('worker') >= 282 * MIB * 1.5, `worker: ${limit('worker') / MIB} MiB`);
  assert.ok(limit('worker') <= 1024 * MIB, `worker: ${limit('worker') / MIB} MiB is no limit`);
  for (const name of ['sqs-bridge', 'sync-worker']) assert.ok(limit(name) >= 256 * MIB, `${name}: ${limit(name)}`);
  const dropped = await checkVariant((y) => y.replace('    mem_limit: 512m\n', ''));
  assert.equal(dropped.report!.services.worker.memLimit, 0, 'the checker reports a missing limit');
});

test('the scale profile runs more workers on the task queue, none binding a host port (docs/scaling.md)', async () => {
  const { report } = await check(join(ROOT, 'docker-compose.yml'));
  const { worker, 'worker-replica': replica } = report!.services;
  assert.ok(replica, 'a worker-replica service');
  assert.deepEqual(replica.profiles, ['scale'], 'only `--profile scale` starts it');
  assert.equal(replica.replicas, 2);
  assert.equal(replica.hostPorts, undefined, 'no published port to clash between replicas');
  assert.ok(worker.hostPorts?.includes('127.0.0.1:8080->8080/tcp'), 'the single worker keeps its ports');
  assert.equal(worker.replicas, 1);
  // The worker's service as it is: the same image, health check, dependencies and memory limit.
  for (const key of ['image', 'build', 'healthcheck', 'dependsOn', 'memLimit'] as const)
    assert.deepEqual(replica[key], worker[key], key);
  // WORKER_REPLICAS sets the count.
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-compose-env-'));
  try {
    writeFileSync(join(dir, 'replicas.env'), 'WORKER_REPLICAS=5\n');
    const scaled = await check(join(ROOT, 'docker-compose.yml'), [ENV_EXAMPLE, join(dir, 'replicas.env')]);
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.equal(scaled.report!.services['worker-replica'].replicas, 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // A fixed host port on a replicated service is refused: the second container could not bind it.
  const clash = await checkVariant((y) =>
    y.replace(/( {2}worker-replica:\n(?: {4}.*\n)*?) {4}ports: \[\]\n/, '$1    ports: ["127.0.0.1:8081:8080"]\n'),
  );
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /worker-replica: 2 replicas cannot all publish host port 127\.0\.0\.1:8081/);
});

test('goaws is healthy only when every queue of its config exists (its healthcheck run against goaws)', async () => {
  const { report } = await check(join(ROOT, 'docker-compose.yml'));
  const [kind, script] = report!.services.goaws.healthcheck!;
  assert.equal(kind, 'CMD-SHELL');
  // The config compose mounts at /conf/goaws.yaml, and goaws serving exactly its queues.
  const config = /^ {2}goaws:\n {4}content: \|\n((?: {6}.*\n| *\n)+)/m.exec(COMPOSE)?.[1].replace(/^ {6}/gm, '');
  assert.ok(config, 'the goaws config in docker-compose.yml');
  const queues = [...config.matchAll(/^ *- Name: *(\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(queues.sort(), ['example-com-queue', 'mailroom-dead-letter']);
  const sqs = await startSqsServer({ queues: queues.map((name) => ({ name })) });
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-goaws-check-'));
  try {
    const run = async (yaml: string) => {
      writeFileSync(join(dir, 'goaws.yaml'), yaml);
      const local = script
        .replaceAll('/conf/goaws.yaml', join(dir, 'goaws.yaml'))
        .replaceAll('http://localhost:4100/', `${sqs.endpoint}/`);
      try {
        await promisify(execFile)('sh', ['-c', local], { timeout: 20_000 });
        return { code: 0, out: '' };
      } catch (err) {
        const e = err as { code: number; stdout: string };
        return { code: e.code, out: e.stdout };
      }
    };
    assert.equal((await run(config)).code, 0, 'every queue there: healthy');
    const missing = await run(
      config.replace('- Name: example-com-queue', '- Name: example-com-queue\n  - Name: example-net-queue'),
    );
    assert.equal(missing.code, 1, 'a queue of the config that goaws did not create: unhealthy');
    assert.match(missing.out, /queue example-net-queue missing/);
  } finally {
    await sqs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
