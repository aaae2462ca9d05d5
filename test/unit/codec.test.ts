// The payload codec (lib/temporal/codec.ts) and the data converter built on it: what Temporal stores
// is ciphertext naming its key, keys rotate, and bad input fails loudly and clearly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  AesGcmCodec,
  codecFromEnv,
  ENCODING_ENCRYPTED,
  generateCodecKey,
  KeylessCodec,
  METADATA_KEY_ID,
  parseCodecKeys,
  allowPlaintextFromEnv,
  PayloadDecryptionError,
  PlaintextPayloadError,
} from '../../lib/temporal/codec';
import { ConfigError } from '../../lib/config';
import { codecServerOptionsFromEnv } from '../../workers/codec-server';
import {
  codecChoice,
  codecWarning,
  mailroomDataConverter,
  MissingCodecKeysError,
  requireCodecChoice,
} from '../../lib/temporal/data-converter';

const K1 = generateCodecKey('k1');
const K2 = generateCodecKey('k2');
const codec = (keys: string) => new AesGcmCodec(parseCodecKeys(keys));
const str = (b: Uint8Array | null | undefined) => Buffer.from(b ?? []).toString('utf8');
const facts = { from: 'secret.sender@sender.example', to: ['alice@example.com'], subject: 'Quarterly numbers' };

test('round trip: ciphertext with key id metadata, the original payload back', async () => {
  const c = codec(K1);
  const original = defaultPayloadConverter.toPayload(facts);
  const [sealed] = await c.encode([original]);
  assert.equal(str(sealed.metadata?.encoding), ENCODING_ENCRYPTED);
  assert.equal(str(sealed.metadata?.[METADATA_KEY_ID]), 'k1');
  assert.deepEqual(
    Object.keys(sealed.metadata ?? {}).sort(),
    ['encoding', METADATA_KEY_ID].sort(),
    'no other metadata (the original encoding is inside)',
  );
  for (const needle of [facts.from, facts.subject, 'json/plain'])
    assert.ok(!Buffer.from(sealed.data!).includes(needle), `${needle} is not visible`);
  const [back] = await c.decode([sealed]);
  assert.equal(str(back.metadata?.encoding), 'json/plain');
  assert.deepEqual(defaultPayloadConverter.fromPayload(back), facts);

  const [again] = await c.encode([original]);
  assert.notDeepEqual(Buffer.from(again.data!), Buffer.from(sealed.data!), 'a fresh IV per payload');
  assert.deepEqual(await c.encode([]), []);
  const [empty] = await c.decode(await c.encode([defaultPayloadConverter.toPayload(undefined)]));
  assert.equal(defaultPayloadConverter.fromPayload(empty), undefined);
});

test('rotation: the new key encodes, the old key still decodes', async () => {
  const [old] = await codec(K1).encode([defaultPayloadConverter.toPayload('written before rotation')]);
  const rotated = codec(`${K2},${K1}`);
  assert.equal(rotated.currentKeyId, 'k2');
  assert.equal(defaultPayloadConverter.fromPayload((await rotated.decode([old]))[0]), 'written before rotation');
  const [fresh] = await rotated.encode([defaultPayloadConverter.toPayload('after')]);
  assert.equal(str(fresh.metadata?.[METADATA_KEY_ID]), 'k2');
  assert.equal(defaultPayloadConverter.fromPayload((await codec(K2).decode([fresh]))[0]), 'after');
});

test('a payload with an unknown key id fails with an error naming the key id', async () => {
  const [sealed] = await codec(K1).encode([defaultPayloadConverter.toPayload('x')]);
  await assert.rejects(codec(K2).decode([sealed]), (err: Error) => {
    assert.ok(err instanceof PayloadDecryptionError);
    assert.match(err.message, /key id "k1"/);
    assert.match(err.message, /MAILROOM_CODEC_KEYS/);
    return true;
  });
});

test('tampered ciphertext, a swapped key id or a truncated payload fails', async () => {
  const c = codec(`${K2},${K1}`);
  const [sealed] = await c.encode([defaultPayloadConverter.toPayload({ n: 1 })]);
  const flipped = Buffer.from(sealed.data!);
  flipped[20] ^= 1;
  await assert.rejects(c.decode([{ ...sealed, data: flipped }]), /failed authentication/);
  // Same bytes relabelled as made with the other key (the key id is authenticated data).
  await assert.rejects(
    c.decode([{ ...sealed, metadata: { ...sealed.metadata, [METADATA_KEY_ID]: Buffer.from('k1') } }]),
    /key id "k1"\) failed authentication/,
  );
  await assert.rejects(c.decode([{ ...sealed, data: Buffer.from(sealed.data!).subarray(0, 10) }]), /truncated/);
  await assert.rejects(
    c.decode([{ metadata: { encoding: Buffer.from(ENCODING_ENCRYPTED) }, data: sealed.data }]),
    /no encryption-key-id/,
  );
});

