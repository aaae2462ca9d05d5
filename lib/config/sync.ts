// Configuration of the account-sync side (sync worker and its starters), validated like
// lib/config/index.ts: a bad value stops the process at start with the variable's name, never in
// the middle of a sync. MAILROOM_SECRET_KEYS is checked by lib/sync-store/crypto.ts when it is used,
// so commands that never touch a password (list-accounts, reconcile) do not need it.
import { z } from 'zod';
import { SYNC_TASK_QUEUE } from '../../contracts/sync';
import { parseEnvironment } from './env';

const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), 'must be true or false');

/** A validated boolean variable's value (see `bool`) as a boolean. */
const isOn = (v: string) => ['true', '1', 'yes'].includes(v.toLowerCase());

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/mailroom';

const schema = z.object({
  DATABASE_URL: z.string().trim().min(1).default(DEFAULT_DATABASE_URL),
  DATABASE_POOL_SIZE: positiveInt.default(10),
  SYNC_TASK_QUEUE: z.string().trim().min(1).default(SYNC_TASK_QUEUE),
  // Messages fetched and committed together; each batch advances the folder checkpoint.
  SYNC_BATCH_SIZE: positiveInt.max(5000).default(100),
  // A batch is cut short once its raw messages reach this many bytes (memory bound).
  SYNC_BATCH_MAX_BYTES: positiveInt.default(20 * 1024 * 1024),
  // Larger messages are stored as metadata plus an imap:// pointer instead of raw bytes.
  SYNC_MAX_MESSAGE_BYTES: positiveInt.default(25 * 1024 * 1024),
  // Batches per activity call; the workflow loops, and continues-as-new after many calls.
  SYNC_BATCHES_PER_ACTIVITY: positiveInt.default(20),
  // Pause between batches, to be gentle with servers that throttle (0 = none).
  SYNC_BATCH_PAUSE_MS: nonNegativeInt.default(0),
  SYNC_DEFAULT_INTERVAL_MINUTES: positiveInt.default(15),
  SYNC_IMAP_CONNECT_TIMEOUT_MS: positiveInt.default(30_000),
  SYNC_IMAP_SOCKET_TIMEOUT_MS: positiveInt.default(120_000),
  SYNC_MAX_CONCURRENT_ACTIVITIES: positiveInt.default(4),
  // IDLE watches (and a watcher's wait for a sync to finish) run on their own task queue,
  // SYNC_TASK_QUEUE + '-watch', so the watches of many idle accounts never hold the slots the
  // syncs need: this many accounts can be watched at once per sync worker (a watch costs one IMAP
  // connection and little else; more watchers wait for a slot, their accounts still sync on schedule).
  SYNC_MAX_WATCHES: positiveInt.max(100_000).default(1000),
  // Workflow runs the sync worker keeps in memory between their tasks (the SDK's sticky cache,
  // least recently used first out). Each costs about 1.7 MiB (the SDK's own estimate, and what
  // an idle watched account cost here), and an idle watcher wakes once per
  // SYNC_WATCH_MAX_IDLE_SECONDS: past this many, idle watchers are evicted and replay their short
  // history when they wake, while the syncs under way stay cached. Unset, the SDK sizes the cache
  // to the heap (thousands), which puts most of a watched account's memory here.
  SYNC_MAX_CACHED_WORKFLOWS: positiveInt.min(2).max(100_000).default(100),
  // sync_runs kept per account: a sync's finish deletes the account's runs older than this many
  // days, beyond its 20 newest (with a watcher an account has a run per burst of new mail).
  // 0 keeps every run.
  SYNC_RUNS_KEEP_DAYS: nonNegativeInt.max(36_500).default(30),
  // Hard deadline of one IMAP activity attempt, enforced by the worker (connections closed,
  // attempt retried); a fetch activity starts no new batch after a quarter of it.
  SYNC_ACTIVITY_DEADLINE_SECONDS: positiveInt.default(1800),
  // An OAuth2 access token is refreshed before a login when it expires within this margin.
  SYNC_OAUTH2_REFRESH_MARGIN_SECONDS: nonNegativeInt.default(300),
  SYNC_OAUTH2_TIMEOUT_MS: positiveInt.default(30_000),
  // Prometheus /metrics of the sync worker (0 = off).
  SYNC_METRICS_PORT: nonNegativeInt.max(65535).default(8001),
  // Its bind address: the same variable and default as the inbound worker's (lib/config/index.ts).
  METRICS_HOST: z.string().trim().min(1).default('0.0.0.0'),
  // IMAP IDLE watchers (workflows/watchAccount.ts): one per enabled account, started and stopped
  // by the reconciler beside the account's Schedule. false: no watchers (running ones are stopped
  // by the next reconcile), the Schedules alone sync.
  SYNC_WATCH: bool.default('true'),
  // After the first change the server reports, wait this long for more before asking for one sync.
  SYNC_WATCH_COALESCE_MS: nonNegativeInt.max(60_000).default(300),
  // A watch activity returns after this long without a change (the workflow re-checks the account,
  // and may continue as new); the connection's IDLE is re-issued every SYNC_WATCH_REISSUE_IDLE_SECONDS.
  SYNC_WATCH_MAX_IDLE_SECONDS: positiveInt.max(86_400).default(600),
  // RFC 2177: a client should re-issue IDLE at least every 29 minutes.
  SYNC_WATCH_REISSUE_IDLE_SECONDS: positiveInt.max(1740).default(1500),
  // A watcher whose connection was lost after it was up tries again about every half second
  // for this long inside its watch (a server's restart, a network blip), then backs off as below.
  // 0: straight to the backoff.
  SYNC_WATCH_RECONNECT_WITHIN_SECONDS: nonNegativeInt.max(600).default(10),
  // How often a watcher looks (STATUS, on its own connection) at the folders an account watches
  // besides INBOX (account:set --watch-folders); a change there is synced like one in INBOX.
  SYNC_WATCH_FOLDER_POLL_SECONDS: positiveInt.max(3600).default(30),
  // Where the server offers NOTIFY (RFC 5465), it pushes those folders' changes instead, at once.
  // false: poll them on every server.
  SYNC_WATCH_NOTIFY: bool.default('true'),
  // Reconnect backoff of a watcher whose connection failed: doubles from 1 s up to this.
  SYNC_WATCH_RECONNECT_MAX_SECONDS: positiveInt.default(300),
  // Schedules of watched accounts run at least this many minutes apart (the watcher does the
  // prompt work, the Schedule is the safety net). Unset: each account's own interval.
  SYNC_WATCHED_INTERVAL_MINUTES: positiveInt.optional(),
  // IMAP connections one account may have open at once: the watcher's one plus the sync's one
  // (a sync's activities run one after another, each with one connection). 1: the watcher gives
  // its connection up while a sync runs.
  SYNC_IMAP_CONNECTIONS_PER_ACCOUNT: positiveInt.max(100).default(2),
  // How long a sync activity's IMAP connection waits, logged in, for its run's next activity; 0: never.
  SYNC_IMAP_REUSE_MS: z.coerce.number().int().min(0).max(60_000).default(2000),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  // New-message events (docs/account-sync.md "New-message events"). Off unless a workflow type
  // or a webhook URL is configured (here or on the account); SYNC_EVENTS_ENABLED=false turns
  // them off for every account that does not turn them on itself (account:set --events on).
  SYNC_EVENTS_ENABLED: bool.default('true'),
  SYNC_EVENTS_WORKFLOW_TYPE: z.string().trim().min(1).optional(),
  SYNC_EVENTS_TASK_QUEUE: z.string().trim().min(1).default('mailroom-message-events'),
  // URL and secret are checked below, not by zod: its errors quote the value.
  SYNC_WEBHOOK_URL: z.string().optional(),
  SYNC_WEBHOOK_SECRET: z.string().optional(),
  SYNC_WEBHOOK_TIMEOUT_MS: positiveInt.default(10_000),
  SYNC_WEBHOOK_RETRY_INITIAL_SECONDS: positiveInt.default(10),
  SYNC_WEBHOOK_RETRY_MAX_SECONDS: positiveInt.default(3600),
  SYNC_WEBHOOK_GIVE_UP_SECONDS: positiveInt.default(3 * 24 * 3600),
});

