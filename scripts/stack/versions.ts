// The pinned versions of the Temporal binaries the local stack builds with Go, read from
// scripts/versions.env: the install scripts source that file, docker-compose.yml's Temporal
// images must carry the same versions (test/unit/versions.test.ts), and the stack on
// PostgreSQL refuses a server or Web UI binary of another version.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const VERSIONS_FILE = join(__dirname, '..', 'versions.env');

/** `NAME=value` lines of a versions file (comments and blank lines skipped). */
export function parseVersions(text: string, file = VERSIONS_FILE): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z][A-Z0-9_]*)=(v?\d+\.\d+\.\d+)$/.exec(line);
    if (!m)
      throw new Error(`${file}:${i + 1}: expected NAME=v1.2.3 (no quotes, no spaces), found ${JSON.stringify(raw)}`);
    out[m[1]] = m[2];
  }
  return out;
}

function pinned(name: string): string {
  const value = parseVersions(readFileSync(VERSIONS_FILE, 'utf8'))[name];
  if (!value) throw new Error(`${VERSIONS_FILE} has no ${name}=... line`);
  return value;
}

/** go.temporal.io/server: temporal-server, temporal-sql-tool, compose's temporalio/server. */
export const TEMPORAL_SERVER_VERSION = pinned('TEMPORAL_SERVER_VERSION');
/** github.com/temporalio/ui-server/v2: temporal-ui-server, compose's temporalio/ui. */
export const TEMPORAL_UI_VERSION = pinned('TEMPORAL_UI_VERSION');
/** github.com/temporalio/cli: the dev server (`temporal server start-dev`). */
export const TEMPORAL_CLI_VERSION = pinned('TEMPORAL_CLI_VERSION');
