// The demo's env file (<state>/env): the settings that point mailroom's commands at the
// running local stack, as `export` lines a shell can `source`. Secrets (codec keys, token)
// are in it, so it is written for the owner only.
import { chmodSync, writeFileSync } from 'node:fs';

export interface EnvSection {
  /** One comment line above the section. */
  comment: string;
  vars: Record<string, string | number | undefined>;
}

/** POSIX single quotes: safe for any value (base64 keys, URLs, spaces). */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@,+=-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

export function envFileText(header: string[], sections: EnvSection[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const s of sections) {
    lines.push('', `# ${s.comment}`);
    for (const [name, value] of Object.entries(s.vars))
      if (value !== undefined) lines.push(`export ${name}=${shellQuote(String(value))}`);
  }
  return `${lines.join('\n')}\n`;
}

export function writeEnvFile(file: string, header: string[], sections: EnvSection[]): void {
  writeFileSync(file, envFileText(header, sections), { mode: 0o600 });
  chmodSync(file, 0o600); // also when an older file had wider permissions
}
