// The benchmarks' command lines: `--help` prints the bench's own header comment (what it
// measures and its options), and an unknown or malformed option is a one-line usage error
// (exit 2) instead of a stack trace.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The comment lines a file starts with, without their `//`. */
export function headerComment(source: string): string {
  const lines: string[] = [];
  for (const line of source.split('\n')) {
    if (!line.startsWith('//')) break;
    lines.push(line.replace(/^\/\/ ?/, ''));
  }
  return lines.join('\n');
}

/** parseArgs for a bench (`file`: its __filename); exits after --help or a usage error. */
export function benchArgs<O extends Options>(file: string, options: O): ReturnType<typeof parseArgs<{ options: O }>> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(headerComment(readFileSync(file, 'utf8')));
    process.exit(0);
  }
  try {
    return parseArgs({ options });
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS')) throw err;
    console.error(`${(err as Error).message}\n(--help lists the options)`);
    process.exit(2);
  }
}
