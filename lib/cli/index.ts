// One way for every operator command (starters/*) to read its options, explain itself and
// end: `--help`, options validated before anything connects, documented exit codes, progress
// that also works when output is not a terminal, and JSON that stays alone on stdout.
//
// Exit codes (the README's operator section documents them):
//   0 done, 1 failed, 2 usage error (bad or missing option or environment variable), 3 needs
//   attention (e.g. an account waits for a new password).
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { Presets, SingleBar } from 'cli-progress';
import { ConfigError } from '../config';
import { logToStderr } from '../observability/logger';

export const EXIT = { done: 0, failed: 1, usage: 2, attention: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A bad or missing option: exit 2 with the message and a pointer to --help. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The command did its part but something waits for the operator: exit 3. */
export class AttentionError extends Error {
  override name = 'AttentionError';
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  /** Shown in the help after the option name, e.g. `<email>`. */
  value?: string;
  multiple?: boolean;
  short?: string;
  required?: boolean;
  default?: string | boolean;
}

export interface CommandSpec<O extends Record<string, OptionSpec>> {
  /** How the operator runs it: the npm script name (`npm run <name> -- ...`). */
  name: string;
  summary: string;
  options: O;
  /** Complete command lines, copy-pasteable. */
  examples: readonly string[];
  /** Extra paragraphs for the help (environment, what happens on a second run, ...). */
  notes?: readonly string[];
  /** The help's exit-code line, when the command gives the codes meanings of its own (one line, not two). */
  exitCodes?: string;
}

const EXIT_CODES_LINE = 'Exit codes: 0 done, 1 failed, 2 usage error, 3 needs attention.';

type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['multiple'] extends true
    ? string[]
    : S['required'] extends true
      ? string
      : string | undefined;

export type OptionValues<O extends Record<string, OptionSpec>> = { [K in keyof O]: ValueOf<O[K]> };

export function helpText<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): string {
  const rows = Object.entries({
    ...spec.options,
    help: { type: 'boolean', description: 'show this help' } as OptionSpec,
  }).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
    const extra = [
      o.required ? 'required' : undefined,
      o.multiple ? 'repeatable' : undefined,
      o.default !== undefined && o.default !== false ? `default ${o.default}` : undefined,
    ].filter(Boolean);
    return [flag, `${o.description}${extra.length ? ` (${extra.join(', ')})` : ''}`] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return [
    `npm run ${spec.name} -- [options]`,
    '',
    spec.summary,
    '',
    'Options:',
    ...rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`),
    ...(spec.notes?.length ? ['', ...spec.notes] : []),
    '',
    spec.examples.length > 1 ? 'Examples:' : 'Example:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
    spec.exitCodes ?? EXIT_CODES_LINE,
    '',
  ].join('\n');
}

/** Parses argv against the spec; --help is answered by the caller (runCommand). */
export function parseOptions<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  argv: string[],
): { help: boolean; values: OptionValues<O> } {
  const options: Record<
    string,
    { type: 'string' | 'boolean'; multiple?: boolean; short?: string; default?: string | boolean }
  > = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = {
      type: o.type,
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.short ? { short: o.short } : {}),
      ...(o.default !== undefined ? { default: o.default } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (err) {
    // node:util's messages name the option ("Unknown option '--x'"); keep them, drop its own hint.
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const { help, ...values } = parsed.values as Record<string, unknown>;
  if (help) return { help: true, values: values as OptionValues<O> };
  for (const [name, o] of Object.entries(spec.options)) {
    if (o.multiple && values[name] === undefined) values[name] = [];
    if (o.type === 'boolean' && values[name] === undefined) values[name] = false;
    const v = values[name];
    if (o.required && (v === undefined || (Array.isArray(v) && v.length === 0)))
      throw new UsageError(`--${name} is required: ${o.description}`);
    if (o.type === 'string' && typeof v === 'string' && v.trim() === '')
      throw new UsageError(`--${name} is empty: ${o.description}`);
  }
  return { help: false, values: values as OptionValues<O> };
}

/** The option of every command that starts workflows: the explicit opt-out of encryption (lib/temporal/data-converter.ts). */
export const PLAINTEXT_OPTION = {
  type: 'boolean',
  description:
    'start workflows although MAILROOM_CODEC_KEYS is unset: addresses and subjects land in Temporal in plaintext (local experiments only)',
} as const;

export interface CommandIO {
  argv?: string[];
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

/**
 * Runs a command: parses and validates its options, answers --help, runs `main`, prints
 * what went wrong and returns the exit code (the process exits with it).
 */
export async function runCommand<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  main: (values: OptionValues<O>) => Promise<ExitCode | void>,
  io: CommandIO = {},
): Promise<ExitCode> {
  const out = io.stdout ?? ((t: string) => process.stdout.write(t));
  const err = io.stderr ?? ((t: string) => process.stderr.write(t));
  let code: ExitCode;
  try {
    const { help, values } = parseOptions(spec, io.argv ?? process.argv.slice(2));
    if (help) {
      out(helpText(spec));
      code = EXIT.done;
    } else {
      code = (await main(values)) ?? EXIT.done;
    }
  } catch (e) {
    const error = e as Error & { cause?: unknown };
    const cause =
      error.cause instanceof Error && !error.message.includes(error.cause.message) ? `: ${error.cause.message}` : '';
    if (error instanceof UsageError) {
      err(`${spec.name}: ${error.message}\nRun \`npm run ${spec.name} -- --help\` for the options and an example.\n`);
      code = EXIT.usage;
    } else if (error instanceof ConfigError) {
      // A bad or missing environment variable: the operator's to fix, like a bad option.
      err(`${spec.name}: ${error.message}\n`);
      code = EXIT.usage;
    } else if (error instanceof AttentionError) {
      err(`${spec.name}: ${error.message}\n`);
      code = EXIT.attention;
    } else {
      err(`${spec.name}: ${error.message}${cause}\n`);
      code = EXIT.failed;
    }
  }
  return code;
}

