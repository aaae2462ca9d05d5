// The second local backend: the real Temporal server on the local PostgreSQL
// (scripts/stack/temporal-postgres.ts). Throwaway databases, dropped afterwards. Checks what
// the server reports about itself and what PostgreSQL holds, an inbound email end to end
// through the normal worker, the Web UI, and a crash: kill, restart on the same databases
// (schema set up already), and a workflow started before the kill completing after it;
// a restart with another shard count is refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import { temporal } from '@temporalio/proto';
import { dropDatabase, withDatabase } from '../../lib/storage/db';
import { startInbound } from '../../starters/start-inbound';
import type { InboundResult } from '../../contracts/inbound';
import { rawMail } from '../../scripts/stack/demo-emails';
import { freePort } from '../../scripts/stack/ports';
import {
  DEFAULT_TEMPORAL_PG_URL,
  freeTemporalPort,
  type LocalTemporal,
  startTemporalPostgres,
  type TemporalPostgresOptions,
} from '../../scripts/stack/temporal-postgres';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from '../../scripts/stack/versions';
import { createInboundWorker } from '../../workers/inbound';
import { BUCKET, DOMAIN, type InboundStack, startInboundStack } from '../support/inbound-stack';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../contracts/search-attributes';

const ALICE = 'alice@example.com';
const OUTSIDE = 'someone@sender.example';
const DB = `mailroom_test_tpg_${process.pid}`;
const DATABASES = { default: DB, visibility: `${DB}_visibility` };

let dir: string;
let options: TemporalPostgresOptions;
let server: LocalTemporal;
let stack: InboundStack;

async function query<T>(database: string, sql: string): Promise<T[]> {
  const pg = new PgClient({ connectionString: withDatabase(DEFAULT_TEMPORAL_PG_URL, database) });
  await pg.connect();
  try {
    return (await pg.query(sql)).rows as T[];
  } finally {
    await pg.end();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailroom-tpg-test-'));
  options = {
    port: await freeTemporalPort(),
    uiPort: await freePort(),
    databases: DATABASES,
    stateDir: join(dir, 'state'),
    logFile: join(dir, 'temporal-server.log'),
  };
  server = await startTemporalPostgres(options);
  // The stack's postgres backend finds this server on the port and uses it (reused: its
  // teardown leaves the server and the databases to us). Plaintext payloads, so a second
  // worker below needs no codec keys.
  stack = await startInboundStack({
    mailboxes: [ALICE],
    temporalBackend: 'postgres',
    temporalPostgres: { port: options.port, uiPort: options.uiPort },
    env: { MAILROOM_CODEC_KEYS: 'none' },
  });
});

after(async () => {
  await stack?.stop();
  await server?.stop();
  for (const name of Object.values(DATABASES)) await dropDatabase(withDatabase(DEFAULT_TEMPORAL_PG_URL, name));
  rmSync(dir, { recursive: true, force: true });
});

