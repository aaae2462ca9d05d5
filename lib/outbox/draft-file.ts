// A draft written to a file instead of options: an .eml (a message saved from a mail program:
// its To, Cc, Bcc, Subject, text and HTML bodies and attachments are taken, its From, Date and
// Message-ID are not: the account sends it, and the outbox gives it its own id) or a .json
// object with the same fields a front end sends (DraftFile below; attachment paths relative to
// the file). What comes out is checked like any other draft (lib/outbox/commands.ts createDraft);
// an .eml's attachments are bytes, written under the attachment directory when the draft is made.
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { simpleParser, type AddressObject } from 'mailparser';
import { z } from 'zod';
import type { AttachmentInput, DraftRequest } from './commands';
import { OutboxInputError } from './send-time';

const list = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));

/** The .json form: every field optional except that some recipient must be there (checked later). */
export const DRAFT_FILE_SCHEMA = z
  .object({
    to: list.optional(),
    cc: list.optional(),
    bcc: list.optional(),
    subject: z.string().optional(),
    text: z.string().optional(),
    html: z.string().optional(),
    attachments: z
      .array(
        z.union([
          z.string().transform((path) => ({ path })),
          z.object({
            path: z.string().min(1),
            filename: z.string().min(1).optional(),
            contentType: z.string().optional(),
          }),
        ]),
      )
      .optional(),
  })
  .strict();

export type DraftFile = z.input<typeof DRAFT_FILE_SCHEMA>;

/** The header's addresses as one string each, for the recipient parser (which checks them). */
function addressTexts(value: AddressObject | AddressObject[] | undefined): string[] {
  if (!value) return [];
  return (Array.isArray(value) ? value : [value]).map((a) => a.text).filter(Boolean);
}

/** Reads a draft from an .eml or .json file. */
export async function readDraftFile(path: string): Promise<DraftRequest> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new OutboxInputError(`cannot read the draft file ${path}: ${(err as Error).message}`);
  }
  const kind = extname(path).toLowerCase();
  if (kind === '.json') return draftFromJson(bytes.toString('utf8'), dirname(resolve(path)), path);
  if (kind === '.eml') return draftFromEml(bytes);
  throw new OutboxInputError(`${path}: a draft file is an .eml message or a .json object (see docs/sending.md)`);
}

export function draftFromJson(text: string, baseDir: string, where = 'the draft'): DraftRequest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new OutboxInputError(`${where} is not JSON: ${(err as Error).message}`);
  }
  const parsed = DRAFT_FILE_SCHEMA.safeParse(data);
  if (!parsed.success)
    throw new OutboxInputError(
      `${where}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'the object'}: ${i.message}`).join('; ')}`,
    );
  const d = parsed.data;
  return {
    to: d.to ?? [],
    cc: d.cc ?? [],
    bcc: d.bcc ?? [],
    ...(d.subject !== undefined ? { subject: d.subject } : {}),
    ...(d.text !== undefined ? { text: d.text } : {}),
    ...(d.html !== undefined ? { html: d.html } : {}),
    attachments: (d.attachments ?? []).map((a): AttachmentInput => ({ ...a, path: resolve(baseDir, a.path) })),
  };
}

export async function draftFromEml(raw: Buffer): Promise<DraftRequest> {
  const mail = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true });
  return {
    to: addressTexts(mail.to),
    cc: addressTexts(mail.cc),
    bcc: addressTexts(mail.bcc),
    ...(mail.subject !== undefined ? { subject: mail.subject } : {}),
    ...(mail.text !== undefined ? { text: mail.text } : {}),
    ...(typeof mail.html === 'string' ? { html: mail.html } : {}),
    attachments: mail.attachments.map((a, i): AttachmentInput => ({
      filename: a.filename ?? `attachment-${i + 1}`,
      contentType: a.contentType,
      content: a.content,
    })),
  };
}
