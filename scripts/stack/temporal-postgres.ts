// The real Temporal server (temporal-server, all four services in one process) on the local
// PostgreSQL, with several history shards, and the Temporal Web UI server pointed at it:
// the local stack's second backend, for throughput the dev server (SQLite, one shard)
// cannot reach. Workers and starters connect to it exactly as to the dev server
// (TEMPORAL_ADDRESS). Binaries: scripts/install-temporal-server.sh.
//
// Schema: Temporal's own tool (temporal-sql-tool, schemas embedded in it) sets up and
// upgrades the two databases on every start; both steps are no-ops on a current schema.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ensureDatabase, redactUrl, withDatabase } from '../../lib/storage/db';
import { componentLogger } from '../../lib/observability/logger';
import { isPortFree } from './ports';
import {
  ensureSearchAttributes,
  type LocalTemporal,
  portOpen,
  probe,
  type ServerProcess,
  spawnServer,
  startError,
  withConnection,
} from './temporal-admin';
import { temporalBinary, temporalServerBinary, temporalSqlToolBinary, temporalUiServerBinary } from './temporal-binary';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from './versions';

export type { LocalTemporal };

const log = componentLogger('temporal-postgres');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);

export const DEFAULT_HISTORY_SHARDS = 4;
// pgx prepares each statement once per connection (lib/pq, the postgres12 plugin, has PostgreSQL
// parse and plan every one): about a third less PostgreSQL CPU per email, measured in
// docs/temporal-postgres-tuning.md. The schema tool keeps postgres12; the schema is the same.
export const DEFAULT_SQL_PLUGIN = 'postgres12_pgx';
// How often each service re-reads the namespaces (Temporal's default is 10 s): a search
// attribute registered on a running server is usable in every service after this.
const NAMESPACE_REFRESH_SECONDS = 2;
export const DEFAULT_TEMPORAL_DATABASES = { default: 'temporal', visibility: 'temporal_visibility' };
export const DEFAULT_TEMPORAL_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
// The server and UI config files are named after this environment (<env>.yaml).
const ENV_NAME = 'mailroom';

export interface TemporalPostgresOptions {
  /** Frontend gRPC port (default 7233); the other services' ports are derived from it (temporalPorts). */
  port?: number;
  /** Web UI port (default 8233). */
  uiPort?: number;
  /**
   * History shards (default 4). Fixed for good when the databases are first used: a later
   * start with another count fails, saying so.
   */
  historyShards?: number;
  /** Database names (default temporal and temporal_visibility); tests use throwaway ones. */
  databases?: { default?: string; visibility?: string };
  /** The PostgreSQL server: host, port, user and password are taken from it, the database part is ignored. Default postgres://postgres@127.0.0.1:5432 (trust auth). */
  databaseUrl?: string;
  /** Server log (JSON lines); the Web UI server logs to the same name with -ui before the extension. */
  logFile: string;
  /** Where the generated server and UI configs live. */
  stateDir: string;
  /** Codec server for the Web UI (workers/codec-server.ts). */
  codecEndpoint?: string;
  /** How long the server may take to serve the default namespace; default 120 s. */
  startTimeoutMs?: number;
  /** Connections the server may open to the default store (default 20); tuning experiments. */
  maxConns?: number;
  /** Serve the server's Prometheus metrics on 127.0.0.1:<port> (persistence requests by operation, ...); default off. */
  metricsPort?: number;
  /** The server's PostgreSQL driver (default postgres12_pgx: pgx, with its prepared-statement cache; postgres12 is lib/pq). */
  sqlPlugin?: 'postgres12' | 'postgres12_pgx';
  /** Serve Go's pprof on 127.0.0.1:<port> (CPU profiles of the server); default off. */
  pprofPort?: number;
  /** Dynamic config overrides, key → YAML value (e.g. `matching.numTaskqueueReadPartitions: "1"`); tuning experiments. */
  dynamicConfig?: Record<string, string>;
}