test('with keys, an unencrypted payload is refused with the setting to change; MAILROOM_CODEC_ALLOW_PLAINTEXT=true passes it', async () => {
  const plain: Payload[] = [
    defaultPayloadConverter.toPayload({ a: 1 }),
    defaultPayloadConverter.toPayload(null),
    { metadata: { encoding: Buffer.from('binary/plain') }, data: Buffer.from('raw') },
    { data: Buffer.from('no metadata at all') },
  ];
  // Each one alone, and among encrypted ones: one plaintext payload fails the whole decode.
  const [sealed] = await codec(K1).encode([defaultPayloadConverter.toPayload('sealed')]);
  for (const p of plain) {
    for (const batch of [[p], [sealed, p]]) {
      await assert.rejects(codec(K1).decode(batch), (err: Error) => {
        assert.ok(err instanceof PlaintextPayloadError && err instanceof PayloadDecryptionError);
        assert.match(err.message, /refused an unencrypted payload/);
        assert.match(err.message, /MAILROOM_CODEC_KEYS is set/);
        assert.match(err.message, /MAILROOM_CODEC_ALLOW_PLAINTEXT=true/);
        return true;
      });
    }
  }
  await assert.rejects(codecFromEnv({ MAILROOM_CODEC_KEYS: K1 })!.decode([plain[0]]), PlaintextPayloadError);
  await assert.rejects(
    mailroomDataConverter({ MAILROOM_CODEC_KEYS: K1 }).payloadCodecs![0].decode([plain[0]]),
    PlaintextPayloadError,
  );
  // An empty payload carries nothing: not refused.
  const empty: Payload = {};
  assert.deepEqual(await codec(K1).decode([empty]), [empty]);

  // The opt-out (a migration window from plaintext histories): passed through unchanged.
  for (const allowed of [
    new AesGcmCodec(parseCodecKeys(K1), { allowPlaintext: true }),
    codecFromEnv({ MAILROOM_CODEC_KEYS: K1, MAILROOM_CODEC_ALLOW_PLAINTEXT: 'true' })!,
    mailroomDataConverter({ MAILROOM_CODEC_KEYS: K1, MAILROOM_CODEC_ALLOW_PLAINTEXT: ' TRUE ' }).payloadCodecs![0],
  ]) {
    const out = await allowed.decode(plain);
    assert.equal(out.length, plain.length);
    for (const [i, p] of out.entries()) assert.strictEqual(p, plain[i]);
    assert.equal(defaultPayloadConverter.fromPayload((await allowed.decode([sealed]))[0]), 'sealed');
  }
  // The codec server only shows payloads: an operator must be able to read an unencrypted one.
  const server = codecServerOptionsFromEnv({ MAILROOM_CODEC_KEYS: K1, CODEC_SERVER_TOKEN: 'x'.repeat(32) });
  assert.strictEqual((await server.codec.decode([plain[0]]))[0], plain[0]);
  assert.equal(allowPlaintextFromEnv({}), false);
  assert.equal(allowPlaintextFromEnv({ MAILROOM_CODEC_ALLOW_PLAINTEXT: 'false' }), false);
  assert.equal(allowPlaintextFromEnv({ MAILROOM_CODEC_ALLOW_PLAINTEXT: '1' }), true);
  assert.throws(
    () => codecFromEnv({ MAILROOM_CODEC_KEYS: K1, MAILROOM_CODEC_ALLOW_PLAINTEXT: 'sometimes' }),
    (err: Error) =>
      err instanceof ConfigError &&
      /MAILROOM_CODEC_ALLOW_PLAINTEXT: "sometimes" is not true or false/.test(err.message),
  );
  // The long-running processes say so at start.
  assert.match(
    codecWarning('encrypted', { MAILROOM_CODEC_KEYS: K1, MAILROOM_CODEC_ALLOW_PLAINTEXT: 'true' }) ?? '',
    /unencrypted payloads are accepted/,
  );
  assert.equal(codecWarning('encrypted', { MAILROOM_CODEC_KEYS: K1 }), undefined);
  assert.match(codecWarning('plaintext', {}) ?? '', /stored in plaintext/);
});

