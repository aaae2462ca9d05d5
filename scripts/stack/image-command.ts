// The worker's command line as the production image runs it: the Dockerfile's CMD is the one
// place it is written. The bench (--compiled) and the production-build test start the compiled
// worker with exactly these arguments, so what they measure and prove is what operators run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** The arguments after `node` in the Dockerfile's CMD (its last CMD line, JSON form). */
export function imageWorkerArgs(dockerfile = join(ROOT, 'Dockerfile')): string[] {
  const cmds = readFileSync(dockerfile, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('CMD '));
  const last = cmds.at(-1);
  if (!last) throw new Error(`${dockerfile} has no CMD line: the image would not know how to start the worker`);
  const argv: unknown = JSON.parse(last.slice(4));
  if (!Array.isArray(argv) || argv[0] !== 'node' || !argv.every((a) => typeof a === 'string'))
    throw new Error(`${dockerfile}: CMD must be a JSON array starting with "node", found ${last}`);
  return argv.slice(1) as string[];
}

/** The V8 and Node options in that command (everything before the script). */
export function imageWorkerNodeOptions(dockerfile?: string): string[] {
  return imageWorkerArgs(dockerfile).filter((a) => a.startsWith('--'));
}

/**
 * How the benches start the inbound worker: the image's command line (`compiled`), or the same
 * V8 options on the sources through tsx (as `npm run worker`; tsx maps stack traces itself).
 */
export function workerCommand(compiled: boolean): string[] {
  if (compiled) return imageWorkerArgs();
  const options = imageWorkerNodeOptions().filter((o) => o !== '--enable-source-maps');
  return [...options, '--import', 'tsx', 'workers/main.ts'];
}
