// The outbox store (migrations/006_outbox.sql): every function takes the owning userId and has
// `user_id = $1` in its WHERE clause, as lib/sync-store does, so a wrong or forged id matches
// nothing. State changes are single conditional UPDATEs (`... AND status IN (...)`), so the
// database decides races: a cancel and the timer firing at the same moment cannot both win.
//
// API (lib/outbox/index.ts exports it; the starters and the send activities build on it):
//   createDraft(userId, accountId, content)   validated draft with its Message-ID fixed; throws OutboxValidationError
//   updateDraft(userId, id, content)          replaces the given fields of a draft; null if not (or no longer) a draft
//   get(userId, id) / list(userId, filter)    rows without the built message
//   markScheduled(userId, id, sendAt, wfId)   draft -> scheduled (then start sendMessage with that workflow id)
//   cancel(userId, id, reason?)               draft|scheduled -> cancelled; null when too late (sending or done)
//   reschedule(userId, id, sendAt)            moves send_at of a scheduled message; null otherwise
//   markSending(userId, id)                   scheduled -> sending (the undo window is over); used by the workflow
//   getRaw / storeRaw                         the built message, stored once
//   recordSubmitAttempt(userId, id, rate)     opens an attempt (before SMTP), or says how long the account's rate makes it wait
//   recordSubmitted(userId, id, outcome)      the attempt's per-recipient replies; closes the attempt
//   recordSentCopy(userId, id, folder)        the Sent copy was appended (or found there)
//   recordResult(userId, id, status, reason)  final: sent | partial | failed
//   getSmtpSettings / updateSmtpSettings      the account's SMTP host, port, TLS mode, Sent folder, From
// Front ends cancel or reschedule a scheduled message by signalling its workflow (contracts/send.ts),
// which records the change here; a draft (no workflow yet) is cancelled here directly.
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { withTransaction } from '../storage/db';
import { serverText } from '../imap/server-text';
import { domainOf, normalizeAddress } from '../mail/address';
import { DEFAULT_RECIPIENT_LIMITS, validateRecipients, type Mailbox } from '../mail/send-recipients';
import { validIds } from '../sync-store/rows';
import { attachmentProblems, rateLimitWait } from './limits';
import { OUTBOX_COLUMNS, toOutboxMessage, toSmtpSettings } from './rows';
import {
  OutboxValidationError,
  type AttachmentRef,
  type DraftContent,
  type OutboxListFilter,
  type OutboxMessage,
  type OutboxStatus,
  type RecipientResult,
  type SmtpSettings,
} from './types';

export interface OutboxStoreOptions {
  /** Largest attachment, per file (SEND_MAX_ATTACHMENT_BYTES). Default 25 MiB. */
  maxAttachmentBytes?: number;
  /** Most recipients per message (SEND_MAX_RECIPIENTS). Default 100. */
  maxRecipients?: number;
}

export const DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024;
const REASON_LIMIT = 2000;
const SUBJECT_LIMIT = 998;

export type SubmitAttempt =
  | {
      started: true;
      attempt: number;
      /** An earlier attempt was left open (the worker died mid-transaction). */ reopened: boolean;
    }
  | { started: false; retryAfterMs: number };

