// lib/sync-store/storable.ts: what a hostile header can carry is made storable in PostgreSQL.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cleanBytes,
  cleanOptionalText,
  cleanText,
  storableBigint,
  storableDate,
  storableInt32,
} from '../../lib/sync-store/storable';

describe('storable values', () => {
  it('removes NUL and other C0 controls but keeps tab and newline', () => {
    assert.equal(cleanText('\u0000'), '');
    assert.equal(cleanText('a\u0000b\u0001c\u001Fd\re'), 'abcde');
    assert.equal(cleanText('tab\there\nnext'), 'tab\there\nnext');
    assert.equal(cleanText('ünïcode ✓ 😀'), 'ünïcode ✓ 😀');
  });

  it('removes whole escape sequences, DEL and C1 controls, so a stored subject cannot drive a terminal', () => {
    assert.equal(cleanText('Hi \u001B[2J\u001B[31mred\u001B[0m \u001B]0;title\u0007there'), 'Hi red there');
    assert.equal(cleanText('a\u009B31mb\u007Fc\u0085d'), 'a31mbcd');
  });

  it('replaces code units that cannot be UTF-8', () => {
    assert.equal(cleanText('a\uD800b'), 'a\uFFFDb');
    assert.equal(cleanText('\uDC00x'), '\uFFFDx');
    assert.equal(cleanText('😀'), '😀', 'a proper pair stays');
  });

  it('decodes invalid UTF-8 bytes to U+FFFD', () => {
    assert.equal(cleanBytes(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x00, 0x21])), 'caf\uFFFD!');
    assert.equal(cleanBytes(Buffer.from([0xc3, 0x28])), '\uFFFD(');
  });

  it('cuts at the limit without splitting a surrogate pair', () => {
    assert.equal(cleanText('abcdef', 3), 'abc');
    assert.equal(cleanText('ab😀', 3), 'ab');
    assert.equal(cleanOptionalText(undefined), null);
    assert.equal(cleanOptionalText(null), null);
    assert.equal(cleanOptionalText('x\u0000'), 'x');
  });

  it('keeps only dates and numbers PostgreSQL can hold', () => {
    assert.equal(storableDate(new Date(8.64e15)), null, 'year 275760');
    assert.equal(storableDate(new Date(-8.64e15)), null);
    assert.equal(storableDate(new Date('nonsense')), null);
    assert.equal(storableDate('Mon, 1 Jan 2024 00:00:00 +0000')?.toISOString(), '2024-01-01T00:00:00.000Z');
    assert.equal(storableInt32(2 ** 31), null);
    assert.equal(storableInt32(-1), null);
    assert.equal(storableInt32(100), 100);
    assert.equal(storableBigint('9223372036854775807'), '9223372036854775807');
    assert.equal(storableBigint('9223372036854775808'), null);
    assert.equal(storableBigint(12n), '12');
    assert.equal(storableBigint('x'), null);
  });
});