/**
 * The ports one server uses, laid out as in Temporal's development configs (7233 frontend,
 * 7234 history, 7235 matching, 7239 worker, 7243 frontend HTTP, membership 300 below).
 */
export function temporalPorts(port: number) {
  return {
    frontend: port,
    frontendHttp: port + 10,
    history: port + 1,
    matching: port + 2,
    worker: port + 6,
    frontendMembership: port - 300,
    historyMembership: port - 299,
    matchingMembership: port - 298,
    workerMembership: port - 294,
  };
}

/**
 * A frontend port whose derived ports (temporalPorts) are all free now, for tests. Picked
 * below the kernel's ephemeral range (32768+), where outgoing connections would otherwise
 * take one of the neighbours between this check and the server's bind.
 */
export async function freeTemporalPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const free = await Promise.all(Object.values(temporalPorts(port)).map(isPortFree));
    if (free.every(Boolean)) return port;
  }
  throw new Error('no free block of ports for a Temporal server between 19700 and 30010');
}

// Web UI servers this process started, by port. kill() (a crash of the server) leaves the
// UI running, as a separate UI would be in production; the next start on the same ports
// adopts it instead of failing on its port.
const uiServers = new Map<number, { address: string; process: ServerProcess }>();

export async function startTemporalPostgres(options: TemporalPostgresOptions): Promise<LocalTemporal> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const shards = options.historyShards ?? DEFAULT_HISTORY_SHARDS;
  const databases = { ...DEFAULT_TEMPORAL_DATABASES, ...options.databases };
  const pgUrl = options.databaseUrl ?? DEFAULT_TEMPORAL_PG_URL;
  const address = `127.0.0.1:${port}`;
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const ports = temporalPorts(port);
  if (ports.frontendMembership < 1024)
    throw new Error(`port ${port} is too low: the membership ports sit 300 below it; use 1324 or higher`);

  if (await portOpen(port)) return reuse(address, uiUrl, shards);

  for (const [name, p] of Object.entries(ports)) {
    if (p !== port && !(await isPortFree(p))) {
      throw new Error(
        `port ${p} (${name}, derived from frontend port ${port}) is in use; stop what holds it or choose another port`,
      );
    }
  }

  mkdirSync(dirname(options.logFile), { recursive: true });
  await setupSchema(pgUrl, databases);
  const configDir = writeServerConfig(options.stateDir, {
    ports,
    shards,
    databases,
    pgUrl,
    maxConns: options.maxConns ?? 20,
    dynamicConfig: options.dynamicConfig ?? {},
    metricsPort: options.metricsPort,
    pprofPort: options.pprofPort,
    sqlPlugin: options.sqlPlugin ?? DEFAULT_SQL_PLUGIN,
  });

  const server = spawnServer(
    temporalServerBinary(),
    ['--root', options.stateDir, '--config', relativeConfigDir, '--env', ENV_NAME, '--allow-no-auth', 'start'],
    options.logFile,
  );
  const deadline = Date.now() + timeoutMs;
  const failed = async (message: string): Promise<Error> => {
    await server.stop();
    return startError(message, options.logFile);
  };

  // 1. The frontend answers (it serves before any namespace exists).
  let cluster: { historyShardCount?: number | null; persistenceStore?: string | null; serverVersion?: string | null };
  for (;;) {
    if (server.exit() !== undefined)
      throw startError(
        `temporal-server exited (${server.exit()}) before accepting connections; config in ${configDir}`,
        options.logFile,
      );
    try {
      cluster = await withConnection(address, (c) => c.workflowService.getClusterInfo({}));
      break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline)
      throw await failed(`temporal-server did not answer on ${address} within ${timeoutMs / 1000} s`);
    await sleep(500);
  }
  // The pinned version (scripts/versions.env), the one docker-compose.yml runs: an older build
  // left on PATH or in $TEMPORAL_SERVER_BIN would otherwise run silently.
  const serverVersion = TEMPORAL_SERVER_VERSION.replace(/^v/, '');
  if (cluster.serverVersion !== serverVersion)
    throw await failed(
      `temporal-server ${temporalServerBinary()} is version ${cluster.serverVersion}, not ${serverVersion} (scripts/versions.env): ` +
        'run scripts/install-temporal-server.sh, which builds the pinned version',
    );
  // 2. The server quietly uses the shard count stored with the cluster at first start and
  // ignores the config's: a different count would be a silent surprise, so refuse it.
  if (cluster.historyShardCount !== shards) {
    await server.stop();
    throw new Error(
      `databases ${databases.default} and ${databases.visibility} were set up with ${cluster.historyShardCount} history shards, not the ${shards} asked for; ` +
        `the count cannot change once a cluster has started. Either start with ${cluster.historyShardCount} shards (TEMPORAL_HISTORY_SHARDS=${cluster.historyShardCount}), ` +
        `or drop both databases to start empty: dropdb ${databases.default} && dropdb ${databases.visibility} (this deletes every workflow in them)`,
    );
  }
  // 3. The default namespace, which the real server (unlike the dev server) does not create.
  try {
    await ensureDefaultNamespace(address, deadline);
    await settleSearchAttributes(await ensureSearchAttributes(address));
  } catch (err) {
    throw await failed(
      `temporal-server on ${address} is up, but setting up the default namespace failed: ${(err as Error).message}`,
    );
  }

  // 4. The Web UI.
  try {
    await startUi({ ...options, uiPort, address, deadline });
  } catch (err) {
    throw await failed((err as Error).message);
  }
  log.info(
    {
      address,
      uiUrl,
      historyShards: shards,
      databases,
      pg: redactUrl(pgUrl),
      pid: server.pid,
      serverVersion: cluster.serverVersion,
    },
    'Temporal server on PostgreSQL ready',
  );

  return {
    address,
    uiUrl,
    reused: false,
    async stop() {
      const ui = uiServers.get(uiPort);
      if (ui?.address === address) {
        uiServers.delete(uiPort);
        await ui.process.stop();
      }
      await server.stop();
    },
    // A crash, for tests of what survives one: the server dies mid-work, PostgreSQL keeps what it had committed.
    kill: () => server.kill(),
  };
}

