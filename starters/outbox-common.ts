// What the outbox starters share (not a command itself): the database and the outbox functions'
// dependencies (lib/outbox/commands.ts), the owner looked up by address, the draft options
// (mail:draft, and mail:send when it drafts and sends in one go) turned into a draft request,
// one line per message, and the outbox's errors as exit codes: what the user gave wrong is a
// usage error (2, nothing queued), a message past the point an action needs is a failure (1).
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { loadSendConfig, type SendConfig } from '../lib/config/send';
import { UsageError, type OptionValues } from '../lib/cli';
import { printable } from '../lib/cli/printable';
import { createOutboxStore, OutboxValidationError, type OutboxMessage } from '../lib/outbox';
import { OutboxInputError, type DraftRequest, type OutboxCommandDeps } from '../lib/outbox/commands';
import { readDraftFile } from '../lib/outbox/draft-file';
import { parseSendTime } from '../lib/outbox/send-time';
import { connectClient } from '../lib/temporal';
import { openAccountDb, type AccountDb } from './account-common';

export interface OutboxDb {
  db: AccountDb;
  config: SendConfig;
  deps: OutboxCommandDeps;
  /** The owner's user id, or an error naming the command that adds one. */
  userId(email: string): Promise<string>;
  close(): Promise<void>;
}

/** Where uploaded attachments (an .eml's) go when SEND_ATTACHMENT_DIR is unset: the project's state directory. */
export const DEFAULT_UPLOAD_DIR = join('.local', 'outbox-attachments');

/** The database, and with `temporal` a client that may start workflows (--plaintext as the other starters). */
export async function openOutbox(opts: { temporal?: boolean; plaintext?: boolean } = {}): Promise<OutboxDb> {
  const config = loadSendConfig();
  const db = openAccountDb();
  let client: Client | undefined;
  try {
    if (opts.temporal) client = await connectClient({ plaintext: opts.plaintext });
  } catch (err) {
    await db.close();
    throw err;
  }
  const store = createOutboxStore(db.pool, {
    maxAttachmentBytes: config.maxAttachmentBytes,
    maxRecipients: config.maxRecipients,
  });
  return {
    db,
    config,
    deps: {
      store,
      client,
      taskQueue: config.taskQueue,
      maxAttachmentBytes: config.maxAttachmentBytes,
      maxRecipients: config.maxRecipients,
      attachmentDir: config.attachmentDir,
      defaultUploadDir: resolve(DEFAULT_UPLOAD_DIR),
    },
    async userId(email: string) {
      const user = await db.store.findUserByEmail(email);
      if (!user)
        throw new Error(`No mailroom user ${email} in ${db.where}; add an account for it with npm run account:add`);
      return user.id;
    },
    async close() {
      try {
        await client?.connection.close();
      } finally {
        await db.close();
      }
    },
  };
}

/** What the user gave wrong as a usage error (exit 2: nothing was queued); everything else as it is. */
export async function asUsage<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OutboxValidationError || err instanceof OutboxInputError) throw new UsageError(err.message);
    throw err;
  }
}

/** --at: an ISO 8601 time with its zone or a delay (+10m); a usage error otherwise. */
export function atOption(value: string, now = new Date()): Date {
  try {
    return parseSendTime(value, now);
  } catch (err) {
    if (err instanceof OutboxInputError) throw new UsageError(`--at ${err.message}`);
    throw err;
  }
}

/** The outbox id option: a UUID, checked before anything connects. */
export function outboxIdOption(value: string): string {
  const v = value.trim().toLowerCase();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v))
    throw new UsageError(`--id ${value} is not an outbox id (a UUID, as mail:draft and outbox:list print it)`);
  return v;
}

/** The options that make a draft (mail:draft; mail:send without --id). */
export const DRAFT_OPTIONS = {
  to: {
    type: 'string',
    value: '<addresses>',
    description: "recipients: 'Ann <ann@example.com>, bob@example.org' (comma-separated)",
    multiple: true,
  },
  cc: { type: 'string', value: '<addresses>', description: 'copy recipients', multiple: true },
  bcc: {
    type: 'string',
    value: '<addresses>',
    description: 'blind copy recipients (not in the header they get)',
    multiple: true,
  },
  subject: { type: 'string', value: '<text>', description: 'the subject (one line)' },
  text: { type: 'string', value: '<text>', description: 'the plain-text body' },
  'text-file': { type: 'string', value: '<file|->', description: 'the plain-text body from a file (- for stdin)' },
  'html-file': {
    type: 'string',
    value: '<file>',
    description: 'an HTML body from a file (with --text: both, as alternatives)',
  },
  attach: { type: 'string', value: '<file>', description: 'attach a file', multiple: true },
  'from-file': {
    type: 'string',
    value: '<draft.eml|draft.json>',
    description: 'the whole draft from a saved message (.eml) or a JSON object (docs/sending.md#draft-files)',
  },
  'from-name': { type: 'string', value: '<name>', description: 'the display name in From (default: none)' },
} as const;

