// Rewrites a message's line endings, for the tests that check every decision is the same
// whatever the sender's system wrote: CRLF (RFC 5322), LF (Unix), CR only (old Mac
// software) and a deterministic mix of all three.
export type LineEnding = 'crlf' | 'lf' | 'cr' | 'mixed';
export const LINE_ENDINGS: LineEnding[] = ['crlf', 'lf', 'cr', 'mixed'];

const BREAK = { crlf: '\r\n', lf: '\n', cr: '\r' } as const;

export function withLineEndings(raw: Buffer, style: LineEnding, seed = 1): Buffer {
  const text = raw.toString('latin1');
  const lines = text.split(/\r\n|\r|\n/);
  if (style !== 'mixed') return Buffer.from(lines.join(BREAK[style]), 'latin1');
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  // breaks[i] ends lines[i]. A bare CR ending one line followed by the LF ending an empty
  // line reads as one CRLF (two line breaks merged into one); no reader can tell those
  // apart, so the mix avoids that pair.
  const breaks: string[] = [];
  for (let i = 0; i < lines.length - 1; i++) {
    const emptyNext = lines[i + 1] === '' && i + 1 < lines.length - 1;
    let nl = ['\r\n', '\n', '\r'][Math.floor(next() * 3)];
    if (i > 0 && breaks[i - 1] === '\r' && lines[i] === '' && nl === '\n') nl = '\r\n';
    if (nl === '\r' && emptyNext) nl = '\r\n';
    breaks.push(nl);
  }
  let out = '';
  for (let i = 0; i < lines.length; i++) out += lines[i] + (breaks[i] ?? '');
  return Buffer.from(out, 'latin1');
}