/** A frontend already on the port: used if it is a Temporal server on PostgreSQL with the same shard count. */
async function reuse(address: string, uiUrl: string, shards: number): Promise<LocalTemporal> {
  let cluster;
  try {
    await probe(address);
    cluster = await withConnection(address, (c) => c.workflowService.getClusterInfo({}));
  } catch (err) {
    throw new Error(
      `${address} is in use but does not answer as a Temporal frontend with a default namespace (${(err as Error).message}); stop that process or choose another port`,
    );
  }
  if (!cluster.persistenceStore?.startsWith('postgres')) {
    throw new Error(
      `${address} is a Temporal server on ${cluster.persistenceStore} (the dev server?), not on PostgreSQL; stop it or choose another port`,
    );
  }
  if (cluster.historyShardCount !== shards) {
    throw new Error(
      `the Temporal server already running on ${address} has ${cluster.historyShardCount} history shards, not ${shards}; stop it or choose another port`,
    );
  }
  await settleSearchAttributes(await ensureSearchAttributes(address));
  log.info(
    { address, historyShards: cluster.historyShardCount },
    'reusing the Temporal server on PostgreSQL already running',
  );
  return { address, uiUrl, reused: true, stop: async () => {}, kill: async () => {} };
}

/**
 * Waits until search attributes just registered are usable in every service. This server does
 * not re-read them on every request (the dev server does: system.forceSearchAttributesCacheRefreshOnRead,
 * which cost two extra database reads per workflow request here); each service learns of them
 * at its next namespace refresh.
 */
async function settleSearchAttributes(registered: number): Promise<void> {
  if (registered > 0) await sleep((NAMESPACE_REFRESH_SECONDS + 1) * 1000);
}

