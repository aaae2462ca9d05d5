-- Folders an account's IDLE watcher watches besides INBOX (account:set --watch-folders): the
-- watcher looks at their counters (STATUS) on its own connection every
-- SYNC_WATCH_FOLDER_POLL_SECONDS and asks for a sync of a folder that changed. Empty: INBOX only.
ALTER TABLE mail_accounts ADD COLUMN watched_folders text[] NOT NULL DEFAULT '{}';
