// The parser of the README's operator tables (test/support/readme-commands.ts), and the
// README itself: every documented command names an npm script that exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { longOptions, npmScript, operatorCommands, variants } from '../support/readme-commands';

const ROOT = join(__dirname, '..', '..');

const sample = `# Tool

| action | command |
| --- | --- |
| not marked | \`npm run ignored\` |

## Ops

<!-- operator-commands -->
| action | command |
| --- | --- |
| one | \`npm run a -- --x X [--y] [--z Z]\` (see \`docs\`) |
| two | \`npm run b [-- --build-id B1 \\| --unversioned]\` |
| env | \`FOO=1 npm run -s c [-- --json]\` |
`;

test('only marked tables are read; escaped pipes stay in the command', () => {
  assert.deepEqual(operatorCommands(sample), [
    { section: 'Ops', action: 'one', command: 'npm run a -- --x X [--y] [--z Z]' },
    { section: 'Ops', action: 'two', command: 'npm run b [-- --build-id B1 | --unversioned]' },
    { section: 'Ops', action: 'env', command: 'FOO=1 npm run -s c [-- --json]' },
  ]);
  assert.throws(() => operatorCommands('<!-- operator-commands -->\nno table'), /not followed by a table/);
  assert.throws(
    () => operatorCommands('<!-- operator-commands -->\n| action | command |\n| --- | --- |\n| x | plain words |'),
    /without an `npm run/,
  );
});

test('variants: bare, everything optional, each other alternative', () => {
  assert.deepEqual(variants('npm run a -- --x X [--y] [--z Z]'), [
    'npm run a -- --x X',
    'npm run a -- --x X --y --z Z',
  ]);
  assert.deepEqual(variants('npm run b [-- --build-id B1 | --unversioned]'), [
    'npm run b',
    'npm run b -- --build-id B1',
    'npm run b -- --unversioned',
  ]);
  assert.deepEqual(variants('npm run worker'), ['npm run worker']);
  assert.deepEqual(npmScript('FOO=1 npm run -s c -- --json'), { script: 'c', silent: true });
  assert.deepEqual(npmScript('npm run start:object -- --wait'), { script: 'start:object', silent: false });
  assert.deepEqual(longOptions('npm run a -- --x X --y --z-z Z'), ['x', 'y', 'z-z']);
});

test('the README has operator tables, and every command in them names an existing npm script', () => {
  const commands = operatorCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
    .scripts;
  assert.ok(commands.length >= 10, `found ${commands.length}`);
  for (const c of commands)
    assert.ok(
      scripts[npmScript(c.command).script],
      `README (${c.section}): ${c.command}: no npm script ${npmScript(c.command).script} in package.json`,
    );
});
