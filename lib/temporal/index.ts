// Temporal connections for workers and starters, configured the standard way:
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS settings and profiles in
// the Temporal config file (TEMPORAL_PROFILE), read by @temporalio/envconfig.
import { Client, type ClientInterceptors, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { codecChoice, mailroomDataConverter, MissingCodecKeysError, missingCodecKeysMessage } from './data-converter';
import { coreLogLevel, logSettings, temporalLogger } from '../observability/logger';

export function temporalSettings() {
  const config = loadClientConnectConfig();
  return { connectionOptions: config.connectionOptions, namespace: config.namespace ?? 'default' };
}

/** Where the settings point, for messages: "127.0.0.1:7233 (namespace default)". */
export function temporalTarget(settings = temporalSettings()): string {
  return `${settings.connectionOptions.address ?? 'localhost:7233'} (namespace ${settings.namespace})`;
}

/**
 * Client interceptors that refuse every workflow start (and Schedule creation) while
 * MAILROOM_CODEC_KEYS is unset: reading stays possible, writing plaintext history is not.
 */
function refuseStartsWithoutKeys(): ClientInterceptors {
  const refuse = (): never => {
    throw new MissingCodecKeysError(missingCodecKeysMessage('starting a workflow', { flag: true }));
  };
  return {
    workflow: [{ start: refuse, startWithDetails: refuse, signalWithStart: refuse, startUpdateWithStart: refuse }],
    schedule: [{ create: refuse }],
  };
}

/**
 * A client with mailroom's data converter. Without MAILROOM_CODEC_KEYS it can read but refuses
 * to start workflows, unless `plaintext` (a starter's --plaintext) or MAILROOM_CODEC_KEYS=none.
 */
export async function connectClient(opts: { plaintext?: boolean } = {}): Promise<Client> {
  const settings = temporalSettings();
  const { connectionOptions, namespace } = settings;
  let connection: Connection;
  try {
    connection = await Connection.connect(connectionOptions);
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${temporalTarget(settings)}: ${(err as Error).message}. Is the server running? TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE (or a TEMPORAL_PROFILE) choose it.`,
    );
  }
  // Encrypts what it sends and decrypts what it reads with MAILROOM_CODEC_KEYS (lib/temporal/codec.ts).
  const interceptors = codecChoice() === 'unset' && !opts.plaintext ? refuseStartsWithoutKeys() : undefined;
  return new Client({ connection, namespace, dataConverter: mailroomDataConverter(), interceptors });
}

export async function connectWorker(): Promise<{ connection: NativeConnection; namespace: string }> {
  const { connectionOptions, namespace } = temporalSettings();
  return { connection: await NativeConnection.connect(connectionOptions), namespace };
}

/**
 * Installs the Temporal runtime of a worker process, before its first connection: the SDK's
 * and the Rust core's log lines, and workflow code's `log` calls, go into the process's pino
 * stream at LOG_LEVEL (lib/observability/logger.ts), so a worker writes JSON lines only. `prometheus`:
 * where the core serves its metrics (workers/main.ts), if anywhere.
 */
export function installWorkerRuntime(opts: { prometheus?: string } = {}): void {
  const core = coreLogLevel(logSettings().level);
  Runtime.install({
    logger: temporalLogger(),
    telemetryOptions: {
      ...(opts.prometheus ? { metrics: { prometheus: { bindAddress: opts.prometheus } } } : {}),
      logging: { forward: {}, filter: makeTelemetryFilterString({ core }) },
    },
  });
}
