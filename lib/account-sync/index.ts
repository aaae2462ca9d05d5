// Keeping Temporal in step with the accounts: Schedules, IDLE watchers, and sync requests that
// never run two syncs of one account at once. Below the starters and the activities, which both
// use it (sync:reconcile, account:add/set/remove, sync:now; the watcher's requestSync activity).
export * from './schedules';
export * from './watchers';
export * from './reconcile';
export * from './sync-now';
