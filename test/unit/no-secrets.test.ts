// No key, password or token is committed: anything encrypted with a key in the repository is
// readable by anyone who has the repository. Scans the tracked files (git ls-files) for values
// in the project's key format (MAILROOM_CODEC_KEYS and MAILROOM_SECRET_KEYS entries,
// `<id>:<base64 of 32 bytes>`), and docker-compose.yml and .env.example for secrets written
// inline. Placeholders (a key of one repeated byte) and test fixtures (under test/) are allowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

// An entry of a key list: an id, a colon, 32 bytes in base64 (43 characters and one '=').
const KEY_ENTRY = /(?<![\w.+/-])([A-Za-z0-9][\w.-]{0,63}):([A-Za-z0-9+/]{43}=)(?![A-Za-z0-9+/=])/g;
/** Files whose 32-byte base64 values are checksums, not keys (go.sum's `h1:` hashes). */
const CHECKSUM_FILES = /(^|\/)(go\.sum|package-lock\.json)$/;
/** Environment variables that hold a secret, by name. */
const SECRET_NAME = /(PASSWORD|PWD|SECRET|TOKEN|_KEYS?)$/;

interface Finding {
  file: string;
  line: number;
  what: string;
}

function isPlaceholderKey(base64: string): boolean {
  const bytes = Buffer.from(base64, 'base64');
  return bytes.length === 32 && bytes.every((b) => b === bytes[0]);
}

/** Key-list entries with a real-looking key, outside test fixtures. */
export function committedKeys(files: { path: string; text: string }[]): Finding[] {
  const found: Finding[] = [];
  for (const { path, text } of files) {
    if (CHECKSUM_FILES.test(path) || path.startsWith('test/')) continue;
    for (const m of text.matchAll(KEY_ENTRY)) {
      if (Buffer.from(m[2], 'base64').length !== 32 || isPlaceholderKey(m[2])) continue;
      found.push({
        file: path,
        line: text.slice(0, m.index).split('\n').length,
        what: `key "${m[1]}" (${m[2].slice(0, 6)}...)`,
      });
    }
  }
  return found;
}

/** Compose environment entries that hold a secret inline instead of `${VAR:?...}` (or an alias of one). */
export function inlineComposeSecrets(yaml: string): Finding[] {
  const found: Finding[] = [];
  yaml.split('\n').forEach((line, i) => {
    if (/^\s*#/.test(line)) return;
    const entry = /^\s+([A-Z][A-Z0-9_]*):\s*(?:&[\w-]+\s+)?(.*)$/.exec(line);
    if (entry && SECRET_NAME.test(entry[1])) {
      const value = entry[2].trim().replace(/^["']|["']$/g, '');
      if (!/^\$\{[A-Z0-9_]+:\?[^}]+\}$/.test(value) && !/^\*[\w-]+$/.test(value))
        found.push({ file: 'docker-compose.yml', line: i + 1, what: `${entry[1]} is written inline` });
    }
    // A password in a URL (postgres://user:password@host).
    for (const m of line.matchAll(/:\/\/[^/\s:@]+:([^@\s]+)@/g)) {
      if (!/^\$\{[A-Z0-9_]+:\?[^}]+\}$/.test(m[1]))
        found.push({ file: 'docker-compose.yml', line: i + 1, what: 'a URL with an inline password' });
    }
  });
  return found;
}

function trackedFiles(): { path: string; text: string }[] {
  const paths = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  const files: { path: string; text: string }[] = [];
  for (const path of paths) {
    let buf: Buffer;
    try {
      buf = readFileSync(join(ROOT, path));
    } catch {
      continue; // deleted in the work tree, not yet in the index
    }
    if (buf.includes(0)) continue; // binary
    files.push({ path, text: buf.toString('utf8') });
  }
  return files;
}

const show = (f: Finding[]) => f.map((x) => `${x.file}:${x.line}: ${x.what}`).join('\n');

test('the scans find a committed key and an inline compose secret (they can fail)', () => {
  const key = randomBytes(32).toString('base64');
  assert.equal(committedKeys([{ path: 'docker-compose.yml', text: `KEYS: "dev:${key}"\n` }]).length, 1);
  assert.equal(committedKeys([{ path: 'docs/privacy.md', text: `MAILROOM_CODEC_KEYS=k1:${key},k0:${key}` }]).length, 2);
  assert.equal(committedKeys([{ path: 'test/unit/x.test.ts', text: `k1:${key}` }]).length, 0, 'a test fixture');
  assert.equal(committedKeys([{ path: 'docs/x.md', text: `k1:${'A'.repeat(43)}=` }]).length, 0, 'a placeholder');
  assert.equal(committedKeys([{ path: 'tools/x/go.sum', text: `m v1 h1:${key}` }]).length, 0, 'a checksum');
  assert.deepEqual(
    inlineComposeSecrets(
      [
        '      POSTGRES_PASSWORD: postgres',
        '      CODEC_SERVER_TOKEN: "${CODEC_SERVER_TOKEN:?set it}"',
        '      MAILROOM_CODEC_KEYS: *codec-keys',
        '      DATABASE_URL: postgres://postgres:postgres@postgresql:5432/mailroom',
        '      DATABASE_URL: postgres://postgres:${POSTGRES_PASSWORD:?set it}@postgresql:5432/mailroom',
        '      AWS_SECRET_ACCESS_KEY: mailroom-local-secret',
        '      # POSTGRES_PASSWORD: in a comment',
      ].join('\n'),
    ).map((f) => f.line),
    [1, 4, 6],
  );
});

test('no key of the project is committed outside test fixtures', () => {
  const files = trackedFiles();
  assert.ok(
    files.some((f) => f.path === 'docker-compose.yml'),
    'git ls-files lists the repository',
  );
  const found = committedKeys(files);
  assert.equal(found.length, 0, `committed keys (generate keys at run time or use a placeholder):\n${show(found)}`);
});

test('docker-compose.yml takes every secret from the environment, and .env.example shows how to make each', () => {
  const found = inlineComposeSecrets(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
  assert.equal(found.length, 0, show(found));
  const example = readFileSync(join(ROOT, '.env.example'), 'utf8').split('\n');
  const vars = example.map((l, i) => [l, i] as const).filter(([l]) => /^[A-Z0-9_]+=/.test(l));
  assert.ok(vars.length >= 6, '.env.example lists the secrets');
  for (const [line, i] of vars) {
    const [name, value] = line.split(/=(.*)/s);
    assert.match(value, /replace/, `${name} in .env.example is a placeholder`);
    assert.match(example[i - 1], /^#\s+.*\b(openssl|node|echo)\b/, `${name}: the line above says how to generate it`);
  }
  // A real .env is never tracked.
  assert.ok(!trackedFiles().some((f) => /(^|\/)\.env$/.test(f.path)), '.env is not committed');
});
