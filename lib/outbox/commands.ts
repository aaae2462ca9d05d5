// What a front end calls to send mail from a user's account: the starters (mail:draft,
// mail:send, outbox:list, outbox:cancel, outbox:reschedule) are thin command lines over these,
// and a web front end calls the same functions with the signed-in user's id. Every function
// takes that user id; the store matches nothing of another user's (lib/outbox/store.ts).
//
//   createDraft   checks recipients (lib/mail/send-recipients.ts, the inbound parser), the
//                 attachments (they exist, are files, fit the cap), stores the draft
//   sendDraft     draft -> scheduled, then starts its sendMessage workflow under the message's
//                 own id with REJECT_DUPLICATE: a second call, a retry after a crash between the
//                 two steps, or a double click starts nothing new
//   cancelSend    undo: the database decides (a conditional UPDATE, which a send that already
//                 began wins), then the workflow is told to stop waiting
//   rescheduleSend  moves the time of a scheduled message, in the database and in its workflow
//   listOutbox / getOutboxMessage
//
// Errors: OutboxInputError and OutboxValidationError for what the user gave (a 400, exit 2),
// OutboxNotFoundError (404), OutboxStateError when the message is past the point the action
// needs (409: cancel after sending began), anything else is a server-side failure.
import { randomUUID } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { detectMimeType } from 'nodemailer/lib/mime-funcs';
import {
  cancelSendSignal,
  rescheduleSendSignal,
  SEND_WORKFLOW_TYPE,
  sendWorkflowId,
  type SendMessageInput,
  type SendOptions,
  type SendResult,
} from '../../contracts/send';
import { ACCOUNT_ID, SEND_STATUS } from '../../contracts/search-attributes';
import { validateRecipients } from '../mail/send-recipients';
import { attachmentProblems } from './limits';
import type { OutboxStore } from './store';
import {
  OutboxValidationError,
  type AttachmentRef,
  type DraftContent,
  type OutboxListFilter,
  type OutboxMessage,
  type OutboxStatus,
} from './types';
import { OutboxInputError } from './send-time';

export { OutboxInputError };

/** No such message for this user (or no such user): a 404 for a web front end. */
export class OutboxNotFoundError extends Error {
  override name = 'OutboxNotFoundError';
}

/** The message is past the point the action needs (cancel once sending began): a 409. */
export class OutboxStateError extends Error {
  override name = 'OutboxStateError';
  constructor(
    message: string,
    readonly status: OutboxStatus,
  ) {
    super(message);
  }
}

export interface OutboxCommandDeps {
  store: OutboxStore;
  /** Needed by sendDraft, cancelSend and rescheduleSend (a client that may start workflows: lib/temporal connectClient). */
  client?: Client;
  /** The sending worker's task queue (SEND_TASK_QUEUE). */
  taskQueue: string;
  /** Largest attachment per file (SEND_MAX_ATTACHMENT_BYTES). */
  maxAttachmentBytes: number;
  /** Most recipients per message (SEND_MAX_RECIPIENTS). */
  maxRecipients: number;
  /** Attachments by path must be inside it when set (SEND_ATTACHMENT_DIR); uploaded bytes are written under it. */
  attachmentDir: string | null;
  /** Where uploaded bytes go when attachmentDir is unset. */
  defaultUploadDir: string;
  /** The workflow's retry settings; undefined: the contract's defaults. */
  sendOptions?: SendOptions;
  now?: () => Date;
}

/** An attachment as a front end gives it: a file on this machine, bytes it received, or an object in S3. */
export type AttachmentInput =
  | { path: string; filename?: string; contentType?: string }
  | { content: Buffer; filename: string; contentType?: string }
  | { s3Bucket: string; s3Key: string; size: number; filename: string; contentType?: string };

/** A draft as a front end sends it. */
export interface DraftRequest extends Omit<DraftContent, 'attachments'> {
  attachments?: readonly AttachmentInput[];
}

/** Most attachments per message. */
export const MAX_ATTACHMENTS = 50;

function contentTypeOf(filename: string, given: string | undefined): string {
  return given?.trim() || detectMimeType(filename) || 'application/octet-stream';
}

/** A filename safe to create in a directory: no path, no control characters, never empty. */
export function safeFilename(name: string): string {
  // eslint-disable-next-line no-control-regex
  const base = basename(name.replace(/\\/g, '/')).replace(/[\u0000-\u001f\u007f/]/g, '_');
  return base && base !== '.' && base !== '..' ? base.slice(0, 200) : 'attachment';
}

