-- One sync of an account at a time (lib/sync-store/runs.ts claimSyncRun): every sync start looks
-- for a run of the account still recorded as running. With IDLE watchers an account has a sync
-- run per burst of new mail, so its finished runs pile up; this index holds only the running ones.
CREATE INDEX sync_runs_running_idx ON sync_runs (user_id, account_id) WHERE status = 'running';
