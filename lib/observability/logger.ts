// One log stream: structured JSON lines (pino) on stdout, one line per event, from
// mailroom's own code, the Temporal SDK's worker and Rust core, and workflow code
// (temporalLogger below, installed by lib/temporal/index.ts installWorkerRuntime). Each line names
// the component and, where there is one, the email (bucket/key) or account it is about;
// lines written inside an activity carry its workflow id, run id and activity type. Never
// message bodies or secrets, and email addresses are masked (a***@example.com) unless
// LOG_ADDRESSES=plain: the histories are encrypted, so the logs must not say more.
//   LOG_LEVEL      trace | debug | info (default) | warn | error | fatal | silent
//   LOG_ADDRESSES  masked (default) | plain (debugging only)
import { asyncLocalStorage } from '@temporalio/activity';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import pino from 'pino';
import { environment } from '../config/env';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type Level = (typeof LEVELS)[number];

export interface LogSettings {
  level: Level;
  addresses: 'masked' | 'plain';
}

/** Reads LOG_LEVEL and LOG_ADDRESSES; a typo stops the process with a message saying what is accepted. */
export function logSettings(env: NodeJS.ProcessEnv = environment()): LogSettings {
  const level = (env.LOG_LEVEL?.trim().toLowerCase() || 'info') as Level;
  if (!LEVELS.includes(level))
    throw new Error(`LOG_LEVEL=${env.LOG_LEVEL} is not a log level: use one of ${LEVELS.join(', ')}`);
  const addresses = env.LOG_ADDRESSES?.trim().toLowerCase() || 'masked';
  if (addresses !== 'masked' && addresses !== 'plain')
    throw new Error(
      `LOG_ADDRESSES=${env.LOG_ADDRESSES} is not valid: use masked (the default) or plain (shows email addresses, for debugging)`,
    );
  return { level, addresses };
}

// local@domain with a dotted domain, Unicode letters allowed. The character before the
// local part must not be one (no partial matches inside longer words); an npm scope in a
// stack trace (/@temporalio/...) has no local part, so it is left alone.
const ADDRESS = /(?<![\p{L}\p{N}._%+-])([\p{L}\p{N}_%+-])[\p{L}\p{N}._%+-]*@((?:[\p{L}\p{N}-]+\.)+[\p{L}]{2,})/gu;

/** Masks every email address in `text`: alice@example.com → a***@example.com (the domain stays: it says whose mail it is). */
export function maskAddresses(text: string): string {
  return text.replace(ADDRESS, '$1***@$2');
}

/** The activity a log line is written in, if any: the same ids Temporal's Web UI shows. */
function activityContext(): Record<string, unknown> {
  const info = asyncLocalStorage.getStore()?.info;
  if (!info) return {};
  return {
    workflowId: info.workflowExecution?.workflowId,
    runId: info.workflowExecution?.runId,
    activityType: info.activityType,
    attempt: info.attempt,
  };
}

export function createLogger(settings: LogSettings = logSettings(), destination?: pino.DestinationStream): pino.Logger {
  const options: pino.LoggerOptions = {
    level: settings.level,
    base: { service: 'mailroom' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['password', '*.password', 'pass', '*.pass', 'secret', '*.secret'], censor: '[redacted]' },
    mixin: activityContext,
    // On the finished line, so addresses in messages, nested fields and error texts
    // (an SMTP reply quoting a recipient) are all caught.
    hooks: settings.addresses === 'masked' ? { streamWrite: maskAddresses } : {},
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * Where the process's log lines go: stdout by default (the services: one stream for the log
 * collector), stderr once logToStderr() is called (the operator commands, whose stdout is their
 * answer). Chosen at the first line written, so a command can switch before it logs anything.
 */
let toStderr = false;
let sink: pino.DestinationStream | undefined;
const switchable: pino.DestinationStream = {
  write(line: string) {
    // The services' default stream, as pino makes it: an asynchronous SonicBoom on fd 1.
    sink ??= toStderr ? pino.destination({ dest: 2, sync: true }) : pino.destination({ dest: 1, sync: false });
    sink.write(line);
  },
};

/** Sends every later log line of this process to stderr (lib/cli's commandMain calls it). */
export function logToStderr(): void {
  toStderr = true;
  if (sink) {
    (sink as { flushSync?: () => void }).flushSync?.();
    sink = undefined;
  }
}

export const logger = createLogger(undefined, switchable);

export function componentLogger(component: string): pino.Logger {
  return logger.child({ component });
}

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** The Rust core's log filter for a pino level (the core has no fatal; silent keeps errors). */
export function coreLogLevel(level: Level): LogLevel {
  return level === 'fatal' || level === 'silent' ? 'ERROR' : (level.toUpperCase() as LogLevel);
}

/**
 * The Temporal SDK's logger (Runtime.install({ logger })) writing into `base`: the worker's
 * lifecycle lines, the core's forwarded lines and workflow code's `log` calls become JSON
 * lines like mailroom's own, with the SDK's metadata (sdkComponent, workflowId, runId, ...).
 */
export function temporalLogger(base: pino.Logger = logger.child({ component: 'temporal' })): TemporalLogger {
  const write = (level: LogLevel, message: string, meta: LogMetadata = {}) => {
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(meta)) {
      if (key === 'taskToken') continue; // opaque and long; activityId and the workflow ids say which task
      if (key === 'workflowRunId')
        fields.runId = value; // the name workflow lines and mailroom's use
      else if (value instanceof Error) fields[key === 'error' ? 'err' : key] = pino.stdSerializers.err(value);
      else fields[key] = value;
    }
    base[PINO_LEVEL[level]](fields, message);
  };
  return {
    log: write,
    trace: (m, meta) => write('TRACE', m, meta),
    debug: (m, meta) => write('DEBUG', m, meta),
    info: (m, meta) => write('INFO', m, meta),
    warn: (m, meta) => write('WARN', m, meta),
    error: (m, meta) => write('ERROR', m, meta),
  };
}
