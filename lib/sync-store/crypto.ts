// IMAP passwords are stored encrypted with AES-256-GCM. Keys come from the environment
// (MAILROOM_SECRET_KEYS="k1:<base64 32 bytes>,k0:<older key>"), never from the database, so a
// database dump alone reveals nothing. The first key encrypts; every listed key decrypts,
// and each ciphertext names its key, so keys rotate by prepending a new one and re-saving
// passwords (or waiting for users to update them) before the old key is dropped.
//
// Format: "v1:<keyId>:<base64(iv[12] | ciphertext | tag[16])>". The optional `context`
// (e.g. the account id) is bound as additional authenticated data: a ciphertext copied to
// another account's row does not decrypt there.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { environment } from '../config/env';
import { type KeyList, parseKeyList } from '../config/key-list';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

export class SecretKeyError extends Error {
  override name = 'SecretKeyError';
}

export type Keyring = KeyList;

const GENERATE_HINT =
  "generate one with: node -e \"console.log('k1:' + require('crypto').randomBytes(32).toString('base64'))\" and set MAILROOM_SECRET_KEYS=k1:<that base64>";

/** Parses MAILROOM_SECRET_KEYS. Throws a SecretKeyError that says how to fix the variable. */
export function parseKeyring(value: string | undefined): Keyring {
  if (!value || !value.trim()) {
    throw new SecretKeyError(
      `MAILROOM_SECRET_KEYS is not set: mailroom needs it to encrypt and decrypt IMAP passwords; ${GENERATE_HINT}`,
    );
  }
  return parseKeyList(value, {
    variable: 'MAILROOM_SECRET_KEYS',
    keyId: KEY_ID,
    keyIdRule: '1-32 letters, digits, _ or -',
    hint: GENERATE_HINT,
    error: SecretKeyError,
  });
}

export function loadKeyring(env: NodeJS.ProcessEnv = environment()): Keyring {
  return parseKeyring(env.MAILROOM_SECRET_KEYS);
}

/** A fresh random key entry for MAILROOM_SECRET_KEYS, e.g. for tests and setup. */
export function generateKeyEntry(id = 'k1'): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

export function encryptSecret(keyring: Keyring, plaintext: string, context = ''): string {
  const key = keyring.keys.get(keyring.currentKeyId);
  if (!key) throw new SecretKeyError(`current key ${keyring.currentKeyId} missing from keyring`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${VERSION}:${keyring.currentKeyId}:${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64')}`;
}

/** The key id a ciphertext was made with, to find secrets that still use an old key. */
export function keyIdOf(ciphertext: string): string {
  const [version, keyId] = ciphertext.split(':');
  if (version !== VERSION || !keyId) throw new SecretKeyError('not a mailroom v1 ciphertext');
  return keyId;
}

export function decryptSecret(keyring: Keyring, ciphertext: string, context = ''): string {
  const parts = ciphertext.split(':');
  if (parts.length !== 3 || parts[0] !== VERSION)
    throw new SecretKeyError('stored secret is not a mailroom v1 ciphertext (corrupted row?)');
  const [, keyId, payload] = parts;
  const key = keyring.keys.get(keyId);
  if (!key) {
    throw new SecretKeyError(
      `stored secret was encrypted with key "${keyId}", which is not in MAILROOM_SECRET_KEYS (has ${[...keyring.keys.keys()].join(', ')}): add that key back after the current one`,
    );
  }
  const raw = Buffer.from(payload, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new SecretKeyError('stored secret is truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    );
  } catch {
    throw new SecretKeyError(
      `stored secret does not decrypt with key "${keyId}": the key material changed, or the ciphertext belongs to another record`,
    );
  }
}