export function createOutboxStore(pool: Pool, options: OutboxStoreOptions = {}) {
  const maxAttachmentBytes = options.maxAttachmentBytes ?? DEFAULT_MAX_ATTACHMENT_BYTES;
  const maxRecipients = options.maxRecipients ?? DEFAULT_RECIPIENT_LIMITS.maxRecipients;

  /** The validated columns of a draft's content (only the fields given), or every problem. */
  function checkContent(content: DraftContent, current?: OutboxMessage) {
    const problems: string[] = [];
    const out: {
      recipients?: { to: Mailbox[]; cc: Mailbox[]; bcc: Mailbox[] };
      attachments?: AttachmentRef[];
      from?: string;
    } = {};
    if (content.to !== undefined || content.cc !== undefined || content.bcc !== undefined || !current) {
      // Fields not given keep their current recipients.
      const asText = (list: Mailbox[] | undefined) => (list ?? []).map((m) => m.address);
      const check = validateRecipients(
        {
          to: content.to ?? asText(current?.to),
          cc: content.cc ?? asText(current?.cc),
          bcc: content.bcc ?? asText(current?.bcc),
        },
        { maxRecipients },
      );
      if (check.ok) {
        // Names of kept recipients survive an update of another field.
        const named = (list: Mailbox[], before: Mailbox[] | undefined) =>
          list.map((m) => (m.name ? m : (before?.find((b) => b.address === m.address) ?? m)));
        out.recipients = {
          to: content.to === undefined ? named(check.to, current?.to) : check.to,
          cc: content.cc === undefined ? named(check.cc, current?.cc) : check.cc,
          bcc: content.bcc === undefined ? named(check.bcc, current?.bcc) : check.bcc,
        };
      } else problems.push(...check.problems);
    }
    if (content.attachments !== undefined) {
      if (!Array.isArray(content.attachments)) problems.push('attachments must be a list');
      else {
        problems.push(...attachmentProblems(content.attachments, maxAttachmentBytes));
        out.attachments = content.attachments.map((a) =>
          a.path !== undefined
            ? { filename: a.filename, contentType: a.contentType, size: a.size, path: a.path }
            : { filename: a.filename, contentType: a.contentType, size: a.size, s3Bucket: a.s3Bucket, s3Key: a.s3Key },
        );
      }
    }
    if (content.from !== undefined) {
      const from = normalizeAddress(content.from);
      if (!from) problems.push(`from: "${content.from}" is not a deliverable address`);
      else out.from = from;
    }
    if (content.subject !== undefined && content.subject.length > SUBJECT_LIMIT)
      problems.push(`subject: longer than ${SUBJECT_LIMIT} characters`);
    // eslint-disable-next-line no-control-regex
    if (content.fromName && /[\u0000-\u001f\u007f]/.test(content.fromName))
      problems.push('from name: contains control characters (line breaks?)');
    return { problems, ...out };
  }

  async function getRow(userId: string, outboxId: string): Promise<OutboxMessage | null> {
    if (!validIds(userId, outboxId)) return null;
    const { rows } = await pool.query(`SELECT ${OUTBOX_COLUMNS} FROM outbox o WHERE o.user_id = $1 AND o.id = $2`, [
      userId,
      outboxId,
    ]);
    return rows[0] ? toOutboxMessage(rows[0]) : null;
  }

  /** One conditional UPDATE ... RETURNING the row; null when nothing matched. */
  async function update(sql: string, params: unknown[]): Promise<OutboxMessage | null> {
    const { rows } = await pool.query(`${sql} RETURNING ${OUTBOX_COLUMNS.replaceAll('o.', '')}`, params);
    return rows[0] ? toOutboxMessage(rows[0]) : null;
  }

  async function getRaw(userId: string, outboxId: string): Promise<{ raw: Buffer; rawSent: Buffer } | null> {
    if (!validIds(userId, outboxId)) return null;
    const { rows } = await pool.query(
      'SELECT raw, raw_sent FROM outbox WHERE user_id = $1 AND id = $2 AND raw IS NOT NULL',
      [userId, outboxId],
    );
    return rows[0] ? { raw: rows[0].raw as Buffer, rawSent: (rows[0].raw_sent as Buffer | null) ?? rows[0].raw } : null;
  }

  const reasonText = (reason: string | null | undefined) =>
    reason === null || reason === undefined ? null : serverText(reason, REASON_LIMIT);

  return {
    /**
     * Creates a draft for one of the user's accounts: recipients validated and normalised,
     * attachments checked against the cap, the Message-ID fixed. Throws OutboxValidationError
     * naming every problem (an unknown account is one of them).
     */
    async createDraft(userId: string, accountId: string, content: DraftContent): Promise<OutboxMessage> {
      if (!validIds(userId, accountId))
        throw new OutboxValidationError([`account ${accountId} does not exist for this user`]);
      const checked = checkContent({ attachments: [], ...content });
      const { rows: acc } = await pool.query(
        'SELECT imap_user, from_address FROM mail_accounts WHERE user_id = $1 AND id = $2',
        [userId, accountId],
      );
      if (!acc[0]) throw new OutboxValidationError([`account ${accountId} does not exist for this user`]);
      const from =
        checked.from ??
        normalizeAddress((acc[0].from_address as string | null) ?? undefined) ??
        normalizeAddress(acc[0].imap_user as string);
      if (!from && content.from === undefined)
        checked.problems.push(
          `from: account ${accountId} has no From address (its login is not an address); give one, or set the account's from_address`,
        );
      if (checked.problems.length) throw new OutboxValidationError(checked.problems);
      const messageId = `<${randomUUID()}@${domainOf(from!)}>`;
      const r = checked.recipients!;
      const { rows } = await pool.query(
        `INSERT INTO outbox (account_id, user_id, from_address, from_name, to_recipients, cc_recipients, bcc_recipients,
                             subject, text_body, html_body, attachments, message_id)
         VALUES ($2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING ${OUTBOX_COLUMNS.replaceAll('o.', '')}`,
        [
          userId,
          accountId,
          from,
          content.fromName ?? null,
          JSON.stringify(r.to),
          JSON.stringify(r.cc),
          JSON.stringify(r.bcc),
          content.subject ?? '',
          content.text ?? null,
          content.html ?? null,
          JSON.stringify(checked.attachments ?? []),
          messageId,
        ],
      );
      return toOutboxMessage(rows[0]);
    },

    /**
     * Replaces the fields given (recipients: each field given replaces that field) of a draft.
     * Null when there is no such draft (not found, or already scheduled: cancel it instead).
     * Throws OutboxValidationError for invalid content.
     */
    async updateDraft(userId: string, outboxId: string, content: DraftContent): Promise<OutboxMessage | null> {
      const current = await getRow(userId, outboxId);
      if (!current || current.status !== 'draft') return null;
      const checked = checkContent(content, current);
      if (checked.problems.length) throw new OutboxValidationError(checked.problems);
      const r = checked.recipients;
      return update(
        `UPDATE outbox SET
           from_address = COALESCE($3, from_address),
           from_name = CASE WHEN $4::boolean THEN $5 ELSE from_name END,
           to_recipients = COALESCE($6::jsonb, to_recipients),
           cc_recipients = COALESCE($7::jsonb, cc_recipients),
           bcc_recipients = COALESCE($8::jsonb, bcc_recipients),
           subject = COALESCE($9, subject),
           text_body = CASE WHEN $10::boolean THEN $11 ELSE text_body END,
           html_body = CASE WHEN $12::boolean THEN $13 ELSE html_body END,
           attachments = COALESCE($14::jsonb, attachments),
           updated_at = now()
         WHERE user_id = $1 AND id = $2 AND status = 'draft'`,
        [
          userId,
          outboxId,
          checked.from ?? null,
          content.fromName !== undefined,
          content.fromName ?? null,
          r ? JSON.stringify(r.to) : null,
          r ? JSON.stringify(r.cc) : null,
          r ? JSON.stringify(r.bcc) : null,
          content.subject ?? null,
          content.text !== undefined,
          content.text ?? null,
          content.html !== undefined,
          content.html ?? null,
          checked.attachments ? JSON.stringify(checked.attachments) : null,
        ],
      );
    },

    /** The row (without the built message), or null. */
    get: getRow,

    /** The user's messages, newest first; optionally of one account and/or in some statuses. */
    async list(userId: string, filter: OutboxListFilter = {}): Promise<OutboxMessage[]> {
      if (!validIds(userId) || (filter.accountId !== undefined && !validIds(filter.accountId))) return [];
      const statuses =
        filter.status === undefined ? null : Array.isArray(filter.status) ? filter.status : [filter.status];
      const { rows } = await pool.query(
        `SELECT ${OUTBOX_COLUMNS} FROM outbox o
         WHERE o.user_id = $1 AND ($2::uuid IS NULL OR o.account_id = $2) AND ($3::text[] IS NULL OR o.status = ANY($3))
         ORDER BY o.created_at DESC, o.id LIMIT $4`,
        [userId, filter.accountId ?? null, statuses, Math.max(1, Math.min(filter.limit ?? 100, 10_000))],
      );
      return rows.map(toOutboxMessage);
    },

    /**
     * draft -> scheduled, to go out at sendAt (now or later) by the sendMessage workflow with
     * this id (start it right after; starting it again with the same id is refused by Temporal).
     * Idempotent for the same workflow id. Null when not a draft of this user.
     */
    async markScheduled(
      userId: string,
      outboxId: string,
      sendAt: Date,
      workflowId: string,
    ): Promise<OutboxMessage | null> {
      if (!validIds(userId, outboxId)) return null;
      return update(
        `UPDATE outbox SET status = 'scheduled', send_at = $3, workflow_id = $4, status_reason = NULL, updated_at = now()
         WHERE user_id = $1 AND id = $2 AND (status = 'draft' OR (status = 'scheduled' AND workflow_id = $4))`,
        [userId, outboxId, sendAt, workflowId],
      );
    },

    /** Undo: draft|scheduled -> cancelled. Null when too late (sending began) or not found. Idempotent. */
    async cancel(userId: string, outboxId: string, reason?: string): Promise<OutboxMessage | null> {
      if (!validIds(userId, outboxId)) return null;
      return update(
        `UPDATE outbox SET status = 'cancelled', status_reason = $3, finished_at = COALESCE(finished_at, now()), updated_at = now()
         WHERE user_id = $1 AND id = $2 AND status IN ('draft', 'scheduled', 'cancelled')`,
        [userId, outboxId, reasonText(reason) ?? 'cancelled'],
      );
    },

    /** Moves the send time of a scheduled message. Null when not scheduled (a draft, sending, done) or not found. */
    async reschedule(userId: string, outboxId: string, sendAt: Date): Promise<OutboxMessage | null> {
      if (!validIds(userId, outboxId)) return null;
      return update(
        `UPDATE outbox SET send_at = $3, updated_at = now() WHERE user_id = $1 AND id = $2 AND status = 'scheduled'`,
        [userId, outboxId, sendAt],
      );
    },

    /**
     * scheduled -> sending: from here on the message goes out, cancel is too late. Returns the
     * row (also when it was already sending or further: the caller looks at its status), or null.
     */
    async markSending(userId: string, outboxId: string): Promise<OutboxMessage | null> {
      if (!validIds(userId, outboxId)) return null;
      const moved = await update(
        `UPDATE outbox SET status = 'sending', updated_at = now() WHERE user_id = $1 AND id = $2 AND status = 'scheduled'`,
        [userId, outboxId],
      );
      return moved ?? getRow(userId, outboxId);
    },

    /** The built message: `raw` as submitted, `rawSent` for the Sent copy (raw when the same). Null until built. */
    getRaw,

    /**
     * Stores the built message unless one is stored already (built once: a retry that built
     * again gets the first one back, so every attempt sends the same bytes). Null if no such row.
     */
    async storeRaw(
      userId: string,
      outboxId: string,
      raw: Buffer,
      rawSent: Buffer | null,
    ): Promise<{ raw: Buffer; rawSent: Buffer } | null> {
      if (!validIds(userId, outboxId)) return null;
      await pool.query(
        'UPDATE outbox SET raw = $3, raw_sent = $4, updated_at = now() WHERE user_id = $1 AND id = $2 AND raw IS NULL',
        [userId, outboxId, raw, rawSent],
      );
      return getRaw(userId, outboxId);
    },

    /**
     * Opens a submission attempt, before any byte goes to the SMTP server: marks it pending
     * (so a retry after a crash knows one may have been accepted) and counts it for the
     * account's rate. With `ratePerMinute` submissions from the account started in the last
     * minute already, opens nothing and says how long to wait. Serialised per account (an
     * advisory lock), so workers in parallel cannot both take the last slot. Null if no such row.
     */
    async recordSubmitAttempt(
      userId: string,
      outboxId: string,
      rate: { perMinute: number; now?: number },
    ): Promise<(SubmitAttempt & { wasPending: boolean }) | null> {
      if (!validIds(userId, outboxId)) return null;
      return withTransaction(pool, async (db) => {
        const { rows } = await db.query(
          'SELECT account_id, submit_pending, submit_attempts FROM outbox WHERE user_id = $1 AND id = $2 FOR UPDATE',
          [userId, outboxId],
        );
        if (!rows[0]) return null;
        const wasPending = rows[0].submit_pending as boolean;
        await db.query("SELECT pg_advisory_xact_lock(hashtextextended('mailroom-send-rate:' || $1, 0))", [
          rows[0].account_id,
        ]);
        const { rows: recent } = await db.query(
          `SELECT extract(epoch FROM submit_started_at) * 1000 AS t, extract(epoch FROM now()) * 1000 AS now FROM outbox
           WHERE user_id = $1 AND account_id = $2 AND id <> $3 AND submit_started_at > now() - interval '1 minute'`,
          [userId, rows[0].account_id, outboxId],
        );
        const now = rate.now ?? Date.now();
        const wait = rateLimitWait(
          recent.map((r) => Number(r.t)),
          now,
          rate.perMinute,
        );
        if (wait > 0) return { started: false as const, retryAfterMs: wait, wasPending };
        await db.query(
          `UPDATE outbox SET submit_pending = true, submit_started_at = now(), submit_attempts = submit_attempts + 1, updated_at = now()
           WHERE user_id = $1 AND id = $2`,
          [userId, outboxId],
        );
        return {
          started: true as const,
          attempt: Number(rows[0].submit_attempts) + 1,
          reopened: wasPending,
          wasPending,
        };
      });
    },

    /**
     * Records an attempt's outcome and closes it: each recipient's reply merged into
     * recipient_results (a final reply, accepted or failed, is never overwritten), submitted_at
     * set at the first acceptance, `response` the server's reply to the message (DATA).
     * `recovery` says how an attempt left open by a crash was resolved. Null if no such row.
     */
    async recordSubmitted(
      userId: string,
      outboxId: string,
      outcome: { results: Record<string, RecipientResult>; response?: string | null; recovery?: string | null },
    ): Promise<OutboxMessage | null> {
      if (!validIds(userId, outboxId)) return null;
      const results = Object.fromEntries(
        Object.entries(outcome.results).map(([addr, r]) => [addr, { ...r, reply: serverText(r.reply, 1000) }]),
      );
      const accepted = Object.values(results).some((r) => r.status === 'accepted');
      return withTransaction(pool, async (db) => {
        const { rows } = await db.query(
          'SELECT recipient_results FROM outbox WHERE user_id = $1 AND id = $2 FOR UPDATE',
          [userId, outboxId],
        );
        if (!rows[0]) return null;
        const merged = { ...(rows[0].recipient_results as Record<string, RecipientResult>) };
        for (const [addr, r] of Object.entries(results)) {
          const before = merged[addr];
          if (before && (before.status === 'accepted' || before.status === 'failed')) continue;
          merged[addr] = r;
        }
        const { rows: out } = await db.query(
          `UPDATE outbox SET recipient_results = $3,
             submitted_at = CASE WHEN $4::boolean THEN COALESCE(submitted_at, now()) ELSE submitted_at END,
             smtp_response = COALESCE($5, smtp_response),
             submit_recovery = COALESCE($6, submit_recovery),
             submit_pending = false,
             updated_at = now()
           WHERE user_id = $1 AND id = $2
           RETURNING ${OUTBOX_COLUMNS.replaceAll('o.', '')}`,
          [
            userId,
            outboxId,
            JSON.stringify(merged),
            accepted,
            outcome.response ? serverText(outcome.response, 1000) : null,
            outcome.recovery ?? null,
          ],
        );
        return toOutboxMessage(out[0]);
      });
    },

    /** The Sent copy is in `folder` (appended by us, or found there). Null if no such row. */
    async recordSentCopy(userId: string, outboxId: string, folder: string): Promise<OutboxMessage | null> {
      if (!validIds(userId, outboxId)) return null;
      return update(
        `UPDATE outbox SET sent_copy_folder = $3, sent_copy_at = COALESCE(sent_copy_at, now()), updated_at = now()
         WHERE user_id = $1 AND id = $2`,
        [userId, outboxId, folder],
      );
    },

    /** The final status of a send. Never overwrites a cancelled message. Null if no such row. */
    async recordResult(
      userId: string,
      outboxId: string,
      status: Extract<OutboxStatus, 'sent' | 'partial' | 'failed'>,
      reason?: string | null,
    ): Promise<OutboxMessage | null> {
      if (!validIds(userId, outboxId)) return null;
      return update(
        `UPDATE outbox SET status = $3, status_reason = $4, submit_pending = false, finished_at = now(), updated_at = now()
         WHERE user_id = $1 AND id = $2 AND status <> 'cancelled'`,
        [userId, outboxId, status, reasonText(reason)],
      );
    },

    // --- the account's SMTP settings ---------------------------------------------------------

    async getSmtpSettings(userId: string, accountId: string): Promise<SmtpSettings | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        'SELECT smtp_host, smtp_port, smtp_tls, sent_folder, from_address FROM mail_accounts WHERE user_id = $1 AND id = $2',
        [userId, accountId],
      );
      return rows[0] ? toSmtpSettings(rows[0]) : null;
    },

    /** Changes the given settings (null clears sentFolder / fromAddress). Null if no such account. */
    async updateSmtpSettings(
      userId: string,
      accountId: string,
      s: Partial<SmtpSettings>,
    ): Promise<SmtpSettings | null> {
      if (!validIds(userId, accountId)) return null;
      const fromAddress = s.fromAddress ? normalizeAddress(s.fromAddress) : null;
      const problems: string[] = [];
      if (s.fromAddress && !fromAddress) problems.push(`from address "${s.fromAddress}" is not a deliverable address`);
      if (s.port !== undefined && s.port !== null && !(Number.isInteger(s.port) && s.port >= 1 && s.port <= 65535))
        problems.push(`SMTP port ${s.port} is not 1-65535`);
      if (s.tls !== undefined && !['implicit', 'starttls', 'none'].includes(s.tls))
        problems.push(`SMTP TLS mode "${String(s.tls)}" is not implicit, starttls or none`);
      if (problems.length)
        throw new OutboxValidationError(problems, `Cannot store the SMTP settings of account ${accountId}`);
      const { rows } = await pool.query(
        `UPDATE mail_accounts SET
           smtp_host = CASE WHEN $3::boolean THEN $4 ELSE smtp_host END,
           smtp_port = CASE WHEN $5::boolean THEN $6::integer ELSE smtp_port END,
           smtp_tls = COALESCE($7, smtp_tls),
           sent_folder = CASE WHEN $8::boolean THEN $9 ELSE sent_folder END,
           from_address = CASE WHEN $10::boolean THEN $11 ELSE from_address END,
           updated_at = now()
         WHERE user_id = $1 AND id = $2
         RETURNING smtp_host, smtp_port, smtp_tls, sent_folder, from_address`,
        [
          userId,
          accountId,
          s.host !== undefined,
          s.host ?? null,
          s.port !== undefined,
          s.port ?? null,
          s.tls ?? null,
          s.sentFolder !== undefined,
          s.sentFolder ?? null,
          s.fromAddress !== undefined,
          fromAddress,
        ],
      );
      return rows[0] ? toSmtpSettings(rows[0]) : null;
    },
  };
}

export type OutboxStore = ReturnType<typeof createOutboxStore>;