type DraftValues = OptionValues<typeof DRAFT_OPTIONS>;

/** Whether any draft option was given (mail:send: draft and send in one go). */
export function hasDraftOptions(v: DraftValues): boolean {
  return (
    v.to.length + v.cc.length + v.bcc.length + v.attach.length > 0 ||
    [v.subject, v.text, v['text-file'], v['html-file'], v['from-file'], v['from-name']].some((x) => x !== undefined)
  );
}

/** Which draft options go together: usage errors before anything is read or connected. */
export function checkDraftOptions(v: DraftValues): void {
  if (v.text !== undefined && v['text-file'] !== undefined)
    throw new UsageError('give --text or --text-file, not both');
  if (v['from-file'] !== undefined) {
    const extra: string[] = (['to', 'cc', 'bcc', 'attach'] as const).filter((o) => v[o].length > 0);
    extra.push(...(['subject', 'text', 'text-file', 'html-file'] as const).filter((o) => v[o] !== undefined));
    if (extra.length)
      throw new UsageError(
        `--from-file holds the whole draft: leave out ${extra.map((o) => `--${o}`).join(', ')} (or edit the file)`,
      );
  } else if (v.to.length + v.cc.length + v.bcc.length === 0) {
    throw new UsageError('no recipient: give --to (or --cc, --bcc), or --from-file');
  }
}

async function readBody(option: string, path: string, stdin: () => Promise<string>): Promise<string> {
  if (path === '-') return stdin();
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--${option} ${path}: ${(err as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The draft request the options describe (files read; their checks come in createDraft). */
export async function draftFromOptions(
  v: DraftValues,
  stdin: () => Promise<string> = readStdin,
): Promise<DraftRequest> {
  checkDraftOptions(v);
  const fromName = v['from-name'] !== undefined ? { fromName: v['from-name'] } : {};
  if (v['from-file'] !== undefined) return { ...(await asUsage(() => readDraftFile(v['from-file']!))), ...fromName };
  return {
    to: v.to,
    cc: v.cc,
    bcc: v.bcc,
    ...(v.subject !== undefined ? { subject: v.subject } : {}),
    ...(v.text !== undefined ? { text: v.text } : {}),
    ...(v['text-file'] !== undefined ? { text: await readBody('text-file', v['text-file'], stdin) } : {}),
    ...(v['html-file'] !== undefined ? { html: await readBody('html-file', v['html-file'], stdin) } : {}),
    // Relative to where the command runs; the worker gets the absolute path.
    attachments: v.attach.map((p) => ({ path: resolve(p) })),
    ...fromName,
  };
}

/** The recipients in one cell: the first one and how many more. */
function recipientsCell(m: OutboxMessage): string {
  const all = [...m.to, ...m.cc, ...m.bcc];
  if (!all.length) return '-';
  return `${all[0].address}${all.length > 1 ? ` +${all.length - 1}` : ''}`;
}

function when(m: OutboxMessage): string {
  const d =
    m.status === 'sent' || m.status === 'partial' ? (m.submittedAt ?? m.finishedAt) : (m.finishedAt ?? m.sendAt);
  return d ? d.toISOString().slice(0, 19).replace('T', ' ') : '-';
}

export const OUTBOX_HEADER = [
  'id'.padEnd(36),
  'status'.padEnd(9),
  'when (UTC)'.padEnd(19),
  'to'.padEnd(32),
  'subject',
].join('  ');

/** One message as a table row; what came from users (addresses, subjects) made printable. */
export function outboxRow(m: OutboxMessage): string {
  return [
    m.id,
    m.status.padEnd(9),
    when(m).padEnd(19),
    printable(recipientsCell(m), 32).padEnd(32),
    printable(m.subject || '(no subject)', 60),
  ].join('  ');
}

/** A message for --json: the row without bodies (they may be long; outbox:list is an overview). */
export function outboxJson(m: OutboxMessage) {
  const { text, html, ...rest } = m;
  return { ...rest, hasText: text !== null, hasHtml: html !== null };
}