/** runCommand for a script's entry point: sets the exit code and exits once output is flushed. */
export function commandMain<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  main: (values: OptionValues<O>) => Promise<ExitCode | void>,
): void {
  // stdout is the command's answer (lines, --json): log lines from the code below go to stderr.
  logToStderr();
  void runCommand(spec, main).then((code) => {
    // Open handles (gRPC channels, pools) must not keep a finished command alive.
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  });
}

// ---- long-running services ------------------------------------------------------------

/** A long-running process (workers/*): no options, configured by its environment. */
export interface ServiceSpec {
  /** The npm script that runs it. */
  name: string;
  summary: string;
  /** `VARIABLE  what it does` lines: the ones to look at first. */
  environment: readonly string[];
  notes?: readonly string[];
  examples: readonly string[];
}

export function serviceHelpText(spec: ServiceSpec): string {
  return [
    `npm run ${spec.name}`,
    '',
    spec.summary,
    '',
    'It takes no options; the environment configures it (every variable: docs/configuration.md):',
    ...spec.environment.map((e) => `  ${e}`),
    ...(spec.notes?.length ? ['', ...spec.notes] : []),
    '',
    spec.examples.length > 1 ? 'Examples:' : 'Example:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
    'Exit codes: 0 stopped cleanly (SIGTERM or SIGINT), 1 failed to start or stopped on an error (the log says why), 2 usage error.',
    '',
  ].join('\n');
}

/**
 * A service's command line, read before anything starts: `--help` (or -h) prints the help and
 * gives 0, anything else is a usage error (2); undefined when there are no arguments and the
 * service should start. `npm run worker -- --help` must not start a worker.
 */
export function serviceArgs(spec: ServiceSpec, io: CommandIO = {}): ExitCode | undefined {
  const argv = io.argv ?? process.argv.slice(2);
  if (argv.length === 0) return undefined;
  const out = io.stdout ?? ((t: string) => process.stdout.write(t));
  const err = io.stderr ?? ((t: string) => process.stderr.write(t));
  if (argv.some((a) => a === '--help' || a === '-h')) {
    out(serviceHelpText(spec));
    return EXIT.done;
  }
  err(
    `${spec.name}: takes no arguments (got ${argv.join(' ')}); it is configured by its environment.\nRun \`npm run ${spec.name} -- --help\` for the variables.\n`,
  );
  return EXIT.usage;
}

// ---- confirmation ----------------------------------------------------------------------

/** The options of every command that deletes or re-processes a lot at once. */
export const YES_OPTION = {
  type: 'boolean',
  description: 'go ahead without asking (needed when stdin is not a terminal: scripts, cron, CI)',
} as const;

export interface ConfirmIO {
  /** Default: process.stdin.isTTY. */
  interactive?: boolean;
  /** Answers the question (default: a prompt on stderr, read from stdin). */
  ask?: (question: string) => Promise<string>;
}

/**
 * Refuses a destructive step that nobody confirmed: with --yes it goes ahead; on a terminal it
 * asks (yes goes ahead); otherwise (no terminal to ask on) it refuses with a usage error, before
 * anything was done. Call it early with only `what` to refuse a script before any work, and
 * again with the details once they are known.
 */
export async function confirm(command: string, what: string, yes: boolean, io: ConfirmIO = {}): Promise<void> {
  if (yes) return;
  const interactive = io.interactive ?? process.stdin.isTTY === true;
  if (!interactive)
    throw new UsageError(
      `${what}: not confirmed, and stdin is not a terminal to ask on. Nothing was done. Pass --yes to go ahead (--dry-run shows what it would do).`,
    );
  const ask =
    io.ask ??
    (async (question: string) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    });
  const answer = (await ask(`${command}: ${what}. Type yes to go ahead: `)).trim().toLowerCase();
  if (answer !== 'yes' && answer !== 'y')
    throw new UsageError(`${what}: not confirmed (answer "${answer}"). Nothing was done.`);
}

// ---- option values ---------------------------------------------------------------------