/** What the sync worker does with new messages (docs/account-sync.md "New-message events"). */
export interface MessageEventsConfig {
  /** Events for accounts whose events_enabled is NULL (when something is configured to receive them). */
  enabledByDefault: boolean;
  /** The application's workflow started once per new message, or null. */
  workflowType: string | null;
  workflowTaskQueue: string;
  /** Default webhook URL (an account's webhook_url overrides it), or null. */
  webhookUrl: string | null;
  /** HMAC keys, first one current (comma-separated in SYNC_WEBHOOK_SECRET). Never logged. */
  webhookSecrets: string[];
  webhookTimeoutMs: number;
  webhookRetryInitialSeconds: number;
  webhookRetryMaxSeconds: number;
  webhookGiveUpSeconds: number;
}

/** No events (activities built without a configuration: tests, scripts, bench). */
export const NO_MESSAGE_EVENTS: MessageEventsConfig = {
  enabledByDefault: false,
  workflowType: null,
  workflowTaskQueue: 'mailroom-message-events',
  webhookUrl: null,
  webhookSecrets: [],
  webhookTimeoutMs: 10_000,
  webhookRetryInitialSeconds: 10,
  webhookRetryMaxSeconds: 3600,
  webhookGiveUpSeconds: 3 * 24 * 3600,
};