/** Creates the databases if missing and brings both schemas to the version this server needs. */
async function setupSchema(pgUrl: string, databases: { default: string; visibility: string }): Promise<void> {
  const url = new URL(pgUrl);
  const tool = temporalSqlToolBinary();
  const common = [
    '--plugin',
    'postgres12',
    '--ep',
    url.hostname,
    '-p',
    url.port || '5432',
    '-u',
    decodeURIComponent(url.username || 'postgres'),
  ];
  // The tool reads the password from SQL_PASSWORD too; the environment keeps it out of `ps`.
  const env = { ...process.env, SQL_PASSWORD: decodeURIComponent(url.password) };
  for (const [name, schema] of [
    [databases.default, 'postgresql/v12/temporal'],
    [databases.visibility, 'postgresql/v12/visibility'],
  ]) {
    try {
      if (await ensureDatabase(withDatabase(pgUrl, name))) log.info({ database: name }, 'created database');
    } catch (err) {
      throw new Error(
        `cannot create database ${name} on ${redactUrl(pgUrl)}: ${(err as Error).message}; is PostgreSQL running there, and may this user create databases?`,
      );
    }
    // setup-schema -v 0.0 creates only the version tables (skipped when present); update-schema
    // then applies the embedded versioned schema up to the latest version, skipping what is applied.
    for (const args of [
      ['setup-schema', '-v', '0.0'],
      ['update-schema', '--schema-name', schema],
    ]) {
      try {
        await run(tool, [...common, '--db', name, ...args], { env, maxBuffer: 64 * 2 ** 20 });
      } catch (err) {
        const e = err as Error & { stdout?: string; stderr?: string };
        const tail = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(-10).join('\n');
        throw new Error(`temporal-sql-tool ${args[0]} failed on database ${name}:\n${tail}`);
      }
    }
  }
  log.info({ databases }, 'Temporal schemas up to date');
}

const relativeConfigDir = 'config';

