-- IMAP IDLE watchers (workflows/watchAccount.ts): one row per account that has one, written by
-- the watcher's activities, read by account:list and by the sync's connection budget.
--
--   state                 starting, idle (IDLE running), reconnecting (connection lost, waiting
--                         before the next try), unsupported (the server has no IDLE: the watcher
--                         ended, the account's Schedule alone syncs it), needs_attention (its
--                         credential was refused: the watcher waits like the sync does),
--                         released (gave its connection to a running sync: SYNC_IMAP_CONNECTIONS_PER_ACCOUNT=1),
--                         stopped (account disabled or removed, watchers switched off)
--   last_event_at         when the server last reported a change (EXISTS, EXPUNGE, FETCH flags)
--   connected             the watcher holds an IMAP connection now
--   release_requested_at  a sync asked the watcher to give up its connection (budget of 1)
--   heartbeat_at          refreshed while the watcher holds its connection: a row whose watcher died
--                         (worker killed) is recognised by its age, and ignored by the budget
-- New table only: nothing the running build reads changes.
CREATE TABLE account_watchers (
  account_id            uuid NOT NULL,
  user_id               uuid NOT NULL,
  workflow_id           text NOT NULL,
  state                 text NOT NULL DEFAULT 'starting'
                        CHECK (state IN ('starting', 'idle', 'reconnecting', 'unsupported', 'needs_attention', 'released', 'stopped')),
  state_changed_at      timestamptz NOT NULL DEFAULT now(),
  detail                text,
  last_event_at         timestamptz,
  connected             boolean NOT NULL DEFAULT false,
  release_requested_at  timestamptz,
  heartbeat_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id),
  FOREIGN KEY (account_id, user_id) REFERENCES mail_accounts (id, user_id) ON DELETE CASCADE
);
