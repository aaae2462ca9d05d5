-- Folders an account's IDLE watcher watches besides INBOX (account:set --watch-folders): the
-- server pushes their changes (NOTIFY) or the watcher polls their counters (STATUS) on its own
-- connection, and asks for a sync of a folder that changed. Empty: INBOX only.
ALTER TABLE mail_accounts ADD COLUMN watched_folders text[] NOT NULL DEFAULT '{}';
