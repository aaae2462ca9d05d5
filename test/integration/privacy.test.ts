// Privacy of histories (issue 4): a real inbound email through the real stack, then its
// workflow history read straight from the Temporal server without the codec. Nothing that
// identifies the mail (sender, recipient, subject) nor the key may appear in it; with the
// codec, and through the codec server with the right token, all of it comes back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import {
  AesGcmCodec,
  codecFromEnv,
  ENCODING_ENCRYPTED,
  generateCodecKey,
  parseCodecKeys,
} from '../../lib/temporal/codec';
import { rawMail } from '../../scripts/stack/demo-emails';
import { ADDRESS_HASH_PATTERN, addressHash } from '../../lib/mail/address-hash';
import { DEFAULT_TABLES } from '../../scripts/stack/dynamodb';
import {
  type CodecServer,
  DEFAULT_CORS_ORIGINS,
  type JsonPayload,
  codecServerOptionsFromEnv,
  payloadToJson,
  SESSION_COOKIE,
  startCodecServer,
} from '../../workers/codec-server';
import {
  BUCKET,
  firstWorkflowTaskFailure,
  inboundWorkflowId,
  type InboundStack,
  startInboundStack,
} from '../support/inbound-stack';
import { loadConfig } from '../../lib/config';
import { mailroomDataConverter } from '../../lib/temporal/data-converter';
import { createInboundWorker } from '../../workers/inbound';
import { temporalBinary } from '../support/temporal';
import { FETCH_AND_DELIVER_PATCH } from '../../workflows/processInboundEmail';

const SENDER = 'confidential.source.4821@sender.example';
const RECIPIENT = 'm.privacy@example.com';
const SUBJECT = 'Merger talks with Initech 4821';
// Forwarded to an own-domain address the mail server refuses: a failure naming both addresses.
const FORWARD_TO = 'gone.forward.4821@example.org';
const UI_ORIGIN = 'http://localhost:8233';

let stack: InboundStack;
let codec: AesGcmCodec;
let reader: PayloadCodec;
let server: CodecServer;
let connection: Connection;
const token = randomBytes(24).toString('hex');
let workflowId: string;
let history: temporal.api.history.v1.IHistory;
let payloads: { path: string; payload: Payload }[];

const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? []).toString('utf8');

/** Every Payload in a history (objects with byte-valued metadata that has an encoding), with its path. */
function collectPayloads(
  node: unknown,
  path: string,
  out: { path: string; payload: Payload }[] = [],
): { path: string; payload: Payload }[] {
  if (!node || typeof node !== 'object' || node instanceof Uint8Array) return out;
  if (Array.isArray(node)) {
    node.forEach((n, i) => collectPayloads(n, `${path}[${i}]`, out));
    return out;
  }
  const meta = (node as Payload).metadata;
  if (meta && typeof meta === 'object' && meta.encoding instanceof Uint8Array) {
    out.push({ path, payload: node as Payload });
    return out;
  }
  for (const [k, v] of Object.entries(node)) collectPayloads(v, path ? `${path}.${k}` : k, out);
  return out;
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers },
    body: JSON.stringify(body),
  });
}