/** Writes <stateDir>/config/<env>.yaml and the dynamic config next to it; returns the directory. */
function writeServerConfig(
  stateDir: string,
  c: {
    ports: ReturnType<typeof temporalPorts>;
    shards: number;
    databases: { default: string; visibility: string };
    pgUrl: string;
    maxConns: number;
    dynamicConfig: Record<string, string>;
    metricsPort?: number;
    pprofPort?: number;
    sqlPlugin: string;
  },
): string {
  const dir = join(stateDir, relativeConfigDir);
  mkdirSync(dir, { recursive: true });
  const url = new URL(c.pgUrl);
  const q = (v: string | number) => JSON.stringify(String(v)); // a JSON string is a YAML string
  const store = (database: string, maxConns: number) => `      sql:
        pluginName: ${c.sqlPlugin}
        databaseName: ${q(database)}
        connectAddr: ${q(`${url.hostname}:${url.port || 5432}`)}
        connectProtocol: tcp
        user: ${q(decodeURIComponent(url.username || 'postgres'))}
        password: ${q(decodeURIComponent(url.password))}
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const service = (grpc: number, membership: number, http?: number) => `    rpc:
      grpcPort: ${grpc}
      membershipPort: ${membership}
      bindOnIP: 127.0.0.1${http ? `\n      httpPort: ${http}` : ''}`;
  const p = c.ports;
  const dynamicConfigFile = join(dir, 'dynamicconfig.yaml');
  writeFileSync(
    join(dir, `${ENV_NAME}.yaml`),
    `# Generated by scripts/stack/temporal-postgres.ts on every start; edits are overwritten.
log:
  stdout: true
  level: warn

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  # Fixed when the cluster first starts: the databases remember it.
  numHistoryShards: ${c.shards}
  datastores:
    postgres-default:
${store(c.databases.default, c.maxConns)}
    postgres-visibility:
${store(c.databases.visibility, 5)}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1${
      c.metricsPort
        ? `
  metrics:
    prometheus:
      timerType: histogram
      listenAddress: ${q(`127.0.0.1:${c.metricsPort}`)}`
        : ''
    }${
      c.pprofPort
        ? `
  pprof:
    host: 127.0.0.1
    port: ${c.pprofPort}`
        : ''
    }

# All four services in this one process, on loopback only.
services:
  frontend:
${service(p.frontend, p.frontendMembership, p.frontendHttp)}
  history:
${service(p.history, p.historyMembership)}
  matching:
${service(p.matching, p.matchingMembership)}
  worker:
${service(p.worker, p.workerMembership)}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: ${q(`127.0.0.1:${p.frontend}`)}
      httpAddress: ${q(`127.0.0.1:${p.frontendHttp}`)}

dcRedirectionPolicy:
  policy: noop

archival:
  history:
    state: disabled
  visibility:
    state: disabled

namespaceDefaults:
  archival:
    history:
      state: disabled
    visibility:
      state: disabled

publicClient:
  hostPort: ${q(`127.0.0.1:${p.frontend}`)}

dynamicConfigClient:
  filepath: ${q(dynamicConfigFile)}
  pollInterval: 10s
`,
    { mode: 0o600 }, // it may hold the database password
  );
  // Mostly the overrides of `temporal server start-dev` (temporal CLI v1.5.1), so both backends
  // behave alike; what differs and why is in docs/temporal-postgres-tuning.md.
  const dynamicConfig: Record<string, string> = {
    // The dev server re-reads search attributes (cluster metadata and the namespace) from the
    // database on every read, so new ones are usable at once. Here that was 31 of 77 persistence
    // requests per email; namespaces are re-read every few seconds instead (settleSearchAttributes).
    'system.forceSearchAttributesCacheRefreshOnRead': 'false',
    'system.namespaceCacheRefreshInterval': `${NAMESPACE_REFRESH_SECONDS}s`,
    // Limits well above what one machine reaches, as the dev server has them.
    'frontend.persistenceMaxQPS': '10000',
    'history.persistenceMaxQPS': '45000',
    'history.hostLevelCacheMaxSize': '8096',
    'frontend.namespaceRPS.visibility': '100',
    'limit.maxIDLength': '255',
    ...c.dynamicConfig,
  };
  writeFileSync(
    dynamicConfigFile,
    `# Generated by scripts/stack/temporal-postgres.ts on every start (see the comments there).
${Object.entries(dynamicConfig)
  .map(([key, value]) => `${key}:\n  - value: ${value}\n`)
  .join('')}`,
  );
  return dir;
}

/** Creates the default namespace unless it exists, and waits until the frontend serves it. */
async function ensureDefaultNamespace(address: string, deadline: number): Promise<void> {
  try {
    await probe(address);
    return;
  } catch (err) {
    // gRPC NOT_FOUND (5): no namespace yet. Anything else: the server is not ready; the loop below retries.
    if ((err as { code?: number }).code === 5) {
      try {
        await run(temporalBinary(), [
          'operator',
          'namespace',
          'create',
          '--namespace',
          'default',
          '--retention',
          '72h',
          '--address',
          address,
        ]);
        log.info({ address }, 'created namespace default');
      } catch (e) {
        // Another starter may have created it meanwhile; the probe below decides.
        log.warn({ err: (e as Error).message }, 'temporal operator namespace create failed');
      }
    }
  }
  // describeNamespace reads the database; most other calls (search attributes, starting
  // workflows) go through the services' namespace caches, which learn of a new namespace a
  // moment later. Listing search attributes is one of those.
  for (;;) {
    try {
      await probe(address);
      await withConnection(address, (c) => c.operatorService.listSearchAttributes({ namespace: 'default' }));
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`namespace default not available: ${(err as Error).message}`);
      await sleep(500);
    }
  }
}

/**
 * Whether the Web UI serves: its page, and its API, which answers only once the UI server is
 * connected to the frontend. After a kill() and restart of the server, the running UI keeps
 * answering its page but gives 503 on the API until its gRPC connection is back.
 */
async function uiServes(uiPort: number): Promise<boolean> {
  for (const path of ['/', '/api/v1/namespaces']) {
    try {
      if (!(await fetch(`http://127.0.0.1:${uiPort}${path}`, { signal: AbortSignal.timeout(2000) })).ok) return false;
    } catch {
      return false; // not up yet
    }
  }
  return true;
}