/** Shortest accepted webhook secret: HMAC keys shorter than this are guessable. */
export const MIN_WEBHOOK_SECRET_LENGTH = 16;

/** Why a webhook URL cannot be used (http or https, absolute, no credentials in it), or null. Never quotes it. */
export function webhookUrlProblem(value: string): string | null {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'is not an absolute URL';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `must be http:// or https://, not ${u.protocol}//`;
  if (u.username || u.password) return 'must not hold a user or password (the signature authenticates the sender)';
  return null;
}

export interface SyncConfig {
  databaseUrl: string;
  databasePoolSize: number;
  taskQueue: string;
  batchSize: number;
  batchMaxBytes: number;
  maxMessageBytes: number;
  batchesPerActivity: number;
  batchPauseMs: number;
  defaultIntervalMinutes: number;
  imapConnectTimeoutMs: number;
  imapSocketTimeoutMs: number;
  maxConcurrentActivities: number;
  activityDeadlineMs: number;
  oauth2RefreshMarginMs: number;
  oauth2TimeoutMs: number;
  metricsPort: number;
  metricsHost: string;
  /** Watchers on (SYNC_WATCH). */
  watch: boolean;
  watchCoalesceMs: number;
  watchMaxIdleSeconds: number;
  watchReissueIdleSeconds: number;
  watchReconnectMaxSeconds: number;
  /** SYNC_WATCH_RECONNECT_WITHIN_SECONDS: quick reconnects inside a watch. */
  watchReconnectWithinSeconds: number;
  /** SYNC_WATCH_FOLDER_POLL_SECONDS: STATUS of the other watched folders. */
  watchFolderPollSeconds: number;
  /** SYNC_WATCH_NOTIFY: NOTIFY for them where the server offers it. */
  watchNotify: boolean;
  /** Least interval of a watched account's Schedule, in seconds; undefined: the account's own. */
  watchedIntervalSeconds?: number;
  /** SYNC_MAX_WATCHES: watch activities at once per worker (their own task queue). */
  maxWatches: number;
  /** SYNC_MAX_CACHED_WORKFLOWS: the sync worker's sticky cache. */
  maxCachedWorkflows: number;
  /** SYNC_RUNS_KEEP_DAYS: sync_runs retention (0: keep all). */
  runsKeepDays: number;
  /** SYNC_IMAP_CONNECTIONS_PER_ACCOUNT. */
  connectionsPerAccount: number;
  /** SYNC_IMAP_REUSE_MS (activities/sync/session.ts). */
  sessionReuseMs: number;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
  events: MessageEventsConfig;
}

export class SyncConfigError extends Error {
  override name = 'SyncConfigError';
}

