// Replay: the histories recorded from representative runs (test/replay/histories, written by
// scripts/record-histories.ts) are replayed against the current workflow code. A change that
// would make a running workflow take a different path (an activity added, removed or
// reordered, a timer moved) fails here, before a deployment could break the workflows in
// flight. No Temporal server is needed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ReplayWorkerOptions, Worker } from '@temporalio/worker';
import { INBOUND_CASES } from '../replay/cases';
import { historyFromJSON } from '../replay/history-json';

const ROOT = join(__dirname, '..', '..');
const HISTORIES = join(ROOT, 'test', 'replay', 'histories');
// Workers decode failures with this converter (lib/temporal/data-converter.ts); the codec is not
// needed, the recorded payloads are stored decoded.
const dataConverter = { failureConverterPath: require.resolve('../../lib/temporal/failure-converter') };

const files = (prefix: string) =>
  readdirSync(HISTORIES)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.json'))
    .sort();

/** Replays the files against a workflow bundle; returns `file: error` for each that failed. */
async function replay(
  options: Pick<ReplayWorkerOptions, 'workflowsPath'>,
  names: string[],
): Promise<{ failures: string[]; errors: Error[]; replayed: number }> {
  const histories = names.map((f) => ({
    workflowId: f,
    history: historyFromJSON(readFileSync(join(HISTORIES, f), 'utf8')),
  }));
  const failures: string[] = [];
  const errors: Error[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories(
    { ...options, dataConverter, replayName: 'mailroom-replay' },
    histories,
  )) {
    replayed++;
    if (result.error) {
      failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
      errors.push(result.error);
    }
  }
  return { failures, errors, replayed };
}

test('every recorded inbound history replays against the current workflows/inbound bundle', async () => {
  const names = files('inbound-');
  const missing = INBOUND_CASES.map((c) => `inbound-${c.name}.json`).filter((f) => !names.includes(f));
  assert.deepEqual(
    missing,
    [],
    'every case of test/replay/cases.ts has a recorded history (node --import tsx scripts/record-histories.ts)',
  );
  const { failures, replayed } = await replay({ workflowsPath: require.resolve('../../workflows/inbound') }, names);
  assert.equal(replayed, names.length);
  assert.deepEqual(
    failures,
    [],
    'the workflow code changed incompatibly with running workflows: guard the change with patched() (docs/upgrades.md)',
  );
});

test(
  'recorded sync histories replay against the workflows/sync bundle',
  { skip: files('sync-').length === 0 && 'no sync-*.json recorded yet' },
  async () => {
    const names = files('sync-');
    const { failures, replayed } = await replay({ workflowsPath: require.resolve('../../workflows/sync') }, names);
    assert.equal(replayed, names.length);
    assert.deepEqual(failures, []);
  },
);

// The check can fail: a copy of the real workflow with one activity added before the first
// one (what a careless change looks like) is rejected; the same change behind patched() is not.
const mutants = join(ROOT, '.local', `replay-mutant-${process.pid}`);
after(() => rmSync(mutants, { recursive: true, force: true }));

function mutant(name: string, insert: string): string {
  const source = readFileSync(join(ROOT, 'workflows', 'processInboundEmail.ts'), 'utf8');
  const anchor = 'let fetched = await persist(';
  assert.ok(
    source.includes(anchor),
    `update the mutation in replay.test.ts: "${anchor}" is no longer in workflows/processInboundEmail.ts`,
  );
  const changed = `import { patched as mutantPatched } from '@temporalio/workflow';\n${source.replaceAll("from '../", "from '../../../").replace(anchor, `${insert}\n    ${anchor}`)}`;
  const dir = join(mutants, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'processInboundEmail.ts'), changed);
  return join(dir, 'processInboundEmail.ts');
}

test('negative control: an activity added before fetchEmail is a determinism violation', async () => {
  const workflowsPath = mutant(
    'unguarded',
    "await remoteLookups.checkBlocklist({ senders: ['x@y.example'], recipients: [] });",
  );
  const names = ['inbound-plain.json', 'inbound-blocked.json'];
  const { failures, errors } = await replay({ workflowsPath }, names);
  assert.equal(failures.length, names.length, `both histories fail to replay: ${failures.join('; ')}`);
  for (const err of errors) {
    assert.equal(err.name, 'DeterminismViolationError');
    assert.match(err.message, /checkBlocklist|fetchEmail|nondetermin/i);
  }
});

test('the same change behind patched() replays cleanly', async () => {
  const workflowsPath = mutant(
    'patched',
    "if (mutantPatched('blocklist-before-fetch')) await remoteLookups.checkBlocklist({ senders: ['x@y.example'], recipients: [] });",
  );
  const { failures } = await replay({ workflowsPath }, ['inbound-plain.json', 'inbound-blocked.json']);
  assert.deepEqual(failures, []);
});