before(async () => {
  stack = await startInboundStack({ mailboxes: [RECIPIENT] });
  await stack.putItem(DEFAULT_TABLES.rules, { email_address: RECIPIENT, ooo_active: false, forwards: [FORWARD_TO] });
  codec = codecFromEnv(stack.childEnv)!;
  assert.ok(codec, 'the test stack encrypts');
  // The codec server's codec, as `npm run codec-server` builds it: it shows what the SDK core
  // writes outside the codec (marker bookkeeping) too, where the workers' codec refuses plaintext.
  reader = codecServerOptionsFromEnv({ ...stack.childEnv, CODEC_SERVER_TOKEN: token }).codec;
  server = await startCodecServer({ port: 0, token, origins: DEFAULT_CORS_ORIGINS, codec: reader });
  // A plain connection: no data converter, no codec — what anyone with server access sees.
  connection = await Connection.connect({ address: stack.env.address });

  const key = await stack.put(rawMail({ from: SENDER, to: [RECIPIENT], subject: SUBJECT }), `privacy-${process.pid}`);
  const result = await stack.run({ key });
  assert.equal(result.status, 'delivered');
  assert.equal((await stack.mail.messagesFor(RECIPIENT)).filter((m) => m.includes(SUBJECT)).length, 1);
  workflowId = inboundWorkflowId(BUCKET, key);

  const events: temporal.api.history.v1.IHistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await connection.workflowService.getWorkflowExecutionHistory({
      namespace: stack.env.namespace ?? 'default',
      execution: { workflowId },
      nextPageToken,
    });
    events.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  history = { events };
  payloads = collectPayloads(history, '');
});

after(async () => {
  await server?.close();
  await connection?.close();
  await stack?.stop();
});