/** The pure checks of a draft request that need no file: recipients, subject, something to send. */
export function draftRequestProblems(d: DraftRequest, maxRecipients: number): string[] {
  const problems: string[] = [];
  const recipients = validateRecipients({ to: d.to, cc: d.cc, bcc: d.bcc }, { maxRecipients });
  if (!recipients.ok) problems.push(...recipients.problems);
  // A line break in the subject would start a header line of the sender's choosing.
  if (d.subject !== undefined && /[\r\n]/.test(d.subject)) problems.push('subject: contains a line break');
  const attachments = d.attachments ?? [];
  if (attachments.length > MAX_ATTACHMENTS)
    problems.push(`${attachments.length} attachments, more than ${MAX_ATTACHMENTS} per message`);
  if (!d.subject?.trim() && !d.text?.trim() && !d.html?.trim() && attachments.length === 0)
    problems.push('the message is empty: give a subject, a text or HTML body, or an attachment');
  return problems;
}

/**
 * Attachments by path: absolute, an existing regular file, inside attachmentDir when one is
 * set, within the cap. Returns the references, or every problem.
 */
async function pathAttachments(
  deps: OutboxCommandDeps,
  inputs: readonly Extract<AttachmentInput, { path: string }>[],
): Promise<{ refs: AttachmentRef[]; problems: string[] }> {
  const refs: AttachmentRef[] = [];
  const problems: string[] = [];
  for (const a of inputs) {
    // The worker reads the file later, from its own working directory: only an absolute path means the same file.
    if (!isAbsolute(a.path)) {
      problems.push(`attachment ${a.path}: give an absolute path`);
      continue;
    }
    const path = resolve(a.path);
    if (deps.attachmentDir) {
      const rel = relative(resolve(deps.attachmentDir), path);
      if (rel.startsWith('..') || isAbsolute(rel)) {
        problems.push(
          `attachment ${path} is outside ${deps.attachmentDir} (SEND_ATTACHMENT_DIR): the sending worker reads attachments only from there`,
        );
        continue;
      }
    }
    let size: number;
    try {
      const s = await stat(path);
      if (!s.isFile()) {
        problems.push(`attachment ${path} is not a file`);
        continue;
      }
      size = s.size;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push(
        `attachment ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(err as Error).message}`}`,
      );
      continue;
    }
    const filename = safeFilename(a.filename ?? basename(path));
    refs.push({ filename, contentType: contentTypeOf(filename, a.contentType), size, path });
  }
  return { refs, problems };
}

/**
 * Creates a draft in one of the user's accounts. Everything is checked before anything is
 * stored: recipients, subject, attachments (each file exists and fits SEND_MAX_ATTACHMENT_BYTES);
 * uploaded bytes are then written under the attachment directory (removed again if the draft
 * is refused). Throws OutboxValidationError (or OutboxInputError) naming every problem.
 */
export async function createDraft(
  deps: OutboxCommandDeps,
  userId: string,
  accountId: string,
  draft: DraftRequest,
): Promise<OutboxMessage> {
  const problems = draftRequestProblems(draft, deps.maxRecipients);
  const inputs = draft.attachments ?? [];
  const byPath = inputs.filter((a): a is Extract<AttachmentInput, { path: string }> => 'path' in a);
  const uploads = inputs.filter((a): a is Extract<AttachmentInput, { content: Buffer }> => 'content' in a);
  const inS3 = inputs.filter((a): a is Extract<AttachmentInput, { s3Key: string }> => 's3Key' in a);
  const files = await pathAttachments(deps, byPath);
  problems.push(...files.problems);
  const s3Refs: AttachmentRef[] = inS3.map((a) => ({
    filename: safeFilename(a.filename),
    contentType: contentTypeOf(a.filename, a.contentType),
    size: a.size,
    s3Bucket: a.s3Bucket,
    s3Key: a.s3Key,
  }));
  // Uploads are checked by size before any is written.
  const uploadSizes = uploads.map((u) => ({
    filename: safeFilename(u.filename),
    contentType: contentTypeOf(u.filename, u.contentType),
    size: u.content.length,
    path: '/pending-upload',
  }));
  problems.push(...attachmentProblems([...files.refs, ...s3Refs, ...uploadSizes], deps.maxAttachmentBytes));
  if (problems.length) throw new OutboxValidationError(problems);

  let uploadDir: string | undefined;
  const uploadRefs: AttachmentRef[] = [];
  if (uploads.length) {
    uploadDir = join(resolve(deps.attachmentDir ?? deps.defaultUploadDir), randomUUID());
    await mkdir(uploadDir, { recursive: true, mode: 0o700 });
    for (const [i, u] of uploads.entries()) {
      // A directory per attachment: two files of the same name stay apart.
      const dir = join(uploadDir, String(i + 1));
      await mkdir(dir, { mode: 0o700 });
      const path = join(dir, uploadSizes[i].filename);
      await writeFile(path, u.content, { mode: 0o600, flag: 'wx' });
      uploadRefs.push({ ...uploadSizes[i], path });
    }
  }
  // Attachments in the order given.
  const refs = inputs.map((a) => {
    if ('path' in a) return files.refs.shift()!;
    if ('content' in a) return uploadRefs.shift()!;
    return s3Refs.shift()!;
  });
  try {
    return await deps.store.createDraft(userId, accountId, {
      ...draft,
      subject: draft.subject?.trim(),
      attachments: refs,
    });
  } catch (err) {
    if (uploadDir) await rm(uploadDir, { recursive: true, force: true });
    throw err;
  }
}

export interface SendOutcome {
  message: OutboxMessage;
  workflowId: string;
  /** False: it was scheduled (or sent) already, nothing new was started. */
  started: boolean;
}

function requireClient(deps: OutboxCommandDeps): Client {
  if (!deps.client) throw new Error('no Temporal client: pass one in the deps to send, cancel or reschedule');
  return deps.client;
}

async function getOwn(deps: OutboxCommandDeps, userId: string, outboxId: string): Promise<OutboxMessage> {
  const m = await deps.store.get(userId, outboxId);
  if (!m) throw new OutboxNotFoundError(`no message ${outboxId} in this user's outbox`);
  return m;
}

/** Starts the message's workflow, unless one with its id ever ran: then nothing (REJECT_DUPLICATE). */
async function startSendWorkflow(deps: OutboxCommandDeps, m: OutboxMessage): Promise<boolean> {
  const client = requireClient(deps);
  const input: SendMessageInput = {
    userId: m.userId,
    accountId: m.accountId,
    outboxId: m.id,
    ...(deps.sendOptions ? { options: deps.sendOptions } : {}),
  };
  try {
    await client.workflow.start<(input: SendMessageInput) => Promise<SendResult>>(SEND_WORKFLOW_TYPE, {
      taskQueue: deps.taskQueue,
      workflowId: sendWorkflowId(m.accountId, m.id),
      // One workflow per message, ever: a finished (even a cancelled) one is never run again.
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      args: [input],
      typedSearchAttributes: [
        { key: ACCOUNT_ID, value: m.accountId },
        { key: SEND_STATUS, value: 'scheduled' },
      ],
    });
    return true;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
    throw err;
  }
}

/**
 * Sends a draft now or at `at`: draft -> scheduled with the workflow id, then the workflow is
 * started. Safe to call again: a scheduled message whose workflow never started (the caller died
 * in between) gets it started, one already started or sent is left as it is (started: false).
 * A cancelled message is refused (OutboxStateError): it is never sent.
 */
export async function sendDraft(
  deps: OutboxCommandDeps,
  userId: string,
  outboxId: string,
  opts: { at?: Date } = {},
): Promise<SendOutcome> {
  const m = await getOwn(deps, userId, outboxId);
  const workflowId = sendWorkflowId(m.accountId, m.id);
  if (m.status === 'cancelled')
    throw new OutboxStateError(`message ${m.id} was cancelled; it is never sent (create a new draft)`, m.status);
  if (m.status !== 'draft') {
    // Scheduled: make sure its workflow runs (a crash may have come between the two steps).
    const started = m.status === 'scheduled' ? await startSendWorkflow(deps, m) : false;
    return { message: m, workflowId: m.workflowId ?? workflowId, started };
  }
  const smtp = await deps.store.getSmtpSettings(userId, m.accountId);
  if (!smtp?.host)
    throw new OutboxStateError(
      `account ${m.accountId} has no SMTP server to send through; set one first (npm run account:set -- --account ${m.accountId} --smtp-host <host> --smtp-port 587)`,
      m.status,
    );
  const now = deps.now?.() ?? new Date();
  const at = opts.at && opts.at.getTime() > now.getTime() ? opts.at : now;
  const scheduled = await deps.store.markScheduled(userId, m.id, at, workflowId);
  if (!scheduled) {
    // Someone else moved it in between (another send, a cancel): report what it is now.
    const current = await getOwn(deps, userId, outboxId);
    if (current.status === 'cancelled')
      throw new OutboxStateError(
        `message ${m.id} was cancelled; it is never sent (create a new draft)`,
        current.status,
      );
    const started = current.status === 'scheduled' ? await startSendWorkflow(deps, current) : false;
    return { message: current, workflowId, started };
  }
  const started = await startSendWorkflow(deps, scheduled);
  return { message: scheduled, workflowId, started };
}

function tooLate(m: OutboxMessage, what: string): OutboxStateError {
  const state =
    m.status === 'sending'
      ? 'is being sent already (its send time passed)'
      : m.status === 'draft'
        ? 'is a draft, not scheduled (send it first)'
        : `was ${m.status} already${m.finishedAt ? ` at ${m.finishedAt.toISOString()}` : ''}`;
  return new OutboxStateError(`cannot ${what} message ${m.id}: it ${state}`, m.status);
}

/** Tells the workflow; one that is gone (finished, or never started for a draft) needs nothing. */
async function tell(deps: OutboxCommandDeps, m: OutboxMessage, send: (id: string) => Promise<void>): Promise<void> {
  const workflowId = m.workflowId ?? sendWorkflowId(m.accountId, m.id);
  try {
    await send(workflowId);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
}

/**
 * Undo send. The database decides first (draft|scheduled -> cancelled in one conditional
 * UPDATE; the workflow's scheduled -> sending is the same kind of UPDATE, so exactly one of
 * them wins), then the workflow is signalled so it stops waiting. Too late (sending began,
 * or done): OutboxStateError, nothing changed. Cancelling a cancelled message is a no-op.
 */
export async function cancelSend(
  deps: OutboxCommandDeps,
  userId: string,
  outboxId: string,
  reason = 'cancelled by the user',
): Promise<OutboxMessage> {
  const m = await getOwn(deps, userId, outboxId);
  const cancelled = await deps.store.cancel(userId, m.id, reason);
  if (!cancelled) throw tooLate(await getOwn(deps, userId, outboxId), 'cancel');
  if (m.status === 'scheduled' || m.workflowId)
    await tell(deps, cancelled, (id) =>
      requireClient(deps).workflow.getHandle(id).signal(cancelSendSignal, { reason }),
    );
  return cancelled;
}

/**
 * Moves the send time of a scheduled message (a time in the past means now). The database
 * first (only a scheduled message moves), then the workflow's timer. Too late, or a draft:
 * OutboxStateError.
 */
export async function rescheduleSend(
  deps: OutboxCommandDeps,
  userId: string,
  outboxId: string,
  at: Date,
): Promise<OutboxMessage> {
  const m = await getOwn(deps, userId, outboxId);
  const now = deps.now?.() ?? new Date();
  const sendAt = at.getTime() > now.getTime() ? at : now;
  const moved = await deps.store.reschedule(userId, m.id, sendAt);
  if (!moved) throw tooLate(await getOwn(deps, userId, outboxId), 'reschedule');
  await tell(deps, moved, (id) =>
    requireClient(deps).workflow.getHandle(id).signal(rescheduleSendSignal, { sendAt: sendAt.getTime() }),
  );
  return moved;
}

/** The user's messages, newest first (optionally one account's, some statuses). */
export async function listOutbox(
  deps: Pick<OutboxCommandDeps, 'store'>,
  userId: string,
  filter: OutboxListFilter = {},
): Promise<OutboxMessage[]> {
  return deps.store.list(userId, filter);
}

/** One message of the user's, or OutboxNotFoundError. */
export async function getOutboxMessage(
  deps: Pick<OutboxCommandDeps, 'store'>,
  userId: string,
  outboxId: string,
): Promise<OutboxMessage> {
  return getOwn(deps as OutboxCommandDeps, userId, outboxId);
}

/** Waits for the message's workflow to end and returns its result (mail:send --wait). */
export async function waitForSend(deps: OutboxCommandDeps, m: OutboxMessage): Promise<SendResult> {
  const handle = requireClient(deps).workflow.getHandle<(input: SendMessageInput) => Promise<SendResult>>(
    m.workflowId ?? sendWorkflowId(m.accountId, m.id),
  );
  return handle.result();
}
