// Who used the CPU and memory during a benchmark, from Linux /proc (empty figures
// elsewhere): per process by pid, the Temporal server processes this process started, and
// every PostgreSQL backend on the machine (PostgreSQL is shared; on a busy machine that
// figure includes other clients' queries).
import { readdirSync, readFileSync } from 'node:fs';

const USER_HZ = 100; // clock ticks per second on Linux

function stat(pid: number): { comm: string; ppid: number; cpuSeconds: number; childrenCpuSeconds: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited, or not Linux
  }
  const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
  const f = text.slice(text.lastIndexOf(')') + 2).split(' '); // f[1] = ppid, f[11] = utime, f[12] = stime
  return {
    comm,
    ppid: Number(f[1]),
    cpuSeconds: (Number(f[11]) + Number(f[12])) / USER_HZ,
    // f[13], f[14]: cutime, cstime, the children it has waited for (Dovecot's short-lived logins).
    childrenCpuSeconds: (Number(f[13]) + Number(f[14])) / USER_HZ,
  };
}

/**
 * CPU seconds Dovecot has used so far on this machine: its live processes, plus what its
 * masters' exited children (a login, an imap process per connection) used.
 */
export function dovecotCpuSeconds(): number {
  let total = 0;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return 0;
  }
  const names = new Set(['dovecot', 'imap', 'imap-login', 'auth', 'anvil', 'log', 'config', 'stats', 'lmtp']);
  for (const p of pids) {
    const s = stat(Number(p));
    if (!s || !names.has(s.comm)) continue;
    total += s.cpuSeconds + (s.comm === 'dovecot' ? s.childrenCpuSeconds : 0);
  }
  return total;
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSecondsOf(pid: number): number {
  return stat(pid)?.cpuSeconds ?? 0;
}

/**
 * CPU seconds a process's threads have used so far, summed by role (Linux /proc/<pid>/task;
 * empty elsewhere or once it is gone). Node names its threads: MainThread (the event loop: for
 * the worker, activities, the SDK's worker loop and the core bridge), WorkerThread (worker_threads:
 * the Temporal worker's workflow thread, where the sandbox runs), V8Worker (V8's helpers: garbage
 * collection and optimising compilation), libuv-worker (the thread pool: crypto, fs, DNS); the
 * Temporal core's Rust threads are tokio-runtime-* and a few named by the core.
 */
export function threadCpuSeconds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const role = threadRole(comm);
    out[role] = (out[role] ?? 0) + (Number(f[11]) + Number(f[12])) / USER_HZ;
  }
  return out;
}

function threadRole(comm: string): string {
  if (comm === 'MainThread') return 'main thread';
  if (comm === 'WorkerThread') return 'workflow thread';
  if (comm === 'V8Worker') return 'V8 helpers (GC, JIT)';
  if (comm.startsWith('libuv-worker')) return 'libuv pool';
  if (comm.startsWith('tokio-runtime') || comm.startsWith('temporal') || comm.startsWith('workflow'))
    return 'Temporal core (Rust)';
  return 'other threads';
}

/** A process and every process under it (a Node wrapper and the server it spawned). */
export function processTree(root: number): number[] {
  let pids: number[];
  try {
    pids = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return [root];
  }
  const children = new Map<number, number[]>();
  for (const p of pids) {
    const s = stat(p);
    if (s) children.set(s.ppid, [...(children.get(s.ppid) ?? []), p]);
  }
  const out: number[] = [];
  for (const queue = [root]; queue.length;) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Resident memory of a process in MiB: now (VmRSS) and its peak since it started (VmHWM). */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { rssMiB: Math.round(kb('VmRSS') / 1024), peakMiB: Math.round(kb('VmHWM') / 1024) };
  } catch {
    return { rssMiB: 0, peakMiB: 0 };
  }
}

/**
 * CPU seconds so far of the Temporal server processes started by `parent` (the dev server,
 * temporal-server; the Web UI server counted apart) and of all PostgreSQL processes.
 */
export function serverCpuSeconds(parent = process.pid): { temporal: number; temporalUi: number; postgres: number } {
  const out = { temporal: 0, temporalUi: 0, postgres: 0 };
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const p of pids) {
    const s = stat(Number(p));
    if (!s) continue;
    if (s.ppid === parent && s.comm.startsWith('temporal-ui')) out.temporalUi += s.cpuSeconds;
    else if (s.ppid === parent && s.comm.startsWith('temporal')) out.temporal += s.cpuSeconds;
    else if (s.comm === 'postgres') out.postgres += s.cpuSeconds;
  }
  return out;
}

/** The machine's load: busy fraction of all cores since the previous call (from /proc/stat). */
export function machineBusy(): () => number {
  const read = () => {
    try {
      const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      const idle = cpu[3] + (cpu[4] ?? 0);
      return { idle, total: cpu.reduce((a, b) => a + b, 0) };
    } catch {
      return { idle: 0, total: 0 };
    }
  };
  let last = read();
  return () => {
    const now = read();
    const total = now.total - last.total;
    const busy = total > 0 ? 1 - (now.idle - last.idle) / total : NaN;
    last = now;
    return busy;
  };
}
