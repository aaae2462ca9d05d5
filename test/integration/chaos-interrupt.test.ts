// `npm run chaos` interrupted (kill, Ctrl-C) stops the worker and the Temporal server it
// started instead of leaving them running. Linux: the process tree is read from /proc.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';

const ROOT = join(__dirname, '..', '..');

/** Every live descendant of `pid`, with its command line. */
function descendants(pid: number): { pid: number; cmd: string }[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out: { pid: number; cmd: string }[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) {
      if (pp !== p) continue;
      try {
        out.push({ pid: child, cmd: readFileSync(`/proc/${child}/cmdline`, 'utf8').replace(/\0/g, ' ') });
      } catch {
        continue;
      }
      walk(child);
    }
  };
  walk(pid);
  return out;
}

const alive = (pid: number) => {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); // a zombie has exited
  } catch {
    return false;
  }
};

test(
  'SIGTERM to a chaos run stops its worker and Temporal server',
  { skip: !existsSync('/proc/self/stat') && 'needs /proc', timeout: 5 * 60_000 },
  async () => {
    const run = spawn(
      process.execPath,
      ['--import', 'tsx', 'bench/chaos.ts', '--scenario', 's3-down', '--emails', '30', '--scale', '0.5', '--rate', '5'],
      {
        cwd: ROOT,
        env: { ...process.env, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    run.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => run.once('exit', (code) => r(code)));
    let started: { pid: number; cmd: string }[] = [];
    try {
      for (const deadline = Date.now() + 180_000; Date.now() < deadline && run.exitCode === null; await sleep(500)) {
        started = descendants(run.pid!);
        if (started.some((p) => p.cmd.includes('workers/main.ts')) && started.some((p) => /temporal/.test(p.cmd)))
          break;
      }
      assert.ok(
        started.some((p) => p.cmd.includes('workers/main.ts')),
        `the chaos run never started its worker: ${stderr.slice(-2000)}`,
      );
      assert.ok(
        started.some((p) => /temporal/.test(p.cmd)),
        'the chaos run never started a Temporal server',
      );

      run.kill('SIGTERM');
      assert.equal(await exited, 143, stderr.slice(-2000));
      assert.match(stderr, /SIGTERM: stopping what the chaos run started/);
      const left = started.filter((p) => alive(p.pid));
      assert.deepEqual(left, [], 'processes left running after the interrupted run');
    } finally {
      // Whatever a failed run left behind must not outlive the test either.
      if (run.exitCode === null) run.kill('SIGKILL');
      for (const p of started.filter((x) => alive(x.pid))) process.kill(p.pid, 'SIGKILL');
    }
  },
);
