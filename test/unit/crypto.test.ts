// lib/sync-store/crypto.ts: AES-256-GCM secrets with key ids, so keys can rotate.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decryptSecret,
  encryptSecret,
  generateKeyEntry,
  keyIdOf,
  parseKeyring,
  SecretKeyError,
} from '../../lib/sync-store/crypto';

describe('crypto', () => {
  const k1 = generateKeyEntry('k1');
  const k2 = generateKeyEntry('k2');

  it('round-trips, with a fresh IV each time and the key id in the ciphertext', () => {
    const ring = parseKeyring(k1);
    const a = encryptSecret(ring, 'pässwörd 🔑', 'ctx');
    const b = encryptSecret(ring, 'pässwörd 🔑', 'ctx');
    assert.notEqual(a, b);
    assert.match(a, /^v1:k1:[A-Za-z0-9+/=]+$/);
    assert.equal(keyIdOf(a), 'k1');
    assert.ok(!a.includes('pässwörd'));
    assert.equal(decryptSecret(ring, a, 'ctx'), 'pässwörd 🔑');
  });

  it('rotates: the first key encrypts, every listed key decrypts', () => {
    const old = encryptSecret(parseKeyring(k1), 'secret');
    const rotated = parseKeyring(`${k2},${k1}`);
    assert.equal(rotated.currentKeyId, 'k2');
    assert.equal(decryptSecret(rotated, old), 'secret');
    assert.equal(keyIdOf(encryptSecret(rotated, 'secret')), 'k2');
    assert.throws(
      () => decryptSecret(parseKeyring(k2), old),
      /encrypted with key "k1", which is not in MAILROOM_SECRET_KEYS \(has k2\): add that key back/,
    );
  });

  it('detects tampering, a wrong context and a changed key', () => {
    const ring = parseKeyring(k1);
    const c = encryptSecret(ring, 'secret', 'account-1');
    assert.throws(() => decryptSecret(ring, c, 'account-2'), /does not decrypt/);
    const raw = Buffer.from(c.split(':')[2], 'base64');
    raw[14] ^= 1;
    assert.throws(() => decryptSecret(ring, `v1:k1:${raw.toString('base64')}`, 'account-1'), /does not decrypt/);
    const sameIdOtherKey = parseKeyring(generateKeyEntry('k1'));
    assert.throws(() => decryptSecret(sameIdOtherKey, c, 'account-1'), SecretKeyError);
    assert.throws(() => decryptSecret(ring, 'plaintext-password'), /not a mailroom v1 ciphertext/);
  });

  it('explains a missing or malformed MAILROOM_SECRET_KEYS', () => {
    assert.throws(() => parseKeyring(undefined), /MAILROOM_SECRET_KEYS is not set.*randomBytes\(32\)/);
    assert.throws(() => parseKeyring('   '), /MAILROOM_SECRET_KEYS is not set/);
    assert.throws(() => parseKeyring('k1:c2hvcnQ='), /exactly 32 bytes in base64 \(got 5 bytes\)/);
    assert.throws(() => parseKeyring('nokeyid'), /must look like <keyId>:<base64 key>/);
    // A key pasted without its id is not echoed back into a log.
    const bare = k1.split(':')[1];
    assert.throws(
      () => parseKeyring(bare),
      (e: Error) => /must look like/.test(e.message) && !e.message.includes(bare.slice(0, 8)),
    );
    assert.throws(() => parseKeyring(`${k1},${k1}`), /listed twice/);
    assert.throws(() => parseKeyring(`bad id:${k1.split(':')[1]}`), /key id "bad id"/);
  });

  it('never echoes key material in errors', () => {
    const material = 'A'.repeat(40);
    try {
      parseKeyring(`k1:${material}`);
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(!(err as Error).message.includes(material));
    }
  });
});
