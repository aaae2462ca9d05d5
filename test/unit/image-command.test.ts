// The worker's command line is written once, in the Dockerfile's CMD; the bench, the
// production-build test and `npm run worker` must run the worker with the same Node options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageWorkerArgs, imageWorkerNodeOptions, workerCommand } from '../../scripts/stack/image-command';

const ROOT = join(__dirname, '..', '..');

test("the Dockerfile's CMD starts the inbound worker with V8 memory settings this Node accepts", () => {
  const args = imageWorkerArgs();
  assert.equal(args.at(-1), 'dist/workers/main.js');
  const options = imageWorkerNodeOptions();
  assert.ok(options.includes('--heap-growing-percent=50'), `options: ${options.join(' ')}`);
  assert.ok(options.includes('--max-semi-space-size=4'), `options: ${options.join(' ')}`);
  // A flag Node does not know stops it before the worker starts ("bad option"): run them here.
  const out = execFileSync(
    process.execPath,
    [...options, '-p', 'require("v8").getHeapStatistics().heap_size_limit > 0'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(out.trim(), 'true');
});

test('npm run worker runs the sources with the same V8 options as the image', () => {
  const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
  const v8Options = imageWorkerNodeOptions().filter((o) => o !== '--enable-source-maps');
  for (const option of v8Options)
    assert.ok(scripts.worker.split(' ').includes(option), `${option} in "${scripts.worker}"`);
});

test('the benches start the worker as the image does, or as npm run worker does from the sources', () => {
  assert.deepEqual(workerCommand(true), imageWorkerArgs());
  const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
  assert.equal(['node', ...workerCommand(false)].join(' '), scripts.worker);
});

test('a Dockerfile without a JSON CMD starting with node is refused with the reason', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-dockerfile-'));
  try {
    const file = join(dir, 'Dockerfile');
    writeFileSync(file, 'FROM node:24\n');
    assert.throws(() => imageWorkerArgs(file), /has no CMD line/);
    writeFileSync(file, 'FROM node:24\nCMD ["sh", "-c", "node dist/workers/main.js"]\n');
    assert.throws(() => imageWorkerArgs(file), /must be a JSON array starting with "node"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
