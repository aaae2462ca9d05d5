-- Account sync: users, their IMAP accounts, per-folder checkpoints, synced messages and
-- a record of each sync run. Every table below users carries user_id, and child rows
-- reference (account id, user id) together, so a row can never point at an account of
-- another user even if application code got an id wrong.

CREATE TABLE users (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email       text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE mail_accounts (
  id                     uuid PRIMARY KEY,
  user_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  imap_host              text NOT NULL,
  imap_port              integer NOT NULL CHECK (imap_port BETWEEN 1 AND 65535),
  imap_tls               boolean NOT NULL DEFAULT true,
  imap_user              text NOT NULL,
  -- AES-256-GCM ciphertext from lib/crypto.ts ("v1:<keyId>:..."), bound to the account id.
  password_encrypted     text NOT NULL,
  sync_interval_seconds  integer NOT NULL DEFAULT 900 CHECK (sync_interval_seconds >= 1),
  enabled                boolean NOT NULL DEFAULT true,
  -- 'ok', or 'needs_attention' after the server rejected the password (cleared by a new one).
  status                 text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'needs_attention')),
  status_reason          text,
  status_changed_at      timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  UNIQUE (id, user_id),
  UNIQUE (user_id, imap_host, imap_port, imap_user)
);

CREATE TABLE folder_sync_state (
  account_id      uuid NOT NULL,
  user_id         uuid NOT NULL,
  folder          text NOT NULL,
  uidvalidity     bigint NOT NULL,
  -- Checkpoint: every message with a UID up to last_uid is stored (or was deleted since).
  last_uid        bigint NOT NULL DEFAULT 0,
  -- HIGHESTMODSEQ seen when flags were last reconciled; NULL without CONDSTORE.
  highest_modseq  bigint,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, folder),
  FOREIGN KEY (account_id, user_id) REFERENCES mail_accounts (id, user_id) ON DELETE CASCADE
);

CREATE TABLE messages (
  id             bigserial PRIMARY KEY,
  account_id     uuid NOT NULL,
  user_id        uuid NOT NULL,
  folder         text NOT NULL,
  uidvalidity    bigint NOT NULL,
  uid            bigint NOT NULL,
  message_id     text,
  from_address   text,
  to_addresses   text[] NOT NULL DEFAULT '{}',
  subject        text,
  sent_at        timestamptz,
  internal_date  timestamptz,
  flags          text[] NOT NULL DEFAULT '{}',
  modseq         bigint,
  size           integer,
  -- The raw RFC 5322 message, or NULL with raw_ref pointing at it on the server
  -- (imap://user@host/folder;UIDVALIDITY=n/;UID=n, RFC 5092) when it was too large.
  raw            bytea,
  raw_ref        text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT messages_account_folder_uid_key UNIQUE (account_id, folder, uidvalidity, uid),
  FOREIGN KEY (account_id, user_id) REFERENCES mail_accounts (id, user_id) ON DELETE CASCADE,
  CHECK (raw IS NOT NULL OR raw_ref IS NOT NULL)
);
CREATE INDEX messages_user_account_idx ON messages (user_id, account_id, folder);
CREATE INDEX messages_message_id_idx ON messages (user_id, message_id);

CREATE TABLE sync_runs (
  id                bigserial PRIMARY KEY,
  account_id        uuid NOT NULL,
  user_id           uuid NOT NULL,
  workflow_id       text NOT NULL,
  -- The first run of the workflow; later continue-as-new runs keep updating this row.
  workflow_run_id   text NOT NULL UNIQUE,
  status            text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'succeeded', 'failed', 'needs_attention', 'cancelled')),
  started_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz,
  folders           integer NOT NULL DEFAULT 0,
  messages_added    integer NOT NULL DEFAULT 0,
  messages_updated  integer NOT NULL DEFAULT 0,
  messages_deleted  integer NOT NULL DEFAULT 0,
  error             text,
  FOREIGN KEY (account_id, user_id) REFERENCES mail_accounts (id, user_id) ON DELETE CASCADE
);
CREATE INDEX sync_runs_account_idx ON sync_runs (user_id, account_id, started_at DESC);
