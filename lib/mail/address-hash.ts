// Keyed hashes of email addresses, so an operator can find a sender's or recipient's runs
// (search attributes MailFromHash, MailToHash) without any address stored in clear
// (docs/privacy.md). HMAC-SHA-256 over the address in the inbound parser's normal form
// (lib/mail/address.ts), with a key derived from a key list entry (MAILROOM_CODEC_KEYS: every
// inbound worker has it, and whoever holds it can read the histories anyway).
//
// Rotation: a run is hashed with the list's current key only; a search hashes the address with
// every listed key and asks for any of them, so runs hashed under a retired key stay findable
// until that key leaves the list (which is also when their histories become unreadable).
import { createHmac, hkdfSync } from 'node:crypto';
import type { KeyList } from '../config/key-list';
import { normalizeAddress } from './address';

/**
 * Hex digits kept of the HMAC: 64 bits. A search for one address among N others falsely
 * matches with probability about N / 2^64 (1e7 distinct addresses: 5e-13); that any two of
 * 1e7 addresses share a hash at all is about N^2 / 2^65 (3e-6), and then only a search for one
 * of them lists the other's runs too. Shorter values would make that likely; longer ones only
 * cost search attribute space (they give no protection: the key is what protects addresses).
 */
export const ADDRESS_HASH_HEX_DIGITS = 16;
export const ADDRESS_HASH_PATTERN = /^[0-9a-f]{16}$/;

// Domain separation: the codec key encrypts payloads (AES-GCM); the HMAC key is derived from
// it for this one purpose, so no key is ever used by two algorithms.
const HKDF_INFO = 'mailroom address hash v1';
const derived = new WeakMap<Buffer, Buffer>();

function hashKey(key: Buffer): Buffer {
  let k = derived.get(key);
  if (!k) {
    k = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), HKDF_INFO, 32));
    derived.set(key, k);
  }
  return k;
}

/** The hash of an address already in normal form, under one key. */
export function addressHash(key: Buffer, normalized: string): string {
  return createHmac('sha256', hashKey(key)).update(normalized, 'utf8').digest('hex').slice(0, ADDRESS_HASH_HEX_DIGITS);
}

/** What a run records (fetchEmail): the hashes of its addresses under the current key, each once. */
export function hashesForRun(keys: KeyList, normalizedAddresses: readonly (string | undefined)[]): string[] {
  const key = keys.keys.get(keys.currentKeyId)!;
  const out = new Set<string>();
  for (const a of normalizedAddresses) if (a) out.add(addressHash(key, a));
  return [...out];
}

/** The normal form an operator's input is searched by, or undefined when it is no deliverable address. */
export function searchableAddress(input: string): string | undefined {
  return normalizeAddress(input);
}

/** What a search looks for: the address's hash under every listed key (current first). */
export function hashesForSearch(keys: KeyList, normalized: string): { keyId: string; hash: string }[] {
  return [...keys.keys].map(([keyId, key]) => ({ keyId, hash: addressHash(key, normalized) }));
}