export function loadSyncConfig(env: NodeJS.ProcessEnv = process.env): SyncConfig {
  const e = parseEnvironment(schema, env, 'mailroom sync configuration', SyncConfigError);
  return {
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    taskQueue: e.SYNC_TASK_QUEUE,
    batchSize: e.SYNC_BATCH_SIZE,
    batchMaxBytes: e.SYNC_BATCH_MAX_BYTES,
    maxMessageBytes: e.SYNC_MAX_MESSAGE_BYTES,
    batchesPerActivity: e.SYNC_BATCHES_PER_ACTIVITY,
    batchPauseMs: e.SYNC_BATCH_PAUSE_MS,
    defaultIntervalMinutes: e.SYNC_DEFAULT_INTERVAL_MINUTES,
    imapConnectTimeoutMs: e.SYNC_IMAP_CONNECT_TIMEOUT_MS,
    imapSocketTimeoutMs: e.SYNC_IMAP_SOCKET_TIMEOUT_MS,
    maxConcurrentActivities: e.SYNC_MAX_CONCURRENT_ACTIVITIES,
    maxWatches: e.SYNC_MAX_WATCHES,
    maxCachedWorkflows: e.SYNC_MAX_CACHED_WORKFLOWS,
    runsKeepDays: e.SYNC_RUNS_KEEP_DAYS,
    activityDeadlineMs: e.SYNC_ACTIVITY_DEADLINE_SECONDS * 1000,
    oauth2RefreshMarginMs: e.SYNC_OAUTH2_REFRESH_MARGIN_SECONDS * 1000,
    oauth2TimeoutMs: e.SYNC_OAUTH2_TIMEOUT_MS,
    metricsPort: e.SYNC_METRICS_PORT,
    metricsHost: e.METRICS_HOST,
    watch: isOn(e.SYNC_WATCH),
    watchCoalesceMs: e.SYNC_WATCH_COALESCE_MS,
    watchMaxIdleSeconds: e.SYNC_WATCH_MAX_IDLE_SECONDS,
    watchReissueIdleSeconds: e.SYNC_WATCH_REISSUE_IDLE_SECONDS,
    watchReconnectMaxSeconds: e.SYNC_WATCH_RECONNECT_MAX_SECONDS,
    watchReconnectWithinSeconds: e.SYNC_WATCH_RECONNECT_WITHIN_SECONDS,
    watchFolderPollSeconds: e.SYNC_WATCH_FOLDER_POLL_SECONDS,
    watchNotify: isOn(e.SYNC_WATCH_NOTIFY),
    watchedIntervalSeconds:
      e.SYNC_WATCHED_INTERVAL_MINUTES === undefined ? undefined : e.SYNC_WATCHED_INTERVAL_MINUTES * 60,
    connectionsPerAccount: e.SYNC_IMAP_CONNECTIONS_PER_ACCOUNT,
    sessionReuseMs: e.SYNC_IMAP_REUSE_MS,
    logLevel: e.LOG_LEVEL,
    events: messageEventsConfig(e),
  };
}

