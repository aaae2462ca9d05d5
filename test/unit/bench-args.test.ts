// The benchmarks' command lines (bench/args.ts): --help prints what the bench measures and its
// options; a wrong option is a short usage error, not a stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { headerComment } from '../../bench/args';

const ROOT = join(__dirname, '..', '..');
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

test('headerComment: the leading comment lines, without their slashes, up to the first other line', () => {
  assert.equal(headerComment('// one\n//   --two N  x\n//\nimport a;\n// later'), 'one\n  --two N  x\n');
  assert.equal(headerComment('import a;\n// later'), '');
});

test('a bench answers --help with its header and exits 0; an unknown option exits 2 with one line', async () => {
  const help = await run(['bench/sync.ts', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^`npm run bench` \(sync part\)/);
  const wrong = await run(['bench/sync.ts', '--mesages', '10']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /^Unknown option '--mesages'\n\(--help lists the options\)\n$/);
});
