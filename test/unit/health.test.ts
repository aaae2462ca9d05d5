import { test } from 'node:test';
import assert from 'node:assert/strict';
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
