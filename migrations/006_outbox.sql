-- Sending mail from a user's account (issue 23): the outbox, and each account's SMTP settings.
--
-- mail_accounts gains where and how to submit (the account's own login is reused: its password,
-- or the same OAuth2 access token as XOAUTH2) and where to keep a copy of what was sent:
--   smtp_host/smtp_port  the submission server; NULL smtp_host: the account cannot send yet
--   smtp_tls             'implicit' (TLS from the first byte, port 465), 'starttls' (587), 'none'
--   sent_folder          the folder the sender APPENDs the sent message to (\Seen); NULL: no
--                        copy is appended (providers such as Gmail save one themselves)
--   from_address         the From address of mail sent from the account; NULL: imap_user when
--                        that is an address
--
-- outbox: one row per message, per user and account (the (account_id, user_id) foreign key as
-- everywhere). Its life: draft -> scheduled (a sendMessage workflow waits for send_at) ->
-- sending (the timer fired; no undo any more) -> sent | partial (some recipients refused for
-- good) | failed; draft and scheduled can become cancelled. The Message-ID is fixed when the
-- draft is created, so every retry, the Sent copy and the duplicate check name the same message.
-- Attachments are references (a local path or an S3 bucket/key, with filename, content type and
-- size); their content is read when the message is built and never enters workflow history.
--
-- Exactly one copy: submit_pending and submit_started_at are written before the SMTP
-- transaction, submitted_at and smtp_response after the server accepted it (submit_pending
-- cleared with any recorded outcome); recipient_results holds each recipient's reply.
-- A retry that finds an attempt without acceptance looks for the Message-ID in the Sent folder
-- before it submits again (lib/outbox/, activities/send/).

ALTER TABLE mail_accounts
  ADD COLUMN smtp_host text,
  ADD COLUMN smtp_port integer CHECK (smtp_port BETWEEN 1 AND 65535),
  ADD COLUMN smtp_tls text NOT NULL DEFAULT 'starttls' CHECK (smtp_tls IN ('implicit', 'starttls', 'none')),
  ADD COLUMN sent_folder text,
  ADD COLUMN from_address text;

CREATE TABLE outbox (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id          uuid NOT NULL,
  user_id             uuid NOT NULL,
  from_address        text NOT NULL,
  from_name           text,
  -- [{"address": "a@example.com", "name": "A"}], addresses normalised (lib/mail/address.ts).
  to_recipients       jsonb NOT NULL DEFAULT '[]',
  cc_recipients       jsonb NOT NULL DEFAULT '[]',
  bcc_recipients      jsonb NOT NULL DEFAULT '[]',
  subject             text NOT NULL DEFAULT '',
  text_body           text,
  html_body           text,
  -- [{"filename", "contentType", "size", "path"} or {..., "s3Bucket", "s3Key"}]: references only.
  attachments         jsonb NOT NULL DEFAULT '[]',
  -- "<random@domain>", fixed at creation; the key of the duplicate check.
  message_id          text NOT NULL,
  send_at             timestamptz,
  status              text NOT NULL DEFAULT 'draft'
                      CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'partial', 'failed', 'cancelled')),
  status_reason       text,
  workflow_id         text,
  -- The built RFC 5322 message (built once, re-read by every retry): `raw` is what is submitted
  -- (no Bcc header), `raw_sent` the Sent copy (with Bcc) when it differs.
  raw                 bytea,
  raw_sent            bytea,
  -- {"a@example.com": {"status": "accepted"|"failed"|"deferred", "code": 250, "reply": "...", "at": "..."}}
  recipient_results   jsonb NOT NULL DEFAULT '{}',
  submit_attempts     integer NOT NULL DEFAULT 0,
  -- Start of the latest attempt (also what the per-account rate counts).
  submit_started_at   timestamptz,
  -- true from just before an SMTP transaction until its outcome is recorded: an attempt found
  -- still open by a retry may have been accepted (the worker died), so the Sent folder is checked.
  submit_pending      boolean NOT NULL DEFAULT false,
  -- First acceptance by the server (some or all recipients).
  submitted_at        timestamptz,
  smtp_response       text,
  -- How the last unrecorded attempt was resolved ('found_in_sent', 'resubmitted').
  submit_recovery     text,
  sent_copy_folder    text,
  sent_copy_at        timestamptz,
  finished_at         timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, user_id) REFERENCES mail_accounts (id, user_id) ON DELETE CASCADE,
  CHECK (jsonb_typeof(attachments) = 'array'),
  CHECK (status = 'draft' OR send_at IS NOT NULL)
);
CREATE UNIQUE INDEX outbox_message_id_key ON outbox (user_id, message_id);
CREATE INDEX outbox_user_account_idx ON outbox (user_id, account_id, created_at DESC);
CREATE INDEX outbox_user_status_idx ON outbox (user_id, status, send_at);
-- The per-account send rate counts recent attempts.
CREATE INDEX outbox_account_attempts_idx ON outbox (account_id, submit_started_at) WHERE submit_started_at IS NOT NULL;
