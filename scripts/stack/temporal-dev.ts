// Runs the real Temporal server (`temporal server start-dev`, SQLite file) for the demo,
// with mailroom's search attributes, keeping history across restarts in `dbFile`.
//
// With a codec endpoint, the Web UI should decode payloads as soon as the operator has signed
// in at the codec server (its session cookie). The dev server's embedded UI
// (`--ui-codec-endpoint`) cannot send cookies cross-origin (the CLI has no flag for the UI's
// `codec.includeCredentials`), so it would show "Codec Server could not connect" until each
// browser changed a setting by hand. The dev server then runs headless, and the same UI server
// (temporal-ui-server, the version the CLI embeds: scripts/install-temporal-server.sh) serves the
// UI with the endpoint and includeCredentials set, as the compose file's temporal-ui does.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../contracts/search-attributes';
import { componentLogger } from '../../lib/observability/logger';
import { ensureSearchAttributes, type LocalTemporal, portOpen, probe, spawnServer, startError } from './temporal-admin';
import { temporalBinary, temporalUiServerBinary } from './temporal-binary';

export type { LocalTemporal };

const log = componentLogger('temporal-dev');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TemporalDevOptions {
  dbFile: string;
  port?: number;
  uiPort?: number;
  logFile: string;
  /** How long the server may take to answer; default 60 s. */
  startTimeoutMs?: number;
  /** Codec server for the Web UI (workers/codec-server.ts), called with the browser's cookie. */
  codecEndpoint?: string;
}

/** The UI server binary, or undefined (then the embedded UI, without credentials) when it is not installed. */
function uiServerBinary(): string | undefined {
  try {
    return temporalUiServerBinary();
  } catch {
    return undefined;
  }
}

export async function startTemporalDevServer(options: TemporalDevOptions): Promise<LocalTemporal> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const address = `127.0.0.1:${port}`;
  const uiUrl = `http://127.0.0.1:${uiPort}`;

  if (await portOpen(port)) {
    try {
      await probe(address);
    } catch (err) {
      throw new Error(
        `port ${port} is in use but does not answer as a Temporal frontend (${(err as Error).message}); stop that process or choose another port`,
      );
    }
    await ensureSearchAttributes(address);
    log.info({ address }, 'reusing the Temporal server already running');
    return { address, uiUrl, reused: true, stop: async () => {}, kill: async () => {} };
  }

  mkdirSync(dirname(options.dbFile), { recursive: true });
  mkdirSync(dirname(options.logFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    options.dbFile,
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--ip',
    '127.0.0.1',
    '--log-level',
    'warn',
  ];
  for (const flag of SEARCH_ATTRIBUTE_FLAGS) args.push('--search-attribute', flag);
  const uiBinary = options.codecEndpoint ? uiServerBinary() : undefined;
  if (uiBinary) args.push('--headless');
  else if (options.codecEndpoint) {
    args.push('--ui-codec-endpoint', options.codecEndpoint);
    log.warn(
      { codecEndpoint: options.codecEndpoint },
      "temporal-ui-server is not installed (npm run setup): the dev server's own UI cannot send the codec server's cookie; set \"Include cross-origin credentials\" in the UI's codec settings (docs/privacy.md)",
    );
  }
  const server = spawnServer(temporalBinary(), args, options.logFile);
  let ui: ReturnType<typeof spawnServer> | undefined;
  const stop = async () => {
    await ui?.stop();
    await server.stop();
  };
  // A crash, for tests of what survives one: no shutdown, the SQLite file as the kill left it.
  const kill = async () => {
    await ui?.kill();
    await server.kill();
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (server.exit() !== undefined)
      throw startError(`temporal server exited (${server.exit()}) before accepting connections`, options.logFile);
    try {
      await probe(address);
      break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw startError(
        `temporal server did not accept connections on ${address} within ${(options.startTimeoutMs ?? 60_000) / 1000} s`,
        options.logFile,
      );
    }
    await sleep(500);
  }
  if (uiBinary && options.codecEndpoint) {
    try {
      ui = await startUiServer(uiBinary, {
        address,
        uiPort,
        codecEndpoint: options.codecEndpoint,
        logFile: options.logFile,
        dir: dirname(options.dbFile),
        deadline,
      });
    } catch (err) {
      await server.stop();
      throw err;
    }
  }
  log.info({ address, uiUrl, dbFile: options.dbFile, pid: server.pid }, 'Temporal dev server ready');
  return { address, uiUrl, reused: false, stop, kill };
}

/** The Web UI server for the dev server at `address`, with the codec endpoint called with credentials. */
async function startUiServer(
  binary: string,
  o: { address: string; uiPort: number; codecEndpoint: string; logFile: string; dir: string; deadline: number },
): Promise<ReturnType<typeof spawnServer>> {
  const configDir = join(o.dir, 'ui');
  mkdirSync(configDir, { recursive: true });
  const q = JSON.stringify;
  writeFileSync(
    join(configDir, 'demo.yaml'),
    `# Generated by scripts/stack/temporal-dev.ts on every start: the dev server's UI settings, plus
# codec.includeCredentials, which the CLI cannot set.
temporalGrpcAddress: ${q(o.address)}
host: 127.0.0.1
port: ${o.uiPort}
enableUi: true
defaultNamespace: default
notifyOnNewVersion: false
hideLogs: true
cors:
  # Plain HTTP on loopback: a Secure cookie would never be sent back.
  cookieInsecure: true
codec:
  endpoint: ${q(o.codecEndpoint)}
  # The codec server (workers/codec-server.ts) accepts the session cookie from its /login page;
  # the browser sends it cross-origin only when the UI asks for credentials.
  includeCredentials: true
  # What the UI's banner says before the browser has signed in.
  defaultErrorMessage: ${q(`Sign in at ${o.codecEndpoint}/login with the codec token (CODEC_SERVER_TOKEN, printed by the demo), then reload`)}
  defaultErrorLink: ${q(`${o.codecEndpoint}/login`)}
`,
  );
  const uiLog = o.logFile.replace(/(\.log)?$/, '-ui.log');
  const ui = spawnServer(binary, ['--root', o.dir, '--config', 'ui', '--env', 'demo', 'start'], uiLog);
  for (;;) {
    if (ui.exit() !== undefined)
      throw startError(`temporal-ui-server exited (${ui.exit()}) before serving on port ${o.uiPort}`, uiLog);
    try {
      if ((await fetch(`http://127.0.0.1:${o.uiPort}/`, { signal: AbortSignal.timeout(2000) })).ok) return ui;
    } catch {
      /* not up yet */
    }
    if (Date.now() > o.deadline) {
      await ui.stop();
      throw startError(`temporal-ui-server did not serve http://127.0.0.1:${o.uiPort}/ in time`, uiLog);
    }
    await sleep(300);
  }
}
