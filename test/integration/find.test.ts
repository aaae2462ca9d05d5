// Find by address (issue 25): a few hundred emails through the real stack, two keys in
// MAILROOM_CODEC_KEYS, some emails hashed by a worker from before the rotation (the old key
// current then, retired now: still listed, no longer first). `npm run find` must find a
// sender's and a recipient's runs under both keys, with nothing but hashes in the search
// attributes, and the query it prints must be the one the Web UI's list runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Worker } from '@temporalio/worker';
import { MAIL_FROM_HASH, MAIL_TO_HASH } from '../../contracts/search-attributes';
import { ADDRESS_HASH_PATTERN, addressHash } from '../../lib/mail/address-hash';
import { parseCodecKeys } from '../../lib/temporal/codec';
import { mailroomDataConverter } from '../../lib/temporal/data-converter';
import { rawMail } from '../../scripts/stack/demo-emails';
import { startInbound } from '../../starters/start-inbound';
import { createInboundWorker } from '../../workers/inbound';
import { BUCKET, DOMAIN, type InboundStack, startInboundStack } from '../support/inbound-stack';

const ROOT = join(__dirname, '..', '..');
const OLD_KEY = Buffer.alloc(32, 7);
const NEW_KEY = randomBytes(32);
const OLD = `old:${OLD_KEY.toString('base64')}`;
const NEW = `new:${NEW_KEY.toString('base64')}`;
const KEYS = `${NEW},${OLD}`;
const NEEDLE = 'needle.7@sender.example';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';
const TOTAL = 300;

let stack: InboundStack;
let oldWorker: Worker;
let oldRunning: Promise<void>;
/** Workflow ids of NEEDLE's emails: by the current worker (new key), by the one from before the rotation (old key), and those of them to BOB. */
const needle = { current: new Set<string>(), before: new Set<string>(), toBob: new Set<string>() };
const namespace = () => stack.env.namespace ?? 'default';

interface Email {
  from: string;
  to: string[];
  /** Processed by the worker from before the rotation. */
  before: boolean;
}

function emails(): Email[] {
  const out: Email[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const isNeedle = i % 23 === 0; // 14 of 300
    const to = [[ALICE], [BOB], [CAROL], [ALICE, BOB]][i % 4];
    out.push({ from: isNeedle ? NEEDLE : `s${i % 40}@bulk.example`, to, before: i % 3 === 0 });
  }
  return out;
}

async function inBatches<T>(items: T[], size: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map((x, j) => fn(x, i + j)));
}

