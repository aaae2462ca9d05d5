// The shared real-world corpus (../shared/corpus beside the clone, as in CI). Tests
// read it in place; MAILROOM_CORPUS points elsewhere if needed.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const CORPUS = resolve(process.env.MAILROOM_CORPUS ?? join(__dirname, '..', '..', '..', 'shared', 'corpus'));

export function corpusFiles(sub = ''): { name: string; path: string }[] {
  const dir = join(CORPUS, sub);
  if (!existsSync(dir)) throw new Error(`corpus not found at ${dir}: clone next to shared/ or set MAILROOM_CORPUS`);
  const out: { name: string; path: string }[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(msg|eml)$/.test(f)) out.push({ name: relative(CORPUS, p), path: p });
    }
  };
  walk(dir);
  return out;
}
