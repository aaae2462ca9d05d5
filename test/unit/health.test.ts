import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedCheck, cachedChecks } from '../../lib/observability/health-cache';
import { startHealthServer } from '../../workers/http';

test('/health is 503 and names the failing dependency; /domains lists domains', async () => {
  const { server, port } = await startHealthServer({
    port: 0,
    host: '127.0.0.1',
    worker: 'w',
    domains: () => ['example.com'],
    checks: { s3: async () => {}, smtp: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:25')) },
  });
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { status: string; checks: Record<string, { ok: boolean; error?: string }> };
    assert.equal(body.status, 'unhealthy');
    assert.equal(body.checks.s3.ok, true);
    assert.equal(body.checks.smtp.ok, false);
    assert.match(body.checks.smtp.error!, /ECONNREFUSED/);
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${port}/domains`)).json(), ['example.com']);
  } finally {
    server.close();
  }
});

test('each dependency check runs at most once per interval, however often /health is polled', async () => {
  let clock = 0;
  let runs = 0;
  let fail = false;
  const check = cachedCheck(
    async () => {
      runs++;
      if (fail) throw new Error('down');
    },
    10_000,
    () => clock,
  );
  await Promise.all([check(), check(), check()]);
  assert.equal(runs, 1, 'concurrent requests share one check');
  clock = 9_999;
  await check();
  assert.equal(runs, 1);
  clock = 10_000;
  fail = true;
  await assert.rejects(check(), /down/);
  assert.equal(runs, 2);
  await assert.rejects(check(), /down/, 'a failure is cached too');
  assert.equal(runs, 2);
});

test('the health server serves cached checks: a burst of requests opens one connection per dependency', async () => {
  let smtpChecks = 0;
  const { server, port } = await startHealthServer({
    port: 0,
    host: '127.0.0.1',
    worker: 'w',
    domains: () => [],
    checks: cachedChecks({ smtp: async () => void smtpChecks++ }),
  });
  try {
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    assert.equal(smtpChecks, 1);
  } finally {
    server.close();
  }
});