test('MAILROOM_CODEC_KEYS: unset or none means no encryption; malformed values are ConfigErrors naming the problem', () => {
  assert.equal(codecFromEnv({}), undefined);
  assert.equal(codecFromEnv({ MAILROOM_CODEC_KEYS: '  ' }), undefined);
  assert.equal(codecFromEnv({ MAILROOM_CODEC_KEYS: 'none' }), undefined);
  assert.ok(mailroomDataConverter({}).payloadCodecs?.[0] instanceof KeylessCodec);
  assert.equal(codecFromEnv({ MAILROOM_CODEC_KEYS: `${K2}, ${K1}` })?.currentKeyId, 'k2');
  const bad: [string, RegExp][] = [
    ['k1', /<keyId>:<base64 key>/],
    [`k1:${Buffer.alloc(16).toString('base64')}`, /exactly 32 bytes/],
    ['k1:not base64!', /exactly 32 bytes/],
    [`${K1},${K1}`, /listed twice/],
    [`bad id:${Buffer.alloc(32).toString('base64')}`, /key id "bad id"/],
    [',', /lists no keys/],
  ];
  for (const [value, message] of bad) {
    assert.throws(
      () => codecFromEnv({ MAILROOM_CODEC_KEYS: value }),
      (err: Error) => err instanceof ConfigError && message.test(err.message),
      value,
    );
  }
  // The key material never appears in an error.
  const secret = Buffer.alloc(31, 7).toString('base64');
  assert.throws(
    () => codecFromEnv({ MAILROOM_CODEC_KEYS: `k1:${secret}` }),
    (err: Error) => !err.message.includes(secret),
  );
});

test('the data converter encrypts payloads and moves failure messages into an encrypted payload', async () => {
  const dc = mailroomDataConverter({ MAILROOM_CODEC_KEYS: K1 });
  assert.ok(dc?.payloadCodecs?.[0] instanceof AesGcmCodec);
  const { failureConverter } = require(
    dc.failureConverterPath!,
  ) as typeof import('../../lib/temporal/failure-converter');
  const failure = failureConverter.errorToFailure(
    new Error('550 5.1.1 <alice@example.com>: no such user'),
    defaultPayloadConverter,
  );
  assert.equal(failure.message, 'Encoded failure');
  assert.ok(!JSON.stringify(failure.stackTrace ?? '').includes('alice@example.com'));
  const [sealed] = await dc.payloadCodecs[0].encode([failure.encodedAttributes!]);
  assert.ok(!Buffer.from(sealed.data!).includes('alice@example.com'));
  const [attrs] = await dc.payloadCodecs[0].decode([sealed]);
  assert.match(
    failureConverter.failureToError({ ...failure, encodedAttributes: attrs }, defaultPayloadConverter).message,
    /alice@example\.com/,
  );
});

test('a process that writes histories needs keys or an explicit plaintext choice', () => {
  assert.equal(codecChoice({}), 'unset');
  assert.equal(codecChoice({ MAILROOM_CODEC_KEYS: ' None ' }), 'plaintext');
  assert.equal(codecChoice({ MAILROOM_CODEC_KEYS: K1 }), 'encrypted');
  assert.throws(
    () => requireCodecChoice('the worker', { env: {} }),
    (err: Error) =>
      err instanceof MissingCodecKeysError &&
      err instanceof ConfigError &&
      /MAILROOM_CODEC_KEYS is not set: the worker would write/.test(err.message) &&
      /MAILROOM_CODEC_KEYS=none/.test(err.message) &&
      !/--plaintext/.test(err.message),
  );
  assert.throws(
    () => requireCodecChoice('start:object', { env: { MAILROOM_CODEC_KEYS: '' }, flag: true }),
    /MAILROOM_CODEC_KEYS=none or --plaintext/,
  );
  assert.equal(requireCodecChoice('start:object', { env: {}, plaintext: true }), 'plaintext');
  assert.equal(requireCodecChoice('the worker', { env: { MAILROOM_CODEC_KEYS: 'none' } }), 'plaintext');
  assert.equal(requireCodecChoice('the worker', { env: { MAILROOM_CODEC_KEYS: K1 } }), 'encrypted');
  assert.throws(() => requireCodecChoice('the worker', { env: { MAILROOM_CODEC_KEYS: 'k1' } }), /<keyId>:<base64 key>/);
});

test('without keys, plaintext passes and an encrypted payload says which variable to set', async () => {
  const keyless = new KeylessCodec();
  const plain = defaultPayloadConverter.toPayload(facts);
  assert.deepEqual(await keyless.encode([plain]), [plain]);
  assert.deepEqual(await keyless.decode([plain]), [plain]);
  const [sealed] = await codec(K1).encode([plain]);
  await assert.rejects(
    keyless.decode([sealed]),
    (err: Error) =>
      err instanceof PayloadDecryptionError &&
      /encrypted \(key id "k1"\) and MAILROOM_CODEC_KEYS is not set/.test(err.message),
  );
});
