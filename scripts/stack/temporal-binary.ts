// Where the `temporal` CLI (dev server included) lives on this machine.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Finds the temporal CLI: $TEMPORAL_CLI, then PATH, then Go's bin directory. */
export function temporalBinary(): string {
  const candidates = [process.env.TEMPORAL_CLI];
  try {
    candidates.push(execFileSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' }).trim());
  } catch {
    /* not on PATH */
  }
  try {
    candidates.push(join(execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim(), 'bin', 'temporal'));
  } catch {
    /* no go */
  }
  candidates.push(join(process.env.HOME ?? '/root', 'go', 'bin', 'temporal'));
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found) throw new Error('temporal CLI not found: run scripts/install-temporal.sh (go install github.com/temporalio/cli/cmd/temporal@v1.5.1)');
  return found;
}