function messageEventsConfig(e: z.infer<typeof schema>): MessageEventsConfig {
  const problems: string[] = [];
  const url = e.SYNC_WEBHOOK_URL?.trim() || null;
  const urlProblem = url ? webhookUrlProblem(url) : null;
  if (urlProblem) problems.push(`SYNC_WEBHOOK_URL: ${urlProblem}`);
  const secrets = (e.SYNC_WEBHOOK_SECRET ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (secrets.some((s) => s.length < MIN_WEBHOOK_SECRET_LENGTH))
    problems.push(
      `SYNC_WEBHOOK_SECRET: each secret must be at least ${MIN_WEBHOOK_SECRET_LENGTH} characters (value not shown)`,
    );
  if (url && !secrets.length)
    problems.push('SYNC_WEBHOOK_SECRET: required with SYNC_WEBHOOK_URL (webhooks are always signed)');
  if (e.SYNC_WEBHOOK_RETRY_MAX_SECONDS < e.SYNC_WEBHOOK_RETRY_INITIAL_SECONDS)
    problems.push('SYNC_WEBHOOK_RETRY_MAX_SECONDS: must not be less than SYNC_WEBHOOK_RETRY_INITIAL_SECONDS');
  if (problems.length)
    throw new SyncConfigError(
      `Invalid mailroom sync configuration, fix these environment variables:\n  ${problems.join('\n  ')}`,
    );
  return {
    enabledByDefault: isOn(e.SYNC_EVENTS_ENABLED),
    workflowType: e.SYNC_EVENTS_WORKFLOW_TYPE ?? null,
    workflowTaskQueue: e.SYNC_EVENTS_TASK_QUEUE,
    webhookUrl: url,
    webhookSecrets: secrets,
    webhookTimeoutMs: e.SYNC_WEBHOOK_TIMEOUT_MS,
    webhookRetryInitialSeconds: e.SYNC_WEBHOOK_RETRY_INITIAL_SECONDS,
    webhookRetryMaxSeconds: e.SYNC_WEBHOOK_RETRY_MAX_SECONDS,
    webhookGiveUpSeconds: e.SYNC_WEBHOOK_GIVE_UP_SECONDS,
  };
}

/** Environment variable a starter reads an IMAP password from when stdin is not used. */
export const PASSWORD_ENV = 'MAILROOM_IMAP_PASSWORD';
/** Environment variable a starter reads an OAuth2 refresh token from when stdin is not used. */
export const REFRESH_TOKEN_ENV = 'MAILROOM_OAUTH2_REFRESH_TOKEN';
/** Environment variable with the OAuth2 client secret (or --client-secret-file). */
export const CLIENT_SECRET_ENV = 'MAILROOM_OAUTH2_CLIENT_SECRET';

/** $MAILROOM_OAUTH2_CLIENT_SECRET, as set (undefined when unset). */
export function clientSecretFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env[CLIENT_SECRET_ENV];
}

/** DATABASE_URL, or the local default, for processes that need only the database (migrations, scripts). */
export function databaseUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

/**
 * The IMAP password for add-account / update-password: $MAILROOM_IMAP_PASSWORD, else the
 * first line of stdin (typed without echo on a terminal). Never argv: command lines are
 * visible to every local user in `ps` and end up in shell history.
 */
export async function readPasswordInput(
  env: NodeJS.ProcessEnv = process.env,
  stdin: NodeJS.ReadStream = process.stdin,
  prompt: NodeJS.WriteStream = process.stderr,
): Promise<string> {
  return readSecretInput({ envName: PASSWORD_ENV, what: 'IMAP password' }, env, stdin, prompt);
}

/** A secret (password, refresh token) from its environment variable, else the first line of stdin; never from argv. */
export async function readSecretInput(
  secret: { envName: string; what: string },
  env: NodeJS.ProcessEnv = process.env,
  stdin: NodeJS.ReadStream = process.stdin,
  prompt: NodeJS.WriteStream = process.stderr,
): Promise<string> {
  const fromEnv = env[secret.envName];
  if (fromEnv) return fromEnv;
  if (stdin.isTTY) {
    prompt.write(`${secret.what} (not echoed): `);
    stdin.setRawMode(true);
  }
  const value = await new Promise<string>((resolve, reject) => {
    let data = '';
    const done = () => {
      stdin.off('data', onData);
      stdin.off('end', done);
      stdin.off('error', reject);
      if (stdin.isTTY) {
        stdin.setRawMode(false);
        prompt.write('\n');
      }
      stdin.pause();
      resolve(data.split(/\r\n|\r|\n/)[0]);
    };
    const onData = (chunk: Buffer | string) => {
      const s = chunk.toString();
      if (stdin.isTTY && s.includes('\u0003')) {
        stdin.setRawMode(false);
        process.exit(130);
      }
      data += s;
      if (/[\r\n]/.test(data)) done();
    };
    stdin.on('data', onData);
    stdin.once('end', done);
    stdin.once('error', reject);
    stdin.resume();
  });
  if (!value) {
    throw new SyncConfigError(
      `No ${secret.what} given: pipe it on stdin (e.g. "printf '%s\\n' \\"$SECRET\\" | ...") or set ${secret.envName}; it is never accepted as an argument`,
    );
  }
  return value;
}
