// New-message events of the account-sync repository (lib/sync-store/index.ts): the outbox
// behind docs/account-sync.md "New-message events". storeMessages (./messages.ts) records one
// row per inserted message in its own transaction, through insertMessageEvents; the dispatcher
// (activities/sync/events.ts) reads an account's pending rows, starts their workflows and marks
// them dispatched; the webhook delivery records its attempts and outcome. Every query has
// `user_id = $1` in its WHERE clause.
import type { Pool, PoolClient } from 'pg';
import { serverText } from '../imap/server-text';
import { validIds } from './rows';
import type { AccountEventSettings, MessageEventRecord, WebhookStatus } from './types';

/**
 * Inside storeMessages' transaction: one pending event per inserted message, if events are on
 * for the account (its events_enabled, else on when it has a webhook URL of its own or
 * `byDefault`). One statement per batch, none when nothing was inserted.
 */
export async function insertMessageEvents(
  db: PoolClient,
  key: { userId: string; accountId: string; folder: string },
  messageIds: number[],
  byDefault: boolean,
): Promise<number> {
  if (!messageIds.length) return 0;
  const res = await db.query(
    `INSERT INTO message_events (account_id, user_id, message_id, folder)
     SELECT a.id, a.user_id, m.id, $3 FROM mail_accounts a, unnest($4::bigint[]) AS m(id)
     WHERE a.user_id = $1 AND a.id = $2 AND COALESCE(a.events_enabled, a.webhook_url IS NOT NULL OR $5::boolean)
     ON CONFLICT ON CONSTRAINT message_events_message_key DO NOTHING`,
    [key.userId, key.accountId, key.folder, messageIds, byDefault],
  );
  return res.rowCount ?? 0;
}

function toEvent(r: Record<string, unknown>): MessageEventRecord {
  return {
    id: Number(r.id),
    accountId: r.account_id as string,
    userId: r.user_id as string,
    messageId: Number(r.message_id),
    folder: r.folder as string,
    createdAt: r.created_at as Date,
    dispatchedAt: (r.dispatched_at as Date | null) ?? null,
    workflowStarted: r.workflow_started as boolean,
    webhookStatus: r.webhook_status as WebhookStatus,
    webhookAttempts: r.webhook_attempts as number,
    webhookError: (r.webhook_error as string | null) ?? null,
    webhookFinishedAt: (r.webhook_finished_at as Date | null) ?? null,
  };
}

