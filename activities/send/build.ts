// Builds the MIME message of an outbox row once (nodemailer's MailComposer, with the Message-ID
// fixed when the draft was made) and stores it in the row, so every submission attempt and the
// Sent copy use the same message whatever worker runs them. Attachments are read here, from
// their local path or S3 object, and checked against the size cap by their real size.
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import MailComposer from 'nodemailer/lib/mail-composer';
import { SEND_ERRORS } from '../../contracts/send';
import { isNotFound } from '../../lib/aws/s3';
import { oversize, type AttachmentRef, type OutboxMessage, type OutboxStore } from '../../lib/outbox';
import { missing } from './state';
import type { BuildResult, SendActivityDeps, SendRef } from './types';

function notSendable(ref: SendRef, why: string): never {
  throw ApplicationFailure.nonRetryable(
    `Outbox message ${ref.outboxId} (account ${ref.accountId}) cannot be sent: ${why}`,
    SEND_ERRORS.NotSendable,
  );
}

async function readAttachment(
  ref: SendRef,
  a: AttachmentRef,
  deps: Pick<SendActivityDeps, 's3' | 'config'>,
): Promise<Buffer> {
  const cap = deps.config.maxAttachmentBytes;
  if (a.path !== undefined) {
    const root = deps.config.attachmentDir;
    const full = root ? resolve(root, a.path) : a.path;
    if (!isAbsolute(full)) notSendable(ref, `attachment ${a.filename}: the path must be absolute`);
    if (root && relative(resolve(root), full).startsWith('..'))
      notSendable(ref, `attachment ${a.filename}: its path is outside SEND_ATTACHMENT_DIR (${root})`);
    let size: number;
    try {
      size = (await stat(full)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        notSendable(ref, `attachment ${a.filename}: the file ${a.path} no longer exists; attach it again`);
      throw err;
    }
    if (size > cap) notSendable(ref, oversize(a.filename, size, cap));
    return readFile(full);
  }
  if (!deps.s3) notSendable(ref, `attachment ${a.filename} is in S3 but this worker has no S3 client`);
  let body: Buffer;
  try {
    const out = await (deps.s3 as S3Client).send(new GetObjectCommand({ Bucket: a.s3Bucket, Key: a.s3Key }));
    if ((out.ContentLength ?? 0) > cap) notSendable(ref, oversize(a.filename, out.ContentLength!, cap));
    body = Buffer.from(await out.Body!.transformToByteArray());
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    if (isNotFound(err))
      notSendable(ref, `attachment ${a.filename}: s3://${a.s3Bucket}/${a.s3Key} no longer exists; attach it again`);
    throw err;
  }
  if (body.length > cap) notSendable(ref, oversize(a.filename, body.length, cap));
  return body;
}

function compose(m: OutboxMessage, attachments: Buffer[], date: Date, keepBcc: boolean): Promise<Buffer> {
  const node = new MailComposer({
    from: m.from,
    to: m.to,
    cc: m.cc,
    bcc: m.bcc,
    subject: m.subject,
    text: m.text ?? undefined,
    html: m.html ?? undefined,
    messageId: m.messageId,
    date,
    attachments: m.attachments.map((a, i) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: attachments[i],
    })),
    // Everything is given as content: nothing in a message may make the worker read a file or URL.
    disableFileAccess: true,
    disableUrlAccess: true,
  }).compile();
  // The Sent copy keeps Bcc, so the sender sees who got it; the submitted message does not.
  (node as unknown as { keepBcc: boolean }).keepBcc = keepBcc;
  return node.build();
}

export function createBuildActivities(deps: Pick<SendActivityDeps, 's3' | 'config'> & { outbox: OutboxStore }) {
  return {
    /** Builds and stores the message unless it is built already; returns its size. */
    async buildMessage(ref: SendRef): Promise<BuildResult> {
      const m = await deps.outbox.get(ref.userId, ref.outboxId);
      if (!m || m.accountId !== ref.accountId) missing(ref);
      const stored = m.built ? await deps.outbox.getRaw(ref.userId, ref.outboxId) : null;
      if (stored) return { bytes: stored.raw.length, attachments: m.attachments.length };
      const files: Buffer[] = [];
      for (const a of m.attachments) files.push(await readAttachment(ref, a, deps));
      const date = m.sendAt && m.sendAt.getTime() <= Date.now() ? m.sendAt : new Date();
      const raw = await compose(m, files, date, false);
      const rawSent = m.bcc.length ? await compose(m, files, date, true) : null;
      const kept = await deps.outbox.storeRaw(ref.userId, ref.outboxId, raw, rawSent);
      if (!kept) missing(ref);
      return { bytes: kept.raw.length, attachments: m.attachments.length };
    },
  };
}
