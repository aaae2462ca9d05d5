// The one DataConverter every mailroom Temporal client and worker uses (lib/temporal.ts,
// workers/*, scripts/demo.ts, the test stack): payloads encrypted by lib/codec.ts, and failure
// messages encoded so that they are encrypted too. Undefined when MAILROOM_CODEC_KEYS is unset:
// histories are then stored in plaintext, which is for local development only.
import type { DataConverter } from '@temporalio/common';
import { codecFromEnv } from './codec';

export const UNENCRYPTED_WARNING =
  'MAILROOM_CODEC_KEYS is not set: workflow histories (addresses, subjects) are stored in plaintext on the Temporal server; set it in production (docs/privacy.md)';

export function mailroomDataConverter(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const codec = codecFromEnv(env);
  if (!codec) return undefined;
  return { payloadCodecs: [codec], failureConverterPath: require.resolve('./failure-converter') };
}
