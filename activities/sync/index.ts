// Account-sync activities, created by a factory that receives the pg Pool and the keyring
// (dependency injection as in the samples' activities-dependency-injection): the worker
// builds them once, tests build them against their own database. One file per step:
// runs.ts (sync_runs), prepare-folders.ts, fetch-new.ts, watch.ts (the IDLE watcher); login.ts and
// session.ts are the login and IMAP session every step shares; events.ts the new-message events.
//
// Activities receive ids only and load what they need (account, password or OAuth2 tokens)
// themselves, so credentials and message bodies never enter workflow history. Each IMAP
// activity opens its own connection (an activity may be retried on another worker at any
// time), or takes over the one its sync run's previous activity left logged in on this worker
// for a moment (session.ts): one login for a pass, not one per step.
//
// Bounded by us, not by the server: imapflow refuses literals above SYNC_MAX_MESSAGE_BYTES
// (the server's size claims are not trusted), answers to FETCH are checked against what was
// asked, and heartbeats come from progress (messages or bytes moved, lib/temporal/heartbeat.ts):
// a server that stalls or drips is given up on and the attempt retried with backoff. A message
// that cannot be stored is recorded in sync_errors and skipped; the rest of its batch commits.
import { componentLogger } from '../../lib/observability/logger';
import { createStore } from '../../lib/sync-store';
import { NO_MESSAGE_EVENTS } from '../../lib/config/sync';
import { SYNC_TASK_QUEUE } from '../../contracts/sync';
import { createMessageEvents } from './events';
import { createFetchNew } from './fetch-new';
import { createAccountLogin } from './login';
import { createPrepareFolders } from './prepare-folders';
import { createSyncRunActivities } from './runs';
import { createSessions } from './session';
import { createWatchActivities } from './watch';
import type { SyncActivityDeps } from './types';

export type { AccountRef, BeginSyncResult, FetchNewResult, PrepareFoldersResult, SyncActivityDeps } from './types';

export function createSyncActivities(deps: SyncActivityDeps) {
  const store = createStore(deps.pool);
  const log = deps.logger ?? componentLogger('sync-activities');
  const login = createAccountLogin({ ...deps, logger: log, store });
  const sessions = createSessions(login, deps.config, log);
  const temporal = deps.temporal;
  const watchOptions = { deadlineMs: deps.config.activityDeadlineMs ?? 1_800_000 };
  // New-message events: recorded with each batch, dispatched after it and in finishSync.
  const events = createMessageEvents({
    store,
    temporal: deps.temporal,
    config: deps.config.events ?? NO_MESSAGE_EVENTS,
    taskQueue: deps.config.taskQueue ?? SYNC_TASK_QUEUE,
    log,
  });
  // The activity names are those in the recorded histories and must not change.
  return {
    // beginSync, recordFolderError, finishSync
    ...createSyncRunActivities({ store, events, sessions, keepDays: deps.config.runsKeepDays ?? 0, log }),
    ...createPrepareFolders({ store, sessions, log, watchOptions }), // prepareFolders
    ...createFetchNew({ store, sessions, config: deps.config, watchOptions, events }), // fetchNewMessages
    ...events.activities, // postMessageWebhook, recordMessageWebhookOutcome (workflows/messageWebhook.ts)
    // The IDLE watcher's: watchMailbox, requestSync, awaitSyncsDone, recordWatcherState.
    ...createWatchActivities({
      store,
      sessions,
      log,
      config: deps.config,
      temporalClient: temporal && (() => temporal),
    }),
  };
}

export type SyncActivities = ReturnType<typeof createSyncActivities>;
