// Pure limits of sending: the attachment size cap and the per-account send rate. Plain
// functions, so the store and the activities decide the same way and unit tests cover them.
import type { AttachmentRef } from './types';

/** Problems with a message's attachments (each names the file and the limit); empty when fine. */
export function attachmentProblems(attachments: readonly AttachmentRef[], maxBytes: number): string[] {
  const problems: string[] = [];
  for (const a of attachments) {
    const name = typeof a?.filename === 'string' && a.filename ? a.filename : '(no filename)';
    if (!a || typeof a.filename !== 'string' || !a.filename) problems.push('an attachment has no filename');
    if (typeof a?.contentType !== 'string' || !/^[\w.+-]+\/[\w.+-]+$/.test(a.contentType))
      problems.push(`attachment ${name}: content type "${String(a?.contentType)}" is not type/subtype`);
    if (!Number.isSafeInteger(a?.size) || a.size < 0)
      problems.push(`attachment ${name}: size ${String(a?.size)} is not a byte count`);
    else if (a.size > maxBytes) problems.push(oversize(name, a.size, maxBytes));
    const byPath = typeof a?.path === 'string' && a.path.length > 0;
    const byS3 = typeof a?.s3Bucket === 'string' && a.s3Bucket.length > 0 && typeof a?.s3Key === 'string' && !!a.s3Key;
    if (byPath === byS3) problems.push(`attachment ${name}: give either a local path or an S3 bucket and key`);
  }
  return problems;
}

export function oversize(filename: string, size: number, maxBytes: number): string {
  return `attachment ${filename} is ${formatBytes(size)}, over the limit of ${formatBytes(maxBytes)} per file (SEND_MAX_ATTACHMENT_BYTES)`;
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB (${n} bytes)`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB (${n} bytes)`;
  return `${n} bytes`;
}

/**
 * How long to wait before the next submission from an account that submitted at `recent`
 * (epoch ms, any order) may start, with at most `perWindow` submissions in any `windowMs`:
 * 0 when one may start now, else the time until the oldest one in the window leaves it.
 */
export function rateLimitWait(recent: readonly number[], now: number, perWindow: number, windowMs = 60_000): number {
  if (perWindow <= 0) return 0;
  const inWindow = recent.filter((t) => t > now - windowMs && t <= now).sort((a, b) => a - b);
  if (inWindow.length < perWindow) return 0;
  // The (n - perWindow + 1)-th oldest must leave the window before one more fits.
  const leaving = inWindow[inWindow.length - perWindow];
  return Math.max(1, leaving + windowMs - now);
}
