// The README and docs/ link to each other and to files in the repository (charts in
// bench/results/, sources). Sections move between them; a link left pointing at the old place
// is caught here: every relative link names a file that exists and, for a Markdown file, a
// heading it has (GitHub's anchor rules: lower case, punctuation dropped, spaces to hyphens).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const pages = [
  join(ROOT, 'README.md'),
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(ROOT, 'docs', f)),
];

/** GitHub's anchor for a heading. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, '')
    .replaceAll(' ', '-');
}

function anchors(path: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const h = fenced ? null : /^#+\s+(.*)$/.exec(line);
    if (h) out.add(anchor(h[1]));
  }
  return out;
}

test('anchors as GitHub makes them', () => {
  assert.equal(
    anchor('Running it locally: `npm run temporal:postgres`'),
    'running-it-locally-npm-run-temporalpostgres',
  );
  assert.equal(anchor('Watching a run; health and metrics'), 'watching-a-run-health-and-metrics');
  assert.equal(anchor('Keys: `MAILROOM_CODEC_KEYS`'), 'keys-mailroom_codec_keys');
});

test('every relative link in the README and docs/ points at a file and heading that exist', () => {
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(page, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/i.test(target)) continue; // http(s), mailto
      const [file, hash] = target.split('#');
      const path = file ? join(dirname(page), file) : page;
      const where = `${relative(ROOT, page)}: (${target})`;
      if (!existsSync(path)) broken.push(`${where}: no file ${relative(ROOT, path)}`);
      else if (hash && path.endsWith('.md') && !anchors(path).has(hash))
        broken.push(`${where}: no heading with anchor #${hash} in ${relative(ROOT, path)}`);
    }
  }
  assert.deepEqual(broken, []);
});
