// The sync worker's and the SQS bridge's /metrics (issue 21): bound to METRICS_HOST like the
// inbound worker's, and the sync worker's needs-attention count, a PostgreSQL query, read at
// most once per 10 s however often it is scraped. Real HTTP servers on loopback; the count's
// source is a counting function standing in for the store's query.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { cachedReader, setNeedsAttentionSource } from '../../lib/observability/sync-metrics';
import { loadSyncConfig } from '../../lib/config/sync';
import { loadSqsConfig } from '../../lib/config/sqs-bridge';
import { startSyncMetricsServer } from '../../workers/sync-main';
import { startMetricsServer } from '../../workers/http';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether host:port answers /metrics (false: connection refused). */
async function answers(host: string, port: number): Promise<boolean> {
  try {
    return (await fetch(`http://${host}:${port}/metrics`)).status === 200;
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED') return false;
    throw err;
  }
}

const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

test('a value read at most once per interval: twice in a row or at once, one read; after the interval, a new one', async () => {
  let reads = 0;
  let next: () => Promise<number> = async () => ++reads;
  const read = cachedReader(() => next(), 200);
  assert.equal(await read(), 1);
  assert.equal(await read(), 1);
  assert.equal(reads, 1, 'twice in a row: one read');
  await sleep(250);
  assert.deepEqual(await Promise.all([read(), read(), read()]), [2, 2, 2]);
  assert.equal(reads, 2, 'at once: one read');
  // A failed read serves the last value and is tried again after the interval, not at every ask.
  let failures = 0;
  next = async () => {
    failures++;
    throw new Error('database unreachable');
  };
  await sleep(250);
  assert.equal(await read(), 2);
  assert.equal(await read(), 2);
  assert.equal(failures, 1);
  // Without any value yet, the error is the answer (the scrape fails: 500).
  const never = cachedReader(async () => {
    throw new Error('database unreachable');
  }, 200);
  await assert.rejects(never(), /database unreachable/);
  await assert.rejects(never(), /database unreachable/);
});

test('sync worker: two scrapes in a row query once; METRICS_HOST is where it listens', async (t) => {
  let queries = 0;
  setNeedsAttentionSource(async () => {
    queries++;
    return 3;
  });
  const loopback = await startSyncMetricsServer(0, '127.0.0.1');
  t.after(() => close(loopback.server));
  for (let i = 0; i < 2; i++) {
    const text = await (await fetch(`http://127.0.0.1:${loopback.port}/metrics`)).text();
    assert.match(text, /^mailroom_sync_accounts_needing_attention 3$/m);
  }
  assert.equal(queries, 1, 'the second scrape is served from the value read by the first');
  // 127.0.0.2 is loopback too, but not the address it is bound to.
  assert.equal(await answers('127.0.0.2', loopback.port), false, 'bound to 127.0.0.1 only');

  const any = await startSyncMetricsServer(0, loadSyncConfig({}).metricsHost);
  t.after(() => close(any.server));
  assert.equal(await answers('127.0.0.2', any.port), true, 'the default binds every address, as the worker does');
  assert.equal(loadSyncConfig({ METRICS_HOST: ' 127.0.0.1 ' }).metricsHost, '127.0.0.1');
});

test('sync worker /health: 200 when every check passes, 503 naming the failing one', async (t) => {
  let databaseUp = true;
  const server = await startSyncMetricsServer(0, '127.0.0.1', {
    database: async () => {
      if (!databaseUp) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    },
    worker: async () => undefined,
  });
  t.after(() => close(server.server));
  const ask = async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/health`);
    return {
      status: res.status,
      body: (await res.json()) as {
        status: string;
        worker: string;
        checks: Record<string, { ok: boolean; error?: string }>;
      },
    };
  };
  const up = await ask();
  assert.equal(up.status, 200);
  assert.equal(up.body.status, 'healthy');
  assert.equal(up.body.worker, 'sync');
  assert.deepEqual(Object.keys(up.body.checks).sort(), ['database', 'worker']);
  databaseUp = false;
  const down = await ask();
  assert.equal(down.status, 503);
  assert.equal(down.body.status, 'unhealthy');
  assert.equal(down.body.checks.database.ok, false);
  assert.match(down.body.checks.database.error ?? '', /ECONNREFUSED/);
  assert.equal(down.body.checks.worker.ok, true);
});

test('SQS bridge: METRICS_HOST is where its /metrics listens', async (t) => {
  const env = { DOMAINS: 'example.com' };
  assert.equal(loadSqsConfig(env).base.metricsHost, '0.0.0.0');
  const host = loadSqsConfig({ ...env, METRICS_HOST: '127.0.0.1' }).base.metricsHost;
  const metrics = await startMetricsServer({ port: 0, host, portVariable: 'SQS_BRIDGE_METRICS_PORT' });
  t.after(() => close(metrics.server));
  assert.equal(await answers('127.0.0.1', metrics.port), true);
  assert.equal(await answers('127.0.0.2', metrics.port), false);
});
