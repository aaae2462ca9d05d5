// The README's operator commands, as test/integration/readme.test.ts runs them. A table is an
// operator table when the line before it is a `<!-- operator-commands ... -->` comment; its
// "command" column holds the commands in code spans (`npm run ...`, possibly behind VAR=value
// assignments). Prose elsewhere is not parsed: the marked tables are the one list.
//
// Documented syntax: `[...]` is optional, `a | b` inside brackets are alternatives (written
// `\|` in the table), UPPERCASE words such as KEY are placeholders the test fills in.

export const MARKER = '<!-- operator-commands';

export interface OperatorCommand {
  /** The heading the table is under. */
  section: string;
  action: string;
  /** As documented (escapes removed). */
  command: string;
}

/** Splits a table row on the `|` that are not escaped (`\|` belongs to a cell). */
function cells(row: string): string[] {
  const inner = row
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '');
  return inner.split(/(?<!\\)\|/).map((c) => c.trim());
}

export function operatorCommands(readme: string): OperatorCommand[] {
  const lines = readme.split('\n');
  const out: OperatorCommand[] = [];
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const heading = /^#+\s+(.*)$/.exec(lines[i]);
    if (heading) section = heading[1].trim();
    if (!lines[i].trim().startsWith(MARKER)) continue;
    const table: string[] = [];
    for (let j = i + 1; j < lines.length && lines[j].trim().startsWith('|'); j++) table.push(lines[j]);
    if (table.length < 3)
      throw new Error(`README line ${i + 1}: ${MARKER} is not followed by a table with a header, a separator and rows`);
    const header = cells(table[0]).map((h) => h.toLowerCase());
    const col = header.indexOf('command');
    const actionCol = header.indexOf('action');
    if (col < 0)
      throw new Error(`README line ${i + 2}: the operator table has no "command" column (${header.join(', ')})`);
    for (const [n, row] of table.slice(2).entries()) {
      const c = cells(row);
      const spans = [...(c[col] ?? '').matchAll(/`([^`]+)`/g)]
        .map((m) => m[1].replaceAll('\\|', '|').trim())
        .filter((s) => /(^|\s)npm run\s/.test(s));
      if (spans.length === 0)
        throw new Error(`README line ${i + 3 + n}: an operator table row without an \`npm run ...\` command: ${row}`);
      for (const command of spans) out.push({ section, action: c[actionCol] ?? '', command });
    }
  }
  return out;
}

/** The npm script a command runs, and whether npm runs with -s. */
export function npmScript(command: string): { script: string; silent: boolean } {
  const m = /(?:^|\s)npm run((?:\s+-(?:s|-silent))?)\s+([\w:.-]+)/.exec(command);
  if (!m) throw new Error(`not an npm run command: ${command}`);
  return { script: m[2], silent: m[1].trim() !== '' };
}

/**
 * The concrete command lines to run for a documented one: without any optional part, with every
 * optional part (first alternative each), and once more for each other alternative.
 */
export function variants(command: string): string[] {
  const groups = [...command.matchAll(/\s*\[([^\]]+)\]/g)];
  const strip = (s: string) => s.replace(/\s+/g, ' ').trim();
  if (groups.length === 0) return [strip(command)];
  const alternatives = groups.map((g) => {
    const alts = g[1].split(/\s+\|\s+/).map((a) => a.trim());
    // `[-- --build-id B1 | --unversioned]`: the `--` that ends npm's own options belongs to each.
    const lead = /^--\s+(?=-)/.exec(alts[0])?.[0] ?? '';
    return alts.map((a, k) => (k > 0 && lead && !a.startsWith('-- ') ? `${lead}${a}` : a));
  });
  const build = (pick: (gi: number) => string | undefined) => {
    let i = 0;
    return strip(
      command.replace(/\s*\[([^\]]+)\]/g, () => {
        const choice = pick(i++);
        return choice ? ` ${choice}` : '';
      }),
    );
  };
  const out = [build(() => undefined), build((gi) => alternatives[gi][0])];
  alternatives.forEach((alts, gi) =>
    alts.slice(1).forEach((alt) => out.push(build((g) => (g === gi ? alt : undefined)))),
  );
  return [...new Set(out)];
}

/** The long options a command line passes to its script (after `--`). */
export function longOptions(command: string): string[] {
  const after = command
    .split(/\s--\s/)
    .slice(1)
    .join(' -- ');
  return [...new Set([...after.matchAll(/(?:^|\s)--([a-z][\w-]*)/g)].map((m) => m[1]))];
}
