// One set of Temporal versions: scripts/versions.env pins the server, the Web UI server and the
// CLI the local stack builds with Go, and docker-compose.yml's temporalio/server,
// temporalio/admin-tools and temporalio/ui images must carry the same versions, or the Docker
// stack and the local one (tests, benchmarks) would run different servers. The table of pins
// in docs/production.md and the README must name what compose runs. Reads the files as text:
// no Go, no compose-check (test/integration/compose.test.ts validates the whole file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseVersions,
  TEMPORAL_CLI_VERSION,
  TEMPORAL_SERVER_VERSION,
  TEMPORAL_UI_VERSION,
  VERSIONS_FILE,
} from '../../scripts/stack/versions';

const ROOT = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const COMPOSE = read('docker-compose.yml');
const PRODUCTION = read('docs/production.md');
const README = read('README.md');

/** service -> image, from the `services:` block of a compose file (two-space indentation). */
function composeImages(yaml: string): Record<string, string> {
  const images: Record<string, string> = {};
  let inServices = false;
  let service: string | undefined;
  for (const line of yaml.split('\n')) {
    if (/^\S/.test(line)) {
      inServices = line.startsWith('services:');
      service = undefined;
      continue;
    }
    if (!inServices) continue;
    const name = /^ {2}([A-Za-z0-9._-]+):\s*$/.exec(line);
    if (name) service = name[1];
    const image = /^ {4}image:\s*["']?([^"'\s#]+)/.exec(line);
    if (image && service) images[service] = image[1];
  }
  return images;
}

/** What in the compose file disagrees with the pinned versions, one line each. */
function temporalMismatches(images: Record<string, string>, pins: { server: string; ui: string }): string[] {
  const server = pins.server.replace(/^v/, '');
  const ui = pins.ui.replace(/^v/, '');
  const out: string[] = [];
  const byRepo = (repo: string) => Object.entries(images).filter(([, image]) => image.startsWith(`${repo}:`));
  const expect = (repo: string, ok: (tag: string) => boolean, want: string) => {
    const found = byRepo(repo);
    if (found.length === 0) out.push(`no service runs ${repo}`);
    for (const [service, image] of found)
      if (!ok(image.slice(repo.length + 1))) out.push(`${service}: ${image}, but scripts/versions.env pins ${want}`);
  };
  expect('temporalio/server', (tag) => tag === server, `temporalio/server:${server}`);
  // admin-tools tags are <server>-tctl-<tctl>-cli-<cli>: the schema tool must be the server's.
  expect('temporalio/admin-tools', (tag) => tag.startsWith(`${server}-`), `temporalio/admin-tools:${server}-...`);
  expect('temporalio/ui', (tag) => tag === ui, `temporalio/ui:${ui}`);
  return out;
}

const PINS = { server: TEMPORAL_SERVER_VERSION, ui: TEMPORAL_UI_VERSION };

test('scripts/versions.env pins the server, UI and CLI, and the install scripts read it', () => {
  assert.match(TEMPORAL_SERVER_VERSION, /^v1\.\d+\.\d+$/);
  assert.match(TEMPORAL_UI_VERSION, /^v2\.\d+\.\d+$/);
  assert.match(TEMPORAL_CLI_VERSION, /^v1\.\d+\.\d+$/);
  for (const script of ['scripts/install-temporal-server.sh', 'scripts/install-temporal.sh']) {
    const text = read(script);
    assert.match(
      text,
      /^\. "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)\/versions\.env"$/m,
      `${script} sources versions.env`,
    );
    assert.doesNotMatch(text, /^[A-Z_]*VERSION=v?\d/m, `${script} writes no version of its own`);
  }
  assert.throws(
    () => parseVersions('TEMPORAL_SERVER_VERSION="v1.29.7"\n', VERSIONS_FILE),
    /versions\.env:1: expected NAME=v1\.2\.3/,
  );
});

test('docker-compose.yml runs the Temporal server, admin-tools and UI versions the local stack builds', () => {
  const images = composeImages(COMPOSE);
  assert.ok(Object.keys(images).length >= 8, `services found: ${Object.keys(images).join(', ')}`);
  assert.deepEqual(temporalMismatches(images, PINS), []);
});

test('a compose file on another Temporal or UI version is caught, naming the service', () => {
  const server = TEMPORAL_SERVER_VERSION.replace(/^v/, '');
  const ui = TEMPORAL_UI_VERSION.replace(/^v/, '');
  const older = composeImages(
    COMPOSE.replace(`temporalio/server:${server}\n`, 'temporalio/server:1.29.1\n')
      .replace(`temporalio/ui:${ui}\n`, 'temporalio/ui:2.42.1\n')
      .replace(/temporalio\/admin-tools:[^\s-]+-/, 'temporalio/admin-tools:1.29.1-'),
  );
  assert.deepEqual(temporalMismatches(older, PINS), [
    `temporal: temporalio/server:1.29.1, but scripts/versions.env pins temporalio/server:${server}`,
    `temporal-schema: temporalio/admin-tools:1.29.1-tctl-1.18.4-cli-1.7.2, but scripts/versions.env pins temporalio/admin-tools:${server}-...`,
    `temporal-ui: temporalio/ui:2.42.1, but scripts/versions.env pins temporalio/ui:${ui}`,
  ]);
  // And the other way round: a newer pin with compose left behind.
  assert.equal(temporalMismatches(composeImages(COMPOSE), { ...PINS, server: 'v1.32.2' }).length, 3);
});

test('the table in docs/production.md names every pinned image and binary as compose and versions.env do', () => {
  const start = PRODUCTION.indexOf('\n## Pinned versions\n');
  assert.ok(start >= 0, 'docs/production.md has a "Pinned versions" section');
  const section = PRODUCTION.slice(start + 1);
  const end = section.indexOf('\n## ', 1);
  // The table's body rows (not the header or the separator).
  const rows = (end < 0 ? section : section.slice(0, end))
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
    .slice(1);
  assert.ok(rows.length >= 10, `rows in the table: ${rows.length}`);
  for (const row of rows) assert.match(row, /\| 20\d\d-\d\d-\d\d /, `when it was last checked: ${row.slice(0, 60)}`);
  for (const image of new Set(Object.values(composeImages(COMPOSE)))) {
    if (image === 'mailroom-worker') continue; // built from the Dockerfile
    assert.ok(
      rows.some((r) => r.includes(`\`${image}\``)),
      `docs/production.md "Pinned versions" lists ${image} (as compose runs it)`,
    );
  }
  for (const [name, version] of Object.entries(parseVersions(readFileSync(VERSIONS_FILE, 'utf8'))))
    assert.ok(
      rows.some((r) => r.includes(version)),
      `docs/production.md "Pinned versions" lists ${name}=${version} (scripts/versions.env)`,
    );
});

test('the README names the Temporal and UI versions compose runs', () => {
  assert.match(README, new RegExp(`Temporal ${TEMPORAL_SERVER_VERSION.slice(1).replaceAll('.', '\\.')} on PostgreSQL`));
  assert.match(README, new RegExp(`Temporal UI ${TEMPORAL_UI_VERSION.slice(1).replaceAll('.', '\\.')}`));
});