describe('workflow history at rest', () => {
  test('contains no sender, recipient, subject or key in plaintext', () => {
    // The whole history as the server returns it, in protobuf bytes: strings and bytes verbatim.
    const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
    const haystack = bytes.toString('latin1').toLowerCase();
    assert.ok(
      haystack.includes('processinboundemail'),
      'the search sees plaintext where there is some (workflow type)',
    );
    const [, material] = stack.childEnv.MAILROOM_CODEC_KEYS!.split(':');
    for (const needle of [SENDER, RECIPIENT, SUBJECT, FORWARD_TO, 'confidential.source', 'Initech', material]) {
      assert.ok(!haystack.includes(needle.toLowerCase()), `history must not contain ${needle}`);
    }
    assert.ok(!bytes.includes(Buffer.from(material, 'base64')), 'nor the raw key');
  });

  test('every payload is encrypted, except search attributes (domain, status and keyed address hashes, by design) and SDK marker bookkeeping', () => {
    // Two marker payloads are written by the SDK core itself, not through the data converter,
    // and hold only its bookkeeping: patched()'s patch id, and a local activity's sequence
    // number, type and times (its result is a normal, encrypted payload).
    const isCoreMeta = (path: string) => /markerRecordedEventAttributes\.details\.(patch-data|data)\./.test(path);
    const coreMeta = payloads.filter((p) => isCoreMeta(p.path));
    for (const { path, payload } of coreMeta) {
      const keys = Object.keys(JSON.parse(text(payload.data))).sort();
      assert.ok(
        keys.join() === 'deprecated,id' ||
          keys.join() === 'activity_id,activity_type,attempt,backoff,complete_time,original_schedule_time,seq',
        `${path} is core bookkeeping only: ${keys.join()}`,
      );
      assert.ok(!text(payload.data).includes('@'), `${path} holds no address`);
    }
    assert.ok(
      coreMeta.some((p) => JSON.parse(text(p.payload.data)).id === FETCH_AND_DELIVER_PATCH),
      'the current patch marker is there',
    );
    assert.ok(
      payloads.some((p) => /markerRecordedEventAttributes\.details\.result\./.test(p.path)),
      'local activity results are in the history (and checked below)',
    );
    const data = payloads.filter((p) => !p.path.includes('searchAttributes') && !isCoreMeta(p.path));
    assert.ok(data.length >= 8, `inputs, results, summary: found ${data.length}`);
    for (const { path, payload } of data)
      assert.equal(text(payload.metadata?.encoding), ENCODING_ENCRYPTED, `${path} is encrypted`);
    const attributes = payloads.filter((p) => p.path.includes('searchAttributes'));
    assert.ok(
      attributes.some((p) => p.path.endsWith('MailDomain') && JSON.parse(text(p.payload.data)) === 'example.com'),
    );
    for (const { path, payload } of attributes)
      assert.ok(!text(payload.data).includes('@'), `${path} holds no address`);
  });

  test('MailFromHash and MailToHash hold keyed hashes only, in history and in visibility', async () => {
    const keys = parseCodecKeys(stack.childEnv.MAILROOM_CODEC_KEYS!);
    const hash = (a: string) => addressHash(keys.keys.get(keys.currentKeyId)!, a);
    // In the history: the upserts (plaintext by design, like MailStatus).
    const recorded = payloads.filter((p) => /searchAttributes\.indexedFields\.Mail(From|To)Hash$/.test(p.path));
    assert.ok(recorded.length >= 2, `found ${recorded.map((p) => p.path).join(', ')}`);
    for (const { path, payload } of recorded) {
      const values = JSON.parse(text(payload.data)) as unknown;
      assert.ok(Array.isArray(values) && values.length > 0, `${path} is a keyword list`);
      for (const v of values) assert.match(String(v), ADDRESS_HASH_PATTERN, `${path} holds hashes only`);
    }
    // In visibility, as the Web UI and `npm run find` read them, straight from the server.
    const described = await connection.workflowService.describeWorkflowExecution({
      namespace: stack.env.namespace ?? 'default',
      execution: { workflowId },
    });
    const fields = described.workflowExecutionInfo?.searchAttributes?.indexedFields ?? {};
    const values = (name: string) => JSON.parse(text(fields[name]?.data)) as string[];
    assert.deepEqual(values('MailFromHash'), [hash(SENDER)]);
    assert.deepEqual(values('MailToHash'), [hash(RECIPIENT)]);
    const everything = Buffer.from(
      temporal.api.workflowservice.v1.DescribeWorkflowExecutionResponse.encode(described).finish(),
    )
      .toString('latin1')
      .toLowerCase();
    for (const needle of [SENDER, RECIPIENT, SUBJECT, 'confidential.source'])
      assert.ok(!everything.includes(needle.toLowerCase()), `visibility must not contain ${needle}`);
    // Temporal's own BuildIds hold the SDK's package name (an "@"); mailroom's hold no address.
    for (const [name, payload] of Object.entries(fields).filter(([n]) => n.startsWith('Mail')))
      assert.ok(!text(payload.data).includes('@'), `search attribute ${name} holds no address`);
  });

  test('failure messages (the refused forward names both addresses) are encrypted too', async () => {
    const failures: temporal.api.failure.v1.IFailure[] = [];
    const walk = (n: unknown): void => {
      if (!n || typeof n !== 'object' || n instanceof Uint8Array) return;
      for (const [k, v] of Object.entries(n)) {
        if (/failure$/i.test(k) && v && typeof v === 'object' && 'message' in v)
          failures.push(v as temporal.api.failure.v1.IFailure);
        walk(v);
      }
    };
    walk(history);
    assert.ok(failures.length >= 1, 'the refused forward left a failure in the history');
    for (const f of failures) {
      assert.equal(f.message, 'Encoded failure');
      assert.equal(text(f.encodedAttributes?.metadata?.encoding), ENCODING_ENCRYPTED);
    }
    const [attrs] = await codec.decode([failures[0].encodedAttributes as Payload]);
    const { message } = JSON.parse(text(attrs.data)) as { message: string };
    assert.match(message, new RegExp(`from ${RECIPIENT} to ${FORWARD_TO}.*failed`));
  });

  test('with the codec the history reads in full', async () => {
    const decoded = await reader.decode(
      payloads.filter((p) => !p.path.includes('searchAttributes')).map((p) => p.payload),
    );
    const all = decoded.map((p) => text(p.data)).join('\n');
    for (const needle of [SENDER, RECIPIENT, SUBJECT])
      assert.ok(all.includes(needle), `decoded history contains ${needle}`);
    for (const p of decoded) assert.notEqual(text(p.metadata?.encoding), ENCODING_ENCRYPTED);
    // The workers' codec refuses plaintext: only the core's marker bookkeeping is, and the core
    // reads that itself (it never reaches a worker's decode).
    const refused: string[] = [];
    for (const { path, payload } of payloads.filter((p) => !p.path.includes('searchAttributes')))
      await codec.decode([payload]).catch(() => refused.push(path));
    assert.ok(refused.length > 0);
    for (const path of refused)
      assert.match(path, /markerRecordedEventAttributes\.details\.(patch-data|data)\./, `${path} refused`);
  });
});

