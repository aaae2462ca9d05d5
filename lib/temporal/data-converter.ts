// The one DataConverter every mailroom Temporal client and worker uses (lib/temporal/index.ts,
// workers/*, scripts/demo.ts, the test stack): payloads encrypted by lib/temporal/codec.ts, and failure
// messages encoded so that they are encrypted too. Without keys (MAILROOM_CODEC_KEYS unset or
// `none`) payloads stay plaintext, and reading an encrypted one names the variable to set. With
// keys, an unencrypted payload is refused (MAILROOM_CODEC_ALLOW_PLAINTEXT=true opts out).
//
// Plaintext histories hold addresses and subjects, so a process that writes them (a worker,
// the SQS bridge, a starter) refuses to start when the variable is simply unset: the operator
// must either give keys or say `MAILROOM_CODEC_KEYS=none` (a starter also takes --plaintext).
import type { DataConverter } from '@temporalio/common';
import {
  ALLOW_PLAINTEXT_VAR,
  allowPlaintextFromEnv,
  codecFromEnv,
  CODEC_KEYS_VAR,
  isPlaintextChoice,
  KeylessCodec,
  PLAINTEXT_KEYS_VALUE,
} from './codec';
import { ConfigError } from '../config';
import { environment } from '../config/env';

export const ALLOW_PLAINTEXT_WARNING = `${ALLOW_PLAINTEXT_VAR}=true: unencrypted payloads are accepted although ${CODEC_KEYS_VAR} is set, so anyone who can reach Temporal can start runs with inputs of their choosing; unset it once the migration is over (docs/privacy.md)`;

export const UNENCRYPTED_WARNING = `${CODEC_KEYS_VAR}=${PLAINTEXT_KEYS_VALUE}: workflow histories (addresses, subjects) are stored in plaintext on the Temporal server; set keys in production (docs/privacy.md)`;

/** The warning a long-running process logs at start: plaintext histories, or plaintext accepted on an encrypted deployment. */
export function codecWarning(choice: CodecChoice, env: NodeJS.ProcessEnv = environment()): string | undefined {
  if (choice === 'plaintext') return UNENCRYPTED_WARNING;
  if (choice === 'encrypted' && allowPlaintextFromEnv(env)) return ALLOW_PLAINTEXT_WARNING;
  return undefined;
}

/** encrypted: keys given; plaintext: `none` said explicitly; unset: neither (refused where histories are written). */
export type CodecChoice = 'encrypted' | 'plaintext' | 'unset';

export function codecChoice(env: NodeJS.ProcessEnv = environment()): CodecChoice {
  const value = env[CODEC_KEYS_VAR];
  if (isPlaintextChoice(value)) return 'plaintext';
  return value === undefined || value.trim() === '' ? 'unset' : 'encrypted';
}

/** A process about to write histories without keys and without an explicit plaintext choice. */
export class MissingCodecKeysError extends ConfigError {
  override name = 'MissingCodecKeysError';
}

export function missingCodecKeysMessage(what: string, opts: { flag?: boolean } = {}): string {
  return (
    `${CODEC_KEYS_VAR} is not set: ${what} would write email addresses and subjects into Temporal's history in plaintext. ` +
    `Set ${CODEC_KEYS_VAR} to the workers' keys (the demo's: source .local/env; docs/privacy.md says how to make one), ` +
    `or choose plaintext explicitly with ${CODEC_KEYS_VAR}=${PLAINTEXT_KEYS_VALUE}${opts.flag ? ' or --plaintext' : ''}`
  );
}

/**
 * For processes that start or run workflows: validates MAILROOM_CODEC_KEYS (a malformed value
 * throws its CodecKeyError) and throws a MissingCodecKeysError when it is unset, unless
 * `plaintext` (a starter's --plaintext) says so.
 */
export function requireCodecChoice(
  what: string,
  opts: { plaintext?: boolean; flag?: boolean; env?: NodeJS.ProcessEnv } = {},
): CodecChoice {
  const env = opts.env ?? environment();
  codecFromEnv(env);
  const choice = codecChoice(env);
  if (choice === 'unset' && !opts.plaintext) throw new MissingCodecKeysError(missingCodecKeysMessage(what, opts));
  return choice === 'unset' ? 'plaintext' : choice;
}

export function mailroomDataConverter(env: NodeJS.ProcessEnv = environment()): DataConverter {
  const codec = codecFromEnv(env);
  if (!codec) return { payloadCodecs: [new KeylessCodec()] };
  return { payloadCodecs: [codec], failureConverterPath: require.resolve('./failure-converter') };
}
