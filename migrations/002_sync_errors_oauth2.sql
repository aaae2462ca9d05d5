-- Account sync that no message can stop, and OAuth2 accounts.
--
-- sync_errors: every message the sync could not store (or stored without its body) and every
-- folder it could not sync, with the reason. A message recorded here is skipped: the folder's
-- checkpoint moves past it, so one hostile message never stops the folder again.
--
-- mail_accounts gains OAuth2 credentials (Gmail, Microsoft 365, any RFC 6749 provider): the
-- refresh token and client secret are encrypted like passwords (lib/crypto.ts, bound to the
-- account id), and so is the cached access token.

CREATE TABLE sync_errors (
  id           bigserial PRIMARY KEY,
  account_id   uuid NOT NULL,
  user_id      uuid NOT NULL,
  sync_run_id  bigint REFERENCES sync_runs (id) ON DELETE SET NULL,
  folder       text NOT NULL,
  uidvalidity  bigint,
  -- NULL for a folder-level error (kind 'folder').
  uid          bigint,
  -- 'data': not stored (PostgreSQL refused a value, or the server's answer was unusable);
  -- 'oversize': stored without its body (metadata and raw_ref only), `size` says how large;
  -- 'folder': the folder could not be synced in that run (it is tried again next run).
  kind         text NOT NULL CHECK (kind IN ('data', 'oversize', 'folder')),
  size         bigint,
  reason       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, user_id) REFERENCES mail_accounts (id, user_id) ON DELETE CASCADE,
  CHECK ((kind = 'folder') = (uid IS NULL))
);
-- A message is recorded once, however often its batch is retried.
CREATE UNIQUE INDEX sync_errors_message_key ON sync_errors (account_id, folder, uidvalidity, uid) WHERE uid IS NOT NULL;
CREATE INDEX sync_errors_account_idx ON sync_errors (user_id, account_id, created_at DESC);
CREATE INDEX sync_errors_run_idx ON sync_errors (sync_run_id);
-- A folder error is recorded once per run, however often the activity that met it is retried.
CREATE UNIQUE INDEX sync_errors_folder_run_key ON sync_errors (sync_run_id, folder) WHERE uid IS NULL;

ALTER TABLE sync_runs ADD COLUMN messages_skipped integer NOT NULL DEFAULT 0;
-- 'partial': some folders could not be synced (see sync_errors), the others were.
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_status_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_status_check
  CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'needs_attention', 'cancelled'));

ALTER TABLE mail_accounts
  ADD COLUMN auth_method text NOT NULL DEFAULT 'password' CHECK (auth_method IN ('password', 'oauth2')),
  ALTER COLUMN password_encrypted DROP NOT NULL,
  -- 'google', 'microsoft' (presets in lib/oauth2-presets.ts) or 'custom'.
  ADD COLUMN oauth2_provider text,
  ADD COLUMN oauth2_token_url text,
  ADD COLUMN oauth2_client_id text,
  ADD COLUMN oauth2_client_secret_encrypted text,
  ADD COLUMN oauth2_scopes text,
  ADD COLUMN oauth2_refresh_token_encrypted text,
  ADD COLUMN oauth2_access_token_encrypted text,
  ADD COLUMN oauth2_access_token_expires_at timestamptz,
  ADD CONSTRAINT mail_accounts_credentials_check CHECK (
    (auth_method = 'password' AND password_encrypted IS NOT NULL)
    OR (auth_method = 'oauth2' AND oauth2_token_url IS NOT NULL AND oauth2_client_id IS NOT NULL
        AND oauth2_refresh_token_encrypted IS NOT NULL)
  );
