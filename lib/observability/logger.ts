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

// Address masking. RFC 5322 allows more in a local part than a word: the specials
// !#$%&'*+/=?^_`{|}~ (gina{x}@, o'brien@), and a quoted string with spaces, "@" and escaped
// quotes ("john doe"@, "a\"b"@); RFC 6532 allows any Unicode letter. The domain is a dotted
// name (IDN in Unicode or xn-- form) or an address literal ([192.0.2.1], [IPv6:2001:db8::1]).
// A scan rather than one regular expression: it is linear in the line (no backtracking over
// long runs of dots or quotes), and a quoted local part is read forwards, escapes and all.
const ATEXT = /[\p{L}\p{N}\p{M}!#$%&'*+/=?^_`{|}~-]/u;
// A dotted name whose last label is letters (a TLD, not a version number: pino@10.4.0) or
// punycode; or an address literal. Sticky: tried right after an "@".
const DOMAIN = /(?:[\p{L}\p{N}\p{M}_-]+\.)+(?:xn--[a-z0-9-]+|[\p{L}\p{M}]{2,})|\[[^[\]\\\s"]{1,200}\]/uy;
const QUOTED_MAX = 300;

/** Whether the character at `i` is atext or a dot; its length (2 for a character beyond U+FFFF), else 0. */
function atextAt(text: string, i: number, dots: boolean): number {
  const cp = text.codePointAt(i);
  if (cp === undefined) return 0;
  const ch = String.fromCodePoint(cp);
  return (dots && ch === '.') || ATEXT.test(ch) ? ch.length : 0;
}

/** The end of the domain starting at `at`, or -1. */
function domainEnd(text: string, at: number): number {
  DOMAIN.lastIndex = at;
  return DOMAIN.exec(text) ? DOMAIN.lastIndex : -1;
}

/** The masked form: the local part's first letter or digit (if it starts with one), ***, the domain. */
function masked(local: string, domain: string): string {
  const firstChar = [...local.replace(/^"/, '')][0] ?? '';
  return `${/^[\p{L}\p{N}]$/u.test(firstChar) ? firstChar : ''}***@${domain}`;
}

/** Masks every email address in `text`: alice@example.com → a***@example.com, "john doe"@example.com → j***@example.com (the domain stays: it says whose mail it is). */
export function maskAddresses(text: string): string {
  if (!text.includes('@')) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      // A quoted local part: "...", backslash escapes inside, then @domain.
      let j = i + 1;
      while (j < text.length && j - i < QUOTED_MAX && text[j] !== '"' && text[j] !== '\n' && text[j] !== '\r')
        j += text[j] === '\\' ? 2 : 1;
      if (text[j] === '"' && text[j + 1] === '@') {
        const end = domainEnd(text, j + 2);
        if (end > 0) {
          out += masked(text.slice(i, j + 1), text.slice(j + 2, end));
          i = end;
          continue;
        }
      }
      // Not an address: its content is scanned like any text (it may hold one: "bob@example.com").
      out += c;
      i++;
    } else if (atextAt(text, i, false)) {
      // A run of atext and dots: a dot-atom local part when an @ and a domain follow it.
      let j = i;
      for (let n; (n = atextAt(text, j, true));) j += n;
      const end = text[j] === '@' ? domainEnd(text, j + 1) : -1;
      out += end > 0 ? masked(text.slice(i, j), text.slice(j + 1, end)) : text.slice(i, j);
      i = end > 0 ? end : j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * Masks the addresses in one finished JSON log line: each string (key or value) holding an
 * "@" is decoded, masked and encoded again, so a quoted local part is seen with its real
 * quotes (not \") and the line stays valid JSON. Anything else is masked as text.
 */
export function maskLogLine(line: string): string {
  if (!line.includes('@')) return line;
  if (!line.startsWith('{')) return maskAddresses(line);
  return line.replace(/"[^"\\]*(?:\\.[^"\\]*)*"/g, (token) => {
    if (!token.includes('@')) return token;
    let value: unknown;
    try {
      value = JSON.parse(token);
    } catch {
      return maskAddresses(token);
    }
    const m = maskAddresses(value as string);
    return m === value ? token : JSON.stringify(m);
  });
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
    hooks: settings.addresses === 'masked' ? { streamWrite: maskLogLine } : {},
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
    // The SDK logs every activity's and workflow's start and end at debug (several lines per
    // email): at info, drop them before copying their metadata.
    if (!base.isLevelEnabled(PINO_LEVEL[level])) return;
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
