// Encryption of everything Temporal stores for mailroom (workflow inputs and results,
// activity inputs and results, failure messages, summaries): a PayloadCodec that seals each
// payload with AES-256-GCM before it leaves the process, so the Temporal server, its
// database and its backups hold ciphertext only. Workers, starters and the codec server
// (workers/codec-server.ts, for the Web UI) decrypt with the same keys.
//
// Keys come from MAILROOM_CODEC_KEYS="k2:<base64 32 bytes>,k1:<older key>": the first encrypts,
// every listed key decrypts, and each payload names its key in the metadata
// (`encryption-key-id`), so keys rotate by prepending a new one; an old key may be dropped
// once no history that needs it is retained (namespace retention) or read any more.
//
// With keys set, a payload that is not encrypted is refused on decode (anyone who can reach
// Temporal could otherwise start runs with inputs of their choosing), unless
// MAILROOM_CODEC_ALLOW_PLAINTEXT=true opens a migration window; the codec server shows such
// payloads as they are.
//
// Encrypted payload: metadata {encoding: "binary/encrypted", encryption-key-id: <id>},
// data = iv[12] | AES-256-GCM(Payload protobuf of the original payload) | tag[16], with the
// key id as additional authenticated data.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
// A dependency of @temporalio/common at the same exact version: the Payload protobuf.
import { temporal } from '@temporalio/proto';
import { ConfigError } from '../config';
import { environment } from '../config/env';
import { type KeyList, parseKeyList } from '../config/key-list';

export const ENCODING_ENCRYPTED = 'binary/encrypted';
export const METADATA_KEY_ID = 'encryption-key-id';
export const CODEC_KEYS_VAR = 'MAILROOM_CODEC_KEYS';
export const ALLOW_PLAINTEXT_VAR = 'MAILROOM_CODEC_ALLOW_PLAINTEXT';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const GENERATE_HINT = `generate a key with: node -e "console.log('k1:' + require('crypto').randomBytes(32).toString('base64'))" and set ${CODEC_KEYS_VAR}=k1:<that base64>`;

/** A bad MAILROOM_CODEC_KEYS value (a ConfigError: the worker prints it and exits). */
export class CodecKeyError extends ConfigError {
  override name = 'CodecKeyError';
}

/** A payload that cannot be decrypted: unknown key id, tampered or truncated ciphertext. */
export class PayloadDecryptionError extends Error {
  override name = 'PayloadDecryptionError';
}

/**
 * An unencrypted payload where keys are configured: written by a client without the codec
 * (anyone who can reach Temporal could start or signal runs with inputs of their choosing),
 * or before encryption was turned on.
 */
export class PlaintextPayloadError extends PayloadDecryptionError {
  override name = 'PlaintextPayloadError';
}

export type CodecKeys = KeyList;

export interface AesGcmCodecOptions {
  /**
   * Pass unencrypted payloads through decode instead of refusing them
   * (MAILROOM_CODEC_ALLOW_PLAINTEXT=true: a migration window, while histories written before
   * encryption are still running; the codec server, which only shows payloads).
   */
  allowPlaintext?: boolean;
}

/** Parses `id:base64,id:base64` (first = current). Throws a CodecKeyError saying what to fix. */
export function parseCodecKeys(value: string): CodecKeys {
  return parseKeyList(value, {
    variable: CODEC_KEYS_VAR,
    keyId: KEY_ID,
    keyIdRule: "1-64 letters, digits, '.', '_' or '-'",
    hint: GENERATE_HINT,
    error: CodecKeyError,
  });
}

/** A fresh `id:base64` entry for MAILROOM_CODEC_KEYS (setup scripts, tests). */
export function generateCodecKey(id = 'k1'): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

const isEmptyPayload = (p: Payload) => Object.keys(p.metadata ?? {}).length === 0 && (p.data?.length ?? 0) === 0;

/** MAILROOM_CODEC_ALLOW_PLAINTEXT: true/false (1/0, yes/no); unset or empty = false. Anything else is a CodecKeyError. */
export function allowPlaintextFromEnv(env: NodeJS.ProcessEnv = environment()): boolean {
  const value = env[ALLOW_PLAINTEXT_VAR]?.trim().toLowerCase() ?? '';
  if (['', 'false', '0', 'no'].includes(value)) return false;
  if (['true', '1', 'yes'].includes(value)) return true;
  throw new CodecKeyError(
    `${ALLOW_PLAINTEXT_VAR}: "${env[ALLOW_PLAINTEXT_VAR]}" is not true or false (true accepts unencrypted payloads while ${CODEC_KEYS_VAR} is set, for a migration window)`,
  );
}

export class AesGcmCodec implements PayloadCodec {
  readonly currentKeyId: string;
  readonly allowPlaintext: boolean;
  private readonly keys: ReadonlyMap<string, Buffer>;

  constructor(keys: CodecKeys, options: AesGcmCodecOptions = {}) {
    if (!keys.keys.has(keys.currentKeyId))
      throw new CodecKeyError(`current key "${keys.currentKeyId}" is not among the keys`);
    this.currentKeyId = keys.currentKeyId;
    this.keys = keys.keys;
    this.allowPlaintext = options.allowPlaintext ?? false;
  }

