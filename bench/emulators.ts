// Each emulator (S3, DynamoDB, an SMTP target) in a process tree of its own, for the
// benchmarks: the process under measurement (a worker, the sweep) then has its CPU and
// memory to itself, and no emulator shares its event loop. Started through scripts/stack/*
// as everywhere else, so a different S3 server there is used here too. This file is both
// the parent's API (startEmulatorProcess) and the child's entry point.
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { startDynamoServer } from '../scripts/stack/dynamodb';
import { startS3Server } from '../scripts/stack/s3';
import { startSmtpTarget } from '../scripts/stack/smtp-target';

export type EmulatorSpec =
  | { kind: 's3'; directory: string }
  | { kind: 'dynamodb' }
  | { kind: 'smtp'; name: string; directory: string; localDomains: string[]; mailboxes: string[] };

export interface EmulatorStats {
  /** SMTP: connections opened and copies stored since start. */
  connections?: number;
  deliveries?: number;
}

export interface EmulatorProcess {
  name: string;
  /** The Node process; an emulator may run a server of its own under it (the S3 server does): count its descendants too (procstat.ts). */
  pid: number;
  endpoint: string;
  port: number;
  stats(): Promise<EmulatorStats>;
  stop(): Promise<void>;
}

type FromChild =
  { ready: { endpoint: string; port: number } } | { id: number; stats: EmulatorStats } | { error: string };

export async function startEmulatorProcess(spec: EmulatorSpec): Promise<EmulatorProcess> {
  const child: ChildProcess = fork(__filename, [JSON.stringify(spec)], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const name = spec.kind === 'smtp' ? spec.name : spec.kind;
  const ready = await new Promise<{ endpoint: string; port: number }>((resolve, reject) => {
    child.on('message', (m: FromChild) => {
      if ('ready' in m) resolve(m.ready);
      if ('error' in m) reject(new Error(`${name} emulator failed to start: ${m.error}`));
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`${name} emulator exited (${signal ?? code}) before it started`)),
    );
  });
  let nextId = 0;
  const pending = new Map<number, (s: EmulatorStats) => void>();
  child.on('message', (m: FromChild) => {
    if ('id' in m) {
      pending.get(m.id)?.(m.stats);
      pending.delete(m.id);
    }
  });
  return {
    name,
    pid: child.pid!,
    ...ready,
    stats: () =>
      new Promise((resolve) => {
        const id = ++nextId;
        pending.set(id, resolve);
        child.send({ id, cmd: 'stats' });
      }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function child(spec: EmulatorSpec): Promise<void> {
  let stop: () => Promise<void>;
  let stats: () => Promise<EmulatorStats> = async () => ({});
  let ready: { endpoint: string; port: number };
  if (spec.kind === 's3') {
    const s3 = await startS3Server({ directory: spec.directory });
    ready = { endpoint: s3.endpoint, port: s3.port };
    stop = s3.stop;
  } else if (spec.kind === 'dynamodb') {
    const dyn = await startDynamoServer();
    ready = { endpoint: dyn.endpoint, port: dyn.port };
    stop = dyn.stop;
  } else {
    const smtp = await startSmtpTarget({
      directory: spec.directory,
      localDomains: spec.localDomains,
      mailboxes: spec.mailboxes,
    });
    ready = { endpoint: `smtp://127.0.0.1:${smtp.port}`, port: smtp.port };
    stop = smtp.stop;
    stats = async () => ({ connections: smtp.connections, deliveries: (await smtp.deliveries()).length });
  }
  process.on('message', (m: { id: number; cmd: 'stats' }) => {
    void stats().then((s) => process.send!({ id: m.id, stats: s }));
  });
  const shutdown = () => void stop().finally(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  // The parent going away (a crashed bench) takes its emulators with it.
  process.once('disconnect', shutdown);
  process.send!({ ready });
}

if (require.main === module) {
  child(JSON.parse(process.argv[2]) as EmulatorSpec).catch((err: unknown) => {
    process.send?.({ error: (err as Error).message });
    process.exit(1);
  });
}
