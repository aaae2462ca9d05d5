-- New-message events for applications (docs/account-sync.md "New-message events"): a
-- transactional outbox. The transaction that inserts new message rows also inserts one
-- message_events row per new message (when events are on for the account), so an event is
-- recorded exactly when its message is, whatever crashes afterwards. A dispatcher then starts
-- the configured workflow and the webhook delivery for each pending row and marks it
-- dispatched; both use workflow ids derived from the message row, so a row dispatched twice
-- (a crash between the start and the mark) starts nothing twice.

-- Per-account settings; NULL follows the worker's configuration (SYNC_EVENTS_*, SYNC_WEBHOOK_*).
ALTER TABLE mail_accounts ADD COLUMN events_enabled boolean;
ALTER TABLE mail_accounts ADD COLUMN webhook_url text;

CREATE TABLE message_events (
  id                   bigserial PRIMARY KEY,
  account_id           uuid NOT NULL,
  user_id              uuid NOT NULL,
  -- messages.id; an event of a message deleted before dispatch goes with it.
  message_id           bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  folder               text NOT NULL,
  event_type           text NOT NULL DEFAULT 'messageNew' CHECK (event_type IN ('messageNew')),
  created_at           timestamptz NOT NULL DEFAULT now(),
  -- Set once the workflows below were started (or found already started); NULL = pending.
  dispatched_at        timestamptz,
  -- Whether a consumer workflow (SYNC_EVENTS_WORKFLOW_TYPE) was started for it.
  workflow_started     boolean NOT NULL DEFAULT false,
  -- 'none' (no webhook configured at dispatch), 'pending' (delivery workflow started,
  -- retrying), 'delivered', 'failed' (given up or refused; webhook_error says why).
  webhook_status       text NOT NULL DEFAULT 'none' CHECK (webhook_status IN ('none', 'pending', 'delivered', 'failed')),
  webhook_attempts     integer NOT NULL DEFAULT 0,
  webhook_error        text,
  webhook_finished_at  timestamptz,
  CONSTRAINT message_events_message_key UNIQUE (message_id, event_type),
  FOREIGN KEY (account_id, user_id) REFERENCES mail_accounts (id, user_id) ON DELETE CASCADE
);
-- The dispatcher's query: an account's pending events, oldest first.
CREATE INDEX message_events_pending_idx ON message_events (account_id, id) WHERE dispatched_at IS NULL;
CREATE INDEX message_events_failed_idx ON message_events (user_id, account_id) WHERE webhook_status = 'failed';