describe('codec server', () => {
  const encrypted = () => ({
    payloads: payloads.filter((p) => !p.path.includes('searchAttributes')).map((p) => payloadToJson(p.payload)),
  });

  test('401 without a token and with a wrong one', async () => {
    for (const headers of [
      {},
      { Authorization: `Bearer ${token.slice(0, -1)}x` },
      { Authorization: 'Bearer ' },
      { Authorization: `Basic ${token}` },
      { Cookie: `${SESSION_COOKIE}=${token}` },
    ] as Record<string, string>[]) {
      const res = await post('/decode', encrypted(), headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      const body = await res.text();
      for (const needle of [SENDER, SUBJECT]) assert.ok(!body.includes(needle));
    }
    assert.equal((await post('/encode', encrypted())).status, 401);
  });

  test('200 and plaintext with the right token; CORS headers for the UI origin', async () => {
    const res = await post('/decode', encrypted(), { Authorization: `Bearer ${token}`, Origin: UI_ORIGIN });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), UI_ORIGIN);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { payloads: JsonPayload[] };
    assert.equal(body.payloads.length, encrypted().payloads.length);
    const all = body.payloads.map((p) => Buffer.from(p.data ?? '', 'base64').toString('utf8')).join('\n');
    for (const needle of [SENDER, RECIPIENT, SUBJECT])
      assert.ok(all.includes(needle), `decoded by the server: ${needle}`);
    assert.ok(
      body.payloads.every((p) => Buffer.from(p.metadata!.encoding, 'base64').toString() !== ENCODING_ENCRYPTED),
    );

    // /encode is the inverse (the UI uses it for signals and queries it sends).
    const sealed = (await (await post('/encode', body, { Authorization: `Bearer ${token}` })).json()) as {
      payloads: JsonPayload[];
    };
    assert.ok(
      sealed.payloads.every((p) => Buffer.from(p.metadata!.encoding, 'base64').toString() === ENCODING_ENCRYPTED),
    );
    const again = (await (await post('/decode', sealed, { Authorization: `Bearer ${token}` })).json()) as {
      payloads: JsonPayload[];
    };
    assert.deepEqual(again, body);
  });

  test('CORS preflight is answered for the UI origin, refused for others', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/decode`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization,content-type,x-namespace',
        },
      });
    for (const origin of DEFAULT_CORS_ORIGINS) {
      const res = await preflight(origin);
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
      assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
      const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      for (const h of ['authorization', 'content-type', 'x-namespace']) assert.ok(allowed.includes(h), h);
    }
    const evil = await preflight('http://evil.example');
    assert.equal(evil.status, 403);
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    const direct = await post('/decode', encrypted(), {
      Authorization: `Bearer ${token}`,
      Origin: 'http://evil.example',
    });
    assert.equal(direct.status, 403, 'a browser page elsewhere gets nothing, even with the token');
  });

  test('the Web UI path: /login with the token sets a session cookie that /decode accepts', async () => {
    assert.equal((await fetch(`${server.url}/login`)).status, 200);
    const login = (t: string) =>
      fetch(`${server.url}/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: t }),
      });
    const wrong = await login('not-the-token-at-all');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const ok = await login(token);
    assert.equal(ok.status, 200);
    const cookie = ok.headers.get('set-cookie') ?? '';
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.ok(!cookie.includes(token), 'the cookie is not the token');
    const res = await post('/decode', encrypted(), { Cookie: cookie.split(';')[0], Origin: UI_ORIGIN });
    assert.equal(res.status, 200);
    assert.ok(JSON.stringify(await res.json()).length > 0);
  });

  test('a payload under an unknown key id is refused with the key id named', async () => {
    const [foreign] = await new AesGcmCodec(parseCodecKeys(generateCodecKey('retired-2023'))).encode([
      { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('"x"') },
    ]);
    const res = await post('/decode', { payloads: [payloadToJson(foreign)] }, { Authorization: `Bearer ${token}` });
    assert.equal(res.status, 422);
    assert.match(((await res.json()) as { error: string }).error, /key id "retired-2023"/);
  });

  test('an empty or absent payload list (a query without arguments) is no payloads, not an error', async () => {
    const auth = { Authorization: `Bearer ${token}` };
    for (const body of [{}, { payloads: [] }, { payloads: null }, { payloads: [], unknownField: 1 }]) {
      for (const action of ['/encode', '/decode']) {
        const res = await post(action, body, auth);
        assert.equal(res.status, 200, `${action} ${JSON.stringify(body)}`);
        assert.deepEqual(await res.json(), { payloads: [] });
      }
    }
    const empty = await fetch(`${server.url}/encode`, { method: 'POST', headers: auth });
    assert.equal(empty.status, 200, 'no body at all');
    assert.deepEqual(await empty.json(), { payloads: [] });
    // Still refused: what is not proto JSON of Payloads.
    for (const body of [[], { payloads: 'x' }, { payloads: [1] }, { payloads: [{ data: 5 }] }])
      assert.equal((await post('/decode', body, auth)).status, 400, JSON.stringify(body));
  });

  test('the temporal CLI runs the progress query through it (no arguments: an empty payload list)', async () => {
    const query = (extra: string[]) =>
      promisify(execFile)(
        temporalBinary(),
        [
          'workflow',
          'query',
          '--workflow-id',
          workflowId,
          '--name',
          'progress',
          '--address',
          stack.env.address,
          '--namespace',
          stack.env.namespace ?? 'default',
          '--output',
          'json',
          ...extra,
        ],
        { timeout: 60_000 },
      );
    const { stdout } = await query(['--codec-endpoint', server.url, '--codec-auth', `Bearer ${token}`]);
    const answer = JSON.parse(stdout) as { queryResult: unknown[] };
    const result = answer.queryResult[0] as { step: string; recipients: { recipient: string; outcome: string }[] };
    assert.equal(result.step, 'done');
    assert.deepEqual(
      result.recipients.map((r) => [r.recipient, r.outcome]),
      [[RECIPIENT, 'delivered']],
    );
    // Without the codec endpoint the CLI sees ciphertext only.
    const sealed = await query([]);
    assert.ok(!sealed.stdout.includes(RECIPIENT));
  });

  test('the temporal CLI reads the history through it (--codec-endpoint, --codec-auth)', async () => {
    const show = async (extra: string[]) => {
      const { stdout } = await promisify(execFile)(
        temporalBinary(),
        [
          'workflow',
          'show',
          '--workflow-id',
          workflowId,
          '--address',
          stack.env.address,
          '--namespace',
          stack.env.namespace ?? 'default',
          '--output',
          'json',
          ...extra,
        ],
        { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      );
      // Proto JSON: payload bytes are base64.
      const found: JsonPayload[] = [];
      const walk = (n: unknown): void => {
        if (!n || typeof n !== 'object') return;
        const p = n as JsonPayload;
        if (p.metadata && typeof p.metadata === 'object' && typeof p.metadata.encoding === 'string') found.push(p);
        else for (const v of Object.values(n)) walk(v);
      };
      walk(JSON.parse(stdout));
      return found.map((p) => ({
        encoding: Buffer.from(p.metadata!.encoding, 'base64').toString(),
        data: Buffer.from(p.data ?? '', 'base64').toString(),
      }));
    };
    const plain = await show([]);
    assert.ok(plain.some((p) => p.encoding === ENCODING_ENCRYPTED));
    assert.ok(!plain.some((p) => p.data.includes(SUBJECT)));
    const decoded = await show(['--codec-endpoint', server.url, '--codec-auth', `Bearer ${token}`]);
    assert.ok(!decoded.some((p) => p.encoding === ENCODING_ENCRYPTED));
    const all = decoded.map((p) => p.data).join('\n');
    for (const needle of [SENDER, RECIPIENT, SUBJECT]) assert.ok(all.includes(needle), `CLI output contains ${needle}`);
  });
});