export function createEventStore(pool: Pool) {
  return {
    /** The account's own event settings (NULL = the worker's configuration), or null if no such account. */
    async getEventSettings(userId: string, accountId: string): Promise<AccountEventSettings | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        'SELECT events_enabled, webhook_url FROM mail_accounts WHERE user_id = $1 AND id = $2',
        [userId, accountId],
      );
      return rows[0]
        ? { eventsEnabled: (rows[0].events_enabled as boolean | null) ?? null, webhookUrl: rows[0].webhook_url ?? null }
        : null;
    },

    /** Changes the account's event settings; `null` returns a setting to the worker's configuration, undefined leaves it. */
    async updateEventSettings(
      userId: string,
      accountId: string,
      changes: { eventsEnabled?: boolean | null; webhookUrl?: string | null },
    ): Promise<AccountEventSettings | null> {
      if (!validIds(userId, accountId)) return null;
      const { rows } = await pool.query(
        `UPDATE mail_accounts SET
           events_enabled = CASE WHEN $3::boolean THEN $4::boolean ELSE events_enabled END,
           webhook_url = CASE WHEN $5::boolean THEN $6::text ELSE webhook_url END, updated_at = now()
         WHERE user_id = $1 AND id = $2 RETURNING events_enabled, webhook_url`,
        [
          userId,
          accountId,
          changes.eventsEnabled !== undefined,
          changes.eventsEnabled ?? null,
          changes.webhookUrl !== undefined,
          changes.webhookUrl ?? null,
        ],
      );
      return rows[0]
        ? { eventsEnabled: (rows[0].events_enabled as boolean | null) ?? null, webhookUrl: rows[0].webhook_url ?? null }
        : null;
    },

    /** The account's events not dispatched yet, oldest first. */
    async listPendingEvents(userId: string, accountId: string, limit: number): Promise<MessageEventRecord[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query(
        `SELECT * FROM message_events WHERE user_id = $1 AND account_id = $2 AND dispatched_at IS NULL ORDER BY id LIMIT $3`,
        [userId, accountId, limit],
      );
      return rows.map(toEvent);
    },

    /**
     * Marks events dispatched: their workflows were started (or found started). Only pending
     * rows change, so a second dispatcher marking the same rows changes nothing.
     */
    async markEventsDispatched(
      userId: string,
      eventIds: number[],
      how: { workflowStarted: boolean; webhook: boolean },
    ): Promise<number> {
      if (!validIds(userId) || !eventIds.length) return 0;
      const { rowCount } = await pool.query(
        `UPDATE message_events SET dispatched_at = now(), workflow_started = $3,
                -- A delivery that ran before this mark (a crash between start and mark) keeps its outcome.
                webhook_status = CASE WHEN $4::boolean AND webhook_status = 'none' THEN 'pending' ELSE webhook_status END
         WHERE user_id = $1 AND id = ANY($2::bigint[]) AND dispatched_at IS NULL`,
        [userId, eventIds, how.workflowStarted, how.webhook],
      );
      return rowCount ?? 0;
    },

    /** A failed webhook attempt that will be retried: visible while the delivery goes on. */
    async recordWebhookAttempt(userId: string, eventId: number, attempt: number, error: string): Promise<boolean> {
      if (!validIds(userId)) return false;
      const { rowCount } = await pool.query(
        `UPDATE message_events SET webhook_attempts = GREATEST(webhook_attempts, $3), webhook_error = $4
         WHERE user_id = $1 AND id = $2 AND webhook_status <> 'delivered'`,
        [userId, eventId, attempt, serverText(error, 2000)],
      );
      return rowCount === 1;
    },

    /** The webhook's final outcome: delivered, or failed (refused, or given up) with the reason. */
    async finishWebhook(
      userId: string,
      eventId: number,
      outcome: { status: 'delivered' | 'failed'; attempts: number; error: string | null },
    ): Promise<boolean> {
      if (!validIds(userId)) return false;
      const { rowCount } = await pool.query(
        `UPDATE message_events SET webhook_status = $3, webhook_attempts = GREATEST(webhook_attempts, $4),
                -- The outcome first, then the last attempt's details (recorded by recordWebhookAttempt).
                webhook_error = CASE WHEN $5::text IS NULL THEN webhook_error
                                     ELSE $5 || COALESCE(E'\\nlast attempt: ' || webhook_error, '') END,
                webhook_finished_at = now()
         WHERE user_id = $1 AND id = $2`,
        [
          userId,
          eventId,
          outcome.status,
          outcome.attempts,
          outcome.error === null ? null : serverText(outcome.error, 2000),
        ],
      );
      return rowCount === 1;
    },

    /** An account's events, oldest first (optionally only those whose webhook has this status). */
    async listMessageEvents(
      userId: string,
      accountId: string,
      options: { webhookStatus?: WebhookStatus; limit?: number } = {},
    ): Promise<MessageEventRecord[]> {
      if (!validIds(userId, accountId)) return [];
      const { rows } = await pool.query(
        `SELECT * FROM message_events WHERE user_id = $1 AND account_id = $2 AND ($3::text IS NULL OR webhook_status = $3)
         ORDER BY id LIMIT $4`,
        [userId, accountId, options.webhookStatus ?? null, options.limit ?? 1000],
      );
      return rows.map(toEvent);
    },
  };
}
