// Temporal connections for workers and starters, configured the standard way:
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS settings and profiles in
// the Temporal config file (TEMPORAL_PROFILE), read by @temporalio/envconfig.
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import { mailroomDataConverter } from './data-converter';

export function temporalSettings() {
  const config = loadClientConnectConfig();
  return { connectionOptions: config.connectionOptions, namespace: config.namespace ?? 'default' };
}

/** Where the settings point, for messages: "127.0.0.1:7233 (namespace default)". */
export function temporalTarget(settings = temporalSettings()): string {
  return `${settings.connectionOptions.address ?? 'localhost:7233'} (namespace ${settings.namespace})`;
}

export async function connectClient(): Promise<Client> {
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
  // Encrypts what it sends and decrypts what it reads with MAILROOM_CODEC_KEYS (lib/codec.ts).
  return new Client({ connection, namespace, dataConverter: mailroomDataConverter() });
}

export async function connectWorker(): Promise<{ connection: NativeConnection; namespace: string }> {
  const { connectionOptions, namespace } = temporalSettings();
  return { connection: await NativeConnection.connect(connectionOptions), namespace };
}
