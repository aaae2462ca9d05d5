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

export async function connectClient(): Promise<Client> {
  const { connectionOptions, namespace } = temporalSettings();
  const connection = await Connection.connect(connectionOptions);
  // Encrypts what it sends and decrypts what it reads with MAILROOM_CODEC_KEYS (lib/codec.ts).
  return new Client({ connection, namespace, dataConverter: mailroomDataConverter() });
}

export async function connectWorker(): Promise<{ connection: NativeConnection; namespace: string }> {
  const { connectionOptions, namespace } = temporalSettings();
  return { connection: await NativeConnection.connect(connectionOptions), namespace };
}