  /** Ids of every key this codec can decrypt with. */
  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.currentKeyId)!;
    const keyId = Buffer.from(this.currentKeyId, 'utf8');
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(keyId);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: Buffer.from(ENCODING_ENCRYPTED), [METADATA_KEY_ID]: keyId }, data: sealed };
    });
  }

  /**
   * Decrypts our payloads. Any other payload is refused (PlaintextPayloadError: the workflow
   * task fails, visibly, and the run does not proceed), unless allowPlaintext passes it
   * unchanged. What the SDK sends outside the codec (headers, search attributes) never
   * reaches decode. An empty payload (no encoding, no data) carries nothing and passes.
   */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = text(payload.metadata?.encoding);
      if (encoding !== ENCODING_ENCRYPTED) {
        if (this.allowPlaintext || isEmptyPayload(payload)) return payload;
        throw new PlaintextPayloadError(
          `refused an unencrypted payload (encoding ${JSON.stringify(encoding ?? null)}): ${CODEC_KEYS_VAR} is set, so every payload must be encrypted with one of its keys. ` +
            `It was written by a client without the codec (start runs with mailroom's starters, or give the client ${CODEC_KEYS_VAR}), or before encryption was turned on: ` +
            `to accept such payloads for a migration window, set ${ALLOW_PLAINTEXT_VAR}=true on the workers (docs/privacy.md)`,
        );
      }
      const keyId = text(payload.metadata?.[METADATA_KEY_ID]);
      if (!keyId) throw new PayloadDecryptionError(`encrypted payload has no ${METADATA_KEY_ID} metadata`);
      const key = this.keys.get(keyId);
      if (!key) {
        throw new PayloadDecryptionError(
          `payload was encrypted with key id "${keyId}", which is not in ${CODEC_KEYS_VAR} (known: ${this.keyIds.join(', ')}); add that key to decrypt it`,
        );
      }
      const data = Buffer.from(payload.data ?? []);
      if (data.length < IV_BYTES + TAG_BYTES)
        throw new PayloadDecryptionError(`encrypted payload (key id "${keyId}") is truncated`);
      let plain: Buffer;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(keyId, 'utf8'));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new PayloadDecryptionError(
          `encrypted payload (key id "${keyId}") failed authentication: it was altered, or "${keyId}" is not the key it was made with`,
        );
      }
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/**
 * The value of MAILROOM_CODEC_KEYS that says "no encryption" on purpose (local experiments,
 * benchmarks). Unset is not the same: a process that would write histories refuses to start
 * without one or the other (lib/temporal/data-converter.ts).
 */
export const PLAINTEXT_KEYS_VALUE = 'none';

export function isPlaintextChoice(value: string | undefined): boolean {
  return value?.trim().toLowerCase() === PLAINTEXT_KEYS_VALUE;
}

/**
 * The codec configured by MAILROOM_CODEC_KEYS, or undefined when it is unset or `none` (no
 * encryption). It refuses unencrypted payloads unless MAILROOM_CODEC_ALLOW_PLAINTEXT=true or
 * `options.allowPlaintext` says otherwise.
 */
export function codecFromEnv(
  env: NodeJS.ProcessEnv = environment(),
  options: AesGcmCodecOptions = {},
): AesGcmCodec | undefined {
  const value = env[CODEC_KEYS_VAR];
  const allowPlaintext = options.allowPlaintext ?? allowPlaintextFromEnv(env);
  if (value === undefined || value.trim() === '' || isPlaintextChoice(value)) return undefined;
  return new AesGcmCodec(parseCodecKeys(value), { allowPlaintext });
}

/**
 * The key list of MAILROOM_CODEC_KEYS, or undefined when it is unset or `none`: what the
 * address hashes are made with (lib/mail/address-hash.ts; workers/main.ts, starters/find.ts).
 */
export function codecKeyList(env: NodeJS.ProcessEnv = environment()): CodecKeys | undefined {
  const value = env[CODEC_KEYS_VAR];
  if (value === undefined || value.trim() === '' || isPlaintextChoice(value)) return undefined;
  return parseCodecKeys(value);
}

/**
 * The codec of a process without keys: writes plaintext, and on reading an encrypted payload
 * says which variable to set instead of the SDK's bare "Unknown encoding: binary/encrypted".
 */
export class KeylessCodec implements PayloadCodec {
  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads;
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    for (const payload of payloads) {
      if (text(payload.metadata?.encoding) !== ENCODING_ENCRYPTED) continue;
      const keyId = text(payload.metadata?.[METADATA_KEY_ID]) ?? '?';
      throw new PayloadDecryptionError(
        `this history is encrypted (key id "${keyId}") and ${CODEC_KEYS_VAR} is not set here: set ${CODEC_KEYS_VAR} to the value the workers use (the demo's is in its env file: source .local/env)`,
      );
    }
    return payloads;
  }
}
