// Where the Temporal binaries live on this machine: the `temporal` CLI (dev server included,
// scripts/install-temporal.sh) and the server, SQL tool and Web UI server for the stack on
// PostgreSQL (scripts/install-temporal-server.sh).
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { TEMPORAL_CLI_VERSION, TEMPORAL_SERVER_VERSION } from './versions';

/** Finds a Go-built binary: $<envVar>, then PATH, then Go's bin directory, then ~/go/bin. */
function findBinary(name: string, envVar: string, missing: string): string {
  const candidates = [process.env[envVar]];
  try {
    candidates.push(execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim());
  } catch {
    /* not on PATH */
  }
  try {
    candidates.push(join(execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim(), 'bin', name));
  } catch {
    /* no go */
  }
  candidates.push(join(process.env.HOME ?? '/root', 'go', 'bin', name));
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found) throw new Error(missing);
  return found;
}

/** Finds the temporal CLI: $TEMPORAL_CLI, then PATH, then Go's bin directory. */
export function temporalBinary(): string {
  return findBinary(
    'temporal',
    'TEMPORAL_CLI',
    `temporal CLI not found: run scripts/install-temporal.sh (builds CLI ${TEMPORAL_CLI_VERSION} on server ${TEMPORAL_SERVER_VERSION} with Go) or install Temporal's released CLI`,
  );
}

const serverHint = 'run scripts/install-temporal-server.sh (or npm run setup)';

/** The Temporal server (go.temporal.io/server/cmd/server): $TEMPORAL_SERVER_BIN, PATH, Go's bin directory. */
export function temporalServerBinary(): string {
  return findBinary('temporal-server', 'TEMPORAL_SERVER_BIN', `temporal-server not found: ${serverHint}`);
}

/** Temporal's schema tool (go.temporal.io/server/cmd/tools/sql): $TEMPORAL_SQL_TOOL_BIN, PATH, Go's bin directory. */
export function temporalSqlToolBinary(): string {
  return findBinary('temporal-sql-tool', 'TEMPORAL_SQL_TOOL_BIN', `temporal-sql-tool not found: ${serverHint}`);
}

/** The Web UI server (github.com/temporalio/ui-server/v2/cmd/server): $TEMPORAL_UI_SERVER_BIN, PATH, Go's bin directory. */
export function temporalUiServerBinary(): string {
  return findBinary('temporal-ui-server', 'TEMPORAL_UI_SERVER_BIN', `temporal-ui-server not found: ${serverHint}`);
}