/** Closest known word, for "did you mean" hints (edit distance up to 2). */
function closest(word: string, known: readonly string[]): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length][b.length];
  };
  const best = known.map((k) => [k, dist(word, k)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= 2 ? best[0] : undefined;
}

/** One of the allowed words (case-insensitive), or a usage error listing them. */
export function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  const v = value.trim().toLowerCase();
  const hit = allowed.find((a) => a.toLowerCase() === v);
  if (hit) return hit;
  const hint = closest(v, allowed);
  throw new UsageError(
    `--${option} ${value} is not one of ${allowed.join(', ')}${hint ? ` (did you mean ${hint}?)` : ''}`,
  );
}

/** A comma-separated list (repeatable option values are joined first), each checked against `allowed` if given. */
export function listOf<T extends string>(
  option: string,
  value: string | readonly string[] | undefined,
  allowed?: readonly T[],
): T[] {
  const items = (Array.isArray(value) ? value : value === undefined ? [] : [value])
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  return items.map((i) => (allowed ? oneOf(option, i, allowed) : (i as T)));
}

export function positiveNumber(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${option} ${value} must be a positive number`);
  return n;
}

export function positiveInteger(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${option} ${value} must be a positive whole number`);
  return n;
}

export function tcpPort(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UsageError(`--${option} ${value} is not a TCP port (1-65535)`);
  return n;
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "90s", "15m", "2h", "7d", "500ms" → milliseconds. */
export function duration(option: string, value: string): number {
  const m = value.trim().match(/^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/i);
  if (!m) throw new UsageError(`--${option} ${value} is not a duration: use e.g. 90s, 15m, 2h or 7d`);
  return Number(m[1]) * UNIT_MS[m[2].toLowerCase() as keyof typeof UNIT_MS];
}

export function emailAddress(option: string, value: string): string {
  const v = value.trim();
  if (!/^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(v)) throw new UsageError(`--${option} ${value} is not an email address`);
  return v.toLowerCase();
}

// ---- output ----------------------------------------------------------------------------

/** JSON on stdout, nothing else beside it (progress and messages go to stderr). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export interface Progress {
  update(value: number, fields?: Record<string, string | number>, total?: number): void;
  stop(): void;
}

/**
 * A progress bar on a terminal; otherwise (logs, pipes, CI) one plain line every few
 * seconds and one at the end, so progress is visible either way. Writes to stderr.
 */
export function progress(
  label: string,
  format: string,
  opts: { total?: number; everyMs?: number; stream?: NodeJS.WriteStream } = {},
): Progress {
  const stream = opts.stream ?? process.stderr;
  const fill = (fields: Record<string, string | number>) => progressFields(format, fields);
  let state = { value: 0, total: opts.total ?? 0, fields: {} as Record<string, string | number> };
  if (stream.isTTY) {
    const bar = new SingleBar(
      {
        // The same text as the plain lines (no empty fields), behind the bar.
        format: (options, params, payload: Record<string, string | number>) => {
          const size = options.barsize ?? 40;
          const done = Math.round(Math.min(Math.max(params.progress, 0), 1) * size);
          const bar = `${(options.barCompleteChar ?? '=').repeat(done)}${(options.barIncompleteChar ?? '-').repeat(size - done)}`;
          return `${label} [${bar}] ${params.value}/${params.total} ${fill(payload)}`.trimEnd();
        },
        hideCursor: true,
        stream,
      },
      Presets.shades_classic,
    );
    bar.start(state.total, 0, {});
    return {
      update(value, fields = {}, total) {
        if (total !== undefined) bar.setTotal(total);
        bar.update(value, fields);
      },
      stop: () => bar.stop(),
    };
  }
  const line = () =>
    stream.write(
      `${label}: ${state.value}${state.total ? `/${state.total}` : ''} ${fill(state.fields)}`.trimEnd() + '\n',
    );
  const timer = setInterval(line, opts.everyMs ?? 5000);
  timer.unref();
  return {
    update(value, fields = {}, total) {
      state = { value, total: total ?? state.total, fields: { ...state.fields, ...fields } };
    },
    stop() {
      clearInterval(timer);
      line();
    },
  };
}

/**
 * A progress format filled in: `|`-separated parts (and `,`-separated pieces of them) whose
 * fields are all unknown or empty are left out, and empty fields leave no doubled spaces, so a line never reads `0 |  started` or
 * `folder   |`. The first part belongs to the count (`read`, `new messages`).
 */
export function progressFields(format: string, fields: Record<string, string | number | undefined>): string {
  const filled = (piece: string) => {
    const names = [...piece.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const known = names.filter((n) => fields[n] !== undefined && String(fields[n]).trim() !== '');
    if (names.length > 0 && known.length === 0) return '';
    return piece
      .replace(/\{(\w+)\}/g, (_, k: string) => String(fields[k] ?? '').trim())
      .replace(/\s+/g, ' ')
      .trim();
  };
  // `a | b, c`: each `|` part, and each `,` piece of one, stands or goes on its own fields.
  const parts = format.split('|').map((part) => part.split(',').map(filled).filter(Boolean).join(', '));
  const [first, ...rest] = parts;
  return [first, ...rest.filter(Boolean).map((p) => `| ${p}`)].filter(Boolean).join(' ');
}