describe('unencrypted input on an encrypted deployment (issue 21)', () => {
  // Anyone who can reach Temporal can start a run: without the codec, its input is plaintext.
  const plainClient = () => new Client({ connection: stack.env.connection, namespace: stack.env.namespace });
  const inputFor = (key: string) => ({ domain: 'example.com', bucket: BUCKET, key });

  test('a run started without the codec does not proceed: its workflow task fails naming the setting', async () => {
    const subject = 'Started by someone without the codec';
    const key = await stack.put(rawMail({ from: SENDER, to: [RECIPIENT], subject }), `plaintext-${process.pid}`);
    const handle = await plainClient().workflow.start('processInboundEmail', {
      taskQueue: stack.config.taskQueue,
      workflowId: inboundWorkflowId(BUCKET, key),
      args: [inputFor(key)],
    });
    const message = await firstWorkflowTaskFailure(stack, handle.workflowId);
    assert.match(message, /refused an unencrypted payload \(encoding "json\/plain"\)/);
    assert.match(message, /MAILROOM_CODEC_KEYS is set/);
    assert.match(message, /MAILROOM_CODEC_ALLOW_PLAINTEXT=true/);
    await new Promise((r) => setTimeout(r, 1000));
    const history = await handle.fetchHistory();
    assert.ok(
      !history.events?.some((e) => e.activityTaskScheduledEventAttributes || e.markerRecordedEventAttributes),
      'no step ran',
    );
    assert.equal((await handle.describe()).status.name, 'RUNNING');
    assert.equal((await stack.mail.messagesFor(RECIPIENT)).filter((m) => m.includes(subject)).length, 0);
    assert.equal((await stack.metadata(key))?.processed, undefined);
    await handle.terminate('test: refused plaintext input');
  });

  test('with MAILROOM_CODEC_ALLOW_PLAINTEXT=true (a migration window) it runs, and still writes encrypted', async () => {
    const taskQueue = `${stack.config.taskQueue}-allow-plaintext`;
    const env = { ...stack.childEnv, TASK_QUEUE: taskQueue, MAILROOM_CODEC_ALLOW_PLAINTEXT: 'true' };
    const worker = await createInboundWorker({
      connection: stack.env.nativeConnection,
      namespace: stack.env.namespace ?? 'default',
      client: stack.env.client,
      dataConverter: mailroomDataConverter(env),
      deps: { s3: stack.s3, dynamo: stack.dynamo, transports: stack.transports, config: loadConfig(env) },
      deployment: null,
    });
    const subject = 'Started without the codec during a migration';
    const key = await stack.put(rawMail({ from: SENDER, to: [RECIPIENT], subject }), `allowed-${process.pid}`);
    const result = await worker.runUntil(async () => {
      const handle = await plainClient().workflow.start('processInboundEmail', {
        taskQueue,
        workflowId: inboundWorkflowId(BUCKET, key),
        args: [inputFor(key)],
      });
      // Its result is encrypted: read with the stack's (strict) codec.
      return stack.env.client.workflow.getHandle(handle.workflowId).result();
    });
    assert.equal((result as { status: string }).status, 'delivered');
    assert.equal((await stack.mail.messagesFor(RECIPIENT)).filter((m) => m.includes(subject)).length, 1);
  });
});