describe('Temporal on PostgreSQL', () => {
  test('the cluster runs the pinned server version, with 4 history shards stored in PostgreSQL', async () => {
    assert.equal(stack.env.address, server.address);
    const info = await stack.env.connection.workflowService.getClusterInfo({});
    // scripts/versions.env, the version docker-compose.yml runs (test/unit/versions.test.ts).
    assert.equal(info.serverVersion, TEMPORAL_SERVER_VERSION.replace(/^v/, ''));
    assert.equal(info.historyShardCount, 4);
    assert.equal(info.persistenceStore, 'postgres12');
    assert.equal(info.visibilityStore, 'postgres12');
    const shards = await query<{ shard_id: number }>(
      DATABASES.default,
      'SELECT shard_id FROM shards ORDER BY shard_id',
    );
    assert.deepEqual(
      shards.map((r) => Number(r.shard_id)),
      [1, 2, 3, 4],
    );
  });

  test('mailroom search attributes are registered on the default namespace', async () => {
    const res = await stack.env.connection.operatorService.listSearchAttributes({ namespace: 'default' });
    const types = res.customAttributes ?? {};
    for (const flag of SEARCH_ATTRIBUTE_FLAGS) {
      const [name, type] = flag.split('=');
      assert.ok(name in types, `${name} registered`);
      const { INDEXED_VALUE_TYPE_KEYWORD, INDEXED_VALUE_TYPE_KEYWORD_LIST } = temporal.api.enums.v1.IndexedValueType;
      const expected = type === 'KeywordList' ? INDEXED_VALUE_TYPE_KEYWORD_LIST : INDEXED_VALUE_TYPE_KEYWORD;
      assert.equal(types[name], expected, `${name} is a ${type}`);
    }
  });

  test('an inbound email goes end to end through the normal worker', async () => {
    const key = await stack.put(rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Hello via PostgreSQL' }));
    const result = await stack.run({ key });
    assert.equal(result.status, 'delivered');
    assert.deepEqual(result.recipients, [{ recipient: ALICE, outcome: 'delivered' }]);
    assert.equal(
      (await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Subject: Hello via PostgreSQL')).length,
      1,
    );
    assert.equal((await stack.metadata(key))?.status, 'delivered');
    // The run is in the visibility database, with the search attributes the workflow set.
    const runs = [];
    for await (const run of stack.env.client.workflow.list({
      query: `MailDomain = '${DOMAIN}' AND MailStatus = 'delivered'`,
    }))
      runs.push(run.workflowId);
    assert.ok(runs.length >= 1, 'the delivered run is listed by its search attributes');
  });

  test('the Web UI (the pinned version) serves the app and lists the default namespace', async () => {
    const page = await fetch(`${server.uiUrl}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const settings = (await (await fetch(`${server.uiUrl}/api/v1/settings`)).json()) as { Version: string };
    assert.equal(settings.Version, TEMPORAL_UI_VERSION.replace(/^v/, ''));
    const api = await fetch(`${server.uiUrl}/api/v1/namespaces`);
    assert.equal(api.status, 200);
    const body = (await api.json()) as { namespaces: { namespaceInfo: { name: string } }[] };
    assert.ok(body.namespaces.some((n) => n.namespaceInfo.name === 'default'));
  });

  test('after a kill, a restart reuses the schema and finishes a workflow started before the kill', async () => {
    // A task queue no worker polls yet: the workflow is certainly still open at the kill.
    const taskQueue = `${stack.config.taskQueue}-after-restart`;
    const key = await stack.put(rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Started before the crash' }));
    const { workflowId } = await startInbound(stack.env.client, taskQueue, { domain: DOMAIN, bucket: BUCKET, key });
    const schemaBefore = await query<{ curr_version: string }>(
      DATABASES.default,
      'SELECT curr_version FROM schema_version',
    );

    await server.kill();
    server = await startTemporalPostgres(options);
    assert.equal(server.reused, false, 'a new server process');

    assert.deepEqual(
      await query(DATABASES.default, 'SELECT curr_version FROM schema_version'),
      schemaBefore,
      'schema left as it was',
    );
    const handle = stack.env.client.workflow.getHandle(workflowId);
    assert.equal((await handle.describe()).status.name, 'RUNNING', 'the workflow survived the kill');
    assert.equal((await stack.env.connection.workflowService.getClusterInfo({})).historyShardCount, 4);
    assert.equal((await fetch(`${server.uiUrl}/api/v1/namespaces`)).status, 200, 'the Web UI still answers');

    const worker = await createInboundWorker({
      connection: stack.env.nativeConnection,
      namespace: 'default',
      client: stack.env.client,
      deps: {
        s3: stack.s3,
        dynamo: stack.dynamo,
        transports: stack.transports,
        config: { ...stack.config, taskQueue },
      },
      deployment: null,
    });
    const result = await worker.runUntil(handle.result() as Promise<InboundResult>);
    assert.equal(result.status, 'delivered');
    assert.equal(
      (await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Subject: Started before the crash')).length,
      1,
    );
  });

  test('a start with another history shard count is refused, saying what to do', async () => {
    // Stopped first: a second server on the same databases would join the cluster.
    await server.stop();
    await assert.rejects(
      startTemporalPostgres({ ...options, historyShards: 2 }),
      /set up with 4 history shards, not the 2 asked for.*drop both databases/s,
    );
  });
});
