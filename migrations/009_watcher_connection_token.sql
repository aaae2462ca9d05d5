-- Which claim holds the watcher's connection (claimWatcherConnection): a token per claim, so a
-- watcher replaced while it was stopping (an account disabled and enabled again within the ~25 s
-- the old watch needs to notice its cancel) clears only its own claim when it closes, never its
-- replacement's, and the sync's connection budget keeps seeing the new watcher's connection.
-- New column only: the build before it neither reads nor writes it (it clears `connected` as before).
ALTER TABLE account_watchers ADD COLUMN connection_token text;