/** The version the Web UI server reports in its settings (`Version`), or "unknown". */
async function uiVersion(uiPort: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${uiPort}/api/v1/settings`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { Version?: unknown };
    return typeof body.Version === 'string' ? body.Version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Starts (or adopts, after a kill()) the Web UI server for address, and waits until it serves. */
async function startUi(
  o: TemporalPostgresOptions & { uiPort: number; address: string; deadline: number },
): Promise<void> {
  const existing = uiServers.get(o.uiPort);
  if (existing && existing.process.exit() === undefined && existing.address === o.address) {
    // Adopted after a restart of the server: ready once it reaches the new frontend.
    while (!(await uiServes(o.uiPort))) {
      if (Date.now() > o.deadline)
        throw new Error(
          `the Web UI on port ${o.uiPort} did not reach the restarted server at ${o.address} in time (its API still fails)`,
        );
      await sleep(300);
    }
    return;
  }
  if (!(await isPortFree(o.uiPort)))
    throw new Error(`Web UI port ${o.uiPort} is in use; stop what holds it or choose another UI port`);

  const dir = join(o.stateDir, 'ui');
  mkdirSync(dir, { recursive: true });
  const q = JSON.stringify;
  writeFileSync(
    join(dir, `${ENV_NAME}.yaml`),
    `# Generated by scripts/stack/temporal-postgres.ts on every start.
temporalGrpcAddress: ${q(o.address)}
host: 127.0.0.1
port: ${o.uiPort}
enableUi: true
defaultNamespace: default
# No fetch of Temporal's news feed from the browser (a local, often offline stack).
disableNewsFetch: true
hideLogs: true
cors:
  # Plain HTTP on loopback: a Secure cookie would never be sent back.
  cookieInsecure: true
${
  o.codecEndpoint
    ? `codec:
  endpoint: ${q(o.codecEndpoint)}
  # The codec server (workers/codec-server.ts) accepts the browser's session cookie only
  # when the UI sends cross-origin credentials; this turns that on for every user.
  includeCredentials: true
`
    : ''
}`,
  );
  const uiLog = o.logFile.replace(/(\.log)?$/, '-ui.log');
  const ui = spawnServer(
    temporalUiServerBinary(),
    ['--root', o.stateDir, '--config', 'ui', '--env', ENV_NAME, 'start'],
    uiLog,
  );
  uiServers.set(o.uiPort, { address: o.address, process: ui });
  for (;;) {
    if (ui.exit() !== undefined) {
      uiServers.delete(o.uiPort);
      throw startError(`temporal-ui-server exited (${ui.exit()}) before serving on port ${o.uiPort}`, uiLog);
    }
    if (await uiServes(o.uiPort)) {
      const version = await uiVersion(o.uiPort);
      const pinned = TEMPORAL_UI_VERSION.replace(/^v/, '');
      if (version === pinned) return;
      uiServers.delete(o.uiPort);
      await ui.stop();
      throw new Error(
        `temporal-ui-server ${temporalUiServerBinary()} is version ${version}, not ${pinned} (scripts/versions.env): ` +
          'run scripts/install-temporal-server.sh, which builds the pinned version',
      );
    }
    if (Date.now() > o.deadline) {
      uiServers.delete(o.uiPort);
      await ui.stop();
      throw startError(`temporal-ui-server did not serve http://127.0.0.1:${o.uiPort}/ in time`, uiLog);
    }
    await sleep(300);
  }
}