async function find(args: string[], env: NodeJS.ProcessEnv = stack.childEnv) {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'starters/find.ts', ...args],
      { env, cwd: ROOT, timeout: 60_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

interface Found {
  query: string;
  searched: string;
  keyIds: string[];
  runs: { workflowId: string; status: string; link: string }[];
}
async function findJson(args: string[], env?: NodeJS.ProcessEnv): Promise<Found> {
  const r = await find([...args, '--json', '--limit', '1000'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Found;
}
const ids = (f: Found) => new Set(f.runs.map((r) => r.workflowId));

before(async () => {
  stack = await startInboundStack({ mailboxes: [ALICE, BOB, CAROL], env: { MAILROOM_CODEC_KEYS: KEYS } });
  // A worker from before the rotation: its hashes use the old key (its codec has both keys, as
  // the stack's client encrypts inputs with the new one).
  const beforeQueue = `${stack.config.taskQueue}-before-rotation`;
  oldWorker = await createInboundWorker({
    connection: stack.env.nativeConnection,
    namespace: namespace(),
    client: stack.env.client,
    dataConverter: mailroomDataConverter({ MAILROOM_CODEC_KEYS: KEYS }),
    deps: {
      s3: stack.s3,
      dynamo: stack.dynamo,
      transports: stack.transports,
      config: { ...stack.config, taskQueue: beforeQueue },
      addressHashKeys: parseCodecKeys(OLD),
    },
    deployment: null,
  });
  oldRunning = oldWorker.run();

  const all = emails();
  const started = Date.now();
  const workflowIds: string[] = [];
  await inBatches(all, 25, async (e, i) => {
    const key = await stack.put(
      rawMail({ from: e.from, to: e.to, subject: `m${i}`, body: 'x' }),
      `find-${process.pid}-${i}`,
    );
    const { workflowId } = await startInbound(stack.env.client, e.before ? beforeQueue : stack.config.taskQueue, {
      domain: DOMAIN,
      bucket: BUCKET,
      key,
    });
    workflowIds[i] = workflowId;
    if (e.from === NEEDLE) {
      (e.before ? needle.before : needle.current).add(workflowId);
      if (e.to.includes(BOB)) needle.toBob.add(workflowId);
    }
  });
  await inBatches(workflowIds, 50, async (id) => {
    const result = (await stack.env.client.workflow.getHandle(id).result()) as { status: string };
    assert.equal(result.status, 'delivered', id);
  });
  // Visibility follows the histories shortly.
  const query = `WorkflowType = 'processInboundEmail' AND MailStatus = 'delivered'`;
  for (let t = 0; (await stack.env.client.workflow.count(query)).count < TOTAL; t++) {
    assert.ok(t < 100, 'visibility lists every run within 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  console.error(`find test: ${TOTAL} emails processed in ${Date.now() - started} ms`);
  assert.ok(needle.current.size >= 5 && needle.before.size >= 3 && needle.toBob.size >= 2);
});

after(async () => {
  oldWorker?.shutdown();
  await oldRunning;
  await stack?.stop();
});

describe('npm run find', () => {
  test("finds a sender's runs under the current and the retired key, whatever the spelling", async () => {
    const found = await findJson(['--from', '"The Needle" <Needle.7@Sender.Example>']);
    assert.deepEqual(ids(found), new Set([...needle.current, ...needle.before]));
    assert.deepEqual(found.keyIds, ['new', 'old']);
    assert.ok(found.runs.every((r) => r.status === 'delivered'));
    assert.match(
      found.runs[0].link,
      /^http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/inbound%2F.+\/history$/,
    );
    assert.ok(!found.query.includes('@'), 'the query holds hashes only');
    // The Web UI's list runs this query through the same visibility API.
    const listed = new Set<string>();
    for await (const w of stack.env.client.workflow.list({ query: found.query })) listed.add(w.workflowId);
    assert.deepEqual(listed, ids(found));
  });

  test('without the retired key in the list, the runs it hashed are not found (it is what finds them)', async () => {
    const found = await findJson(['--from', NEEDLE], { ...stack.childEnv, MAILROOM_CODEC_KEYS: NEW });
    assert.deepEqual(ids(found), needle.current);
  });

  test('--to and --from together, --status, --since', async () => {
    assert.deepEqual(ids(await findJson(['--from', NEEDLE, '--to', BOB])), needle.toBob);
    const toCarol = await findJson(['--to', 'CAROL@example.com', '--status', 'delivered,partial']);
    assert.equal(toCarol.runs.length, TOTAL / 4);
    assert.equal((await findJson(['--from', NEEDLE, '--since', '2099-01-01'])).runs.length, 0);
    assert.equal((await findJson(['--from', NEEDLE, '--status', 'failed'])).runs.length, 0);
  });

  test('prints the query, a link per run, and names the endpoint when nothing matches; logs never on stdout', async () => {
    const hit = await find(['--from', NEEDLE, '--to', BOB]);
    assert.equal(hit.code, 0, hit.stderr);
    assert.match(
      hit.stdout,
      /^Query \(paste into the Web UI's filter box\): WorkflowType = 'processInboundEmail' AND MailFromHash IN \('[0-9a-f]{16}', '[0-9a-f]{16}'\) AND MailToHash IN /m,
    );
    assert.match(hit.stdout, /\/workflows\?query=WorkflowType%20%3D/);
    assert.equal(hit.stdout.match(/\/history$/gm)?.length, needle.toBob.size);
    assert.ok(!hit.stdout.includes('{"level'), 'no JSON log line on stdout');
    const none = await find(['--from', 'nobody@nowhere.example']);
    assert.equal(none.code, 0);
    assert.match(
      none.stdout,
      new RegExp(
        `No inbound runs match in ${stack.env.address.replace(/\./g, '\\.')} \\(namespace ${namespace()}\\).*key ids tried: new, old`,
      ),
    );
  });

  test('usage errors exit 2 and say what to do', async () => {
    const noAddress = await find([]);
    assert.equal(noAddress.code, 2);
    assert.match(noAddress.stderr, /give --from or --to/);
    const bad = await find(['--from', 'not-an-address']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--from not-an-address is not an email address/);
    const noKeys = await find(['--from', NEEDLE], { ...stack.childEnv, MAILROOM_CODEC_KEYS: 'none' });
    assert.equal(noKeys.code, 2);
    assert.match(noKeys.stderr, /MAILROOM_CODEC_KEYS is not set \(or is none\)/);
    const help = await find(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /npm run find -- \[options\]/);
  });
});

describe('the recorded hashes', () => {
  test('a run holds the hashes of its sender and recipients under the key current for its worker, and 10 events', async () => {
    const [current] = needle.toBob;
    const before = [...needle.before][0];
    const attrs = async (id: string) =>
      (await stack.env.client.workflow.getHandle(id).describe()).typedSearchAttributes;
    const a = await attrs(current);
    assert.deepEqual(a.get(MAIL_FROM_HASH), [addressHash(NEW_KEY, NEEDLE)]);
    assert.ok(a.get(MAIL_TO_HASH)!.includes(addressHash(NEW_KEY, BOB)));
    const b = await attrs(before);
    assert.deepEqual(b.get(MAIL_FROM_HASH), [addressHash(OLD_KEY, NEEDLE)]);
    for (const h of [...a.get(MAIL_FROM_HASH)!, ...a.get(MAIL_TO_HASH)!, ...b.get(MAIL_TO_HASH)!])
      assert.match(h, ADDRESS_HASH_PATTERN);
    // Folded into the MailStatus upsert: a plain email is 9 events (12 before BATCHED_PATCH read the
    // lookups with the fetch, 11 before TAG_WITH_DELIVERY_PATCH tagged it with the delivery, 10
    // before FETCH_AND_DELIVER_PATCH delivered it in the fetch's local activity).
    const plain = [...needle.current].find((id) => !needle.toBob.has(id))!;
    const history = await stack.env.client.workflow.getHandle(plain).fetchHistory();
    // A loaded machine may heartbeat the workflow task (local activities past 80 % of its
    // timeout): each heartbeat is three more events (completed, scheduled, started), not more steps.
    const tasks = (history.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes).length;
    assert.equal((history.events?.length ?? 0) - 3 * (tasks - 1), 9);
  });
});
