// lib/imap/server-text.ts: what a hostile IMAP server (or OAuth2 provider) can put in a folder
// name or a NO text is made valid for PostgreSQL and printable before it is stored or shown.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  folderKey,
  folderKeyClashes,
  folderLabel,
  printableText,
  serverText,
  validText,
  withoutEscapeSequences,
} from '../../lib/imap/server-text';
import { folderDataProblem } from '../../lib/imap/sync-errors';
import { imapErrorText, imapUrl } from '../../lib/imap/client';

/**
 * Folder names as imapflow decodes the server's modified UTF-7 (RFC 3501 5.1.3: UTF-16 code
 * units in modified base64; test/integration/sync-hostile.test.ts lists them from a server).
 */
const DECODED: Record<string, string> = { '&AAA-': '\u0000', '&2AA-': '\uD800', '&3AA-': '\uDC00', '&2D3eAA-': '😀' };
const decoded = (wire: string) => DECODED[wire];
/** What PostgreSQL accepts in text and UTF-8 can encode: no NUL, no unpaired surrogate. */
const valid = (s: string) => !s.includes('\u0000') && Buffer.from(s, 'utf8').toString('utf8') === s;
/** Nothing a terminal acts on: no C0/C1 control (so no ESC), no DEL, no bidi override. */
// eslint-disable-next-line no-control-regex
const inert = (s: string) => !/[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/.test(s);

describe('server text', () => {
  it('turns the folder names that stopped a sync into valid keys, and leaves the rest alone', () => {
    assert.equal(folderKey(decoded('&AAA-')), '\uFFFD');
    assert.equal(folderKey(decoded('&2AA-')), '\uFFFD');
    assert.equal(folderKey(`a${decoded('&AAA-')}b${decoded('&3AA-')}c`), 'a\uFFFDb\uFFFDc');
    for (const name of ['INBOX', 'Archive/2024', 'Entwürfe', '😀 Fun', decoded('&2D3eAA-'), 'a\tb', 'x\u001B[31m'])
      assert.equal(folderKey(name), name, `${JSON.stringify(name)} keeps its stored key`);
    assert.equal(validText('\uDC00\uD800'), '\uFFFD\uFFFD', 'a reversed pair is two lone halves');
    assert.ok(valid(folderKey('\u0000\uD800\uDFFF\uDBFF')));
  });

  it('finds folders that would be stored under the same key', () => {
    const clashes = folderKeyClashes(['INBOX', '\u0000', '\uFFFD', '\uD800', 'Sent', 'INBOX']);
    assert.deepEqual(
      [...clashes],
      [
        ['\uFFFD', '\u0000'],
        ['\uD800', '\u0000'],
      ],
    );
    assert.equal(folderKeyClashes(['INBOX', 'Sent', 'Entwürfe']).size, 0);
  });

  it('neutralises escape sequences and control characters on one printable line', () => {
    const hostile =
      'Login refused\u0000 \u001B[2J\u001B[1;31mRED\u001B[0m \u001B]8;;https://evil.example\u0007link\u001B]8;;\u0007 \u001B]0;title\u001B\\ \u009B31m \u001BcX\r\nINJECTED fix: rm -rf ~ \u202Eevil\u202C\u007F\uD800';
    const out = printableText(hostile);
    assert.ok(inert(out), JSON.stringify(out));
    assert.ok(valid(out));
    assert.ok(!out.includes('\n') && !out.includes('\r'), 'one line: no forged "fix:" line');
    assert.ok(!out.includes('[2J') && !out.includes('[1;31m') && !out.includes('8;;'), 'whole sequences go');
    assert.match(out, /^Login refused\uFFFD \uFFFD\uFFFDRED\uFFFD \uFFFDlink\uFFFD \uFFFD \uFFFD \uFFFDX INJECTED/);
    assert.equal(printableText('tab\tand\nnewline'), 'tab and newline');
    assert.equal(printableText('Entwürfe 😀 ✓'), 'Entwürfe 😀 ✓', 'ordinary text is untouched');
    assert.equal(
      printableText('\u001B]0;' + 'x'.repeat(2000)).length,
      1 + 2000 - 510,
      'an open OSC swallows at most 512',
    );
  });

  it('bounds the length without splitting a surrogate pair', () => {
    assert.equal(printableText('abcdef', 4), 'abc…');
    assert.equal(printableText('ab😀cd', 4), 'ab…');
    assert.equal(printableText('abc', 3), 'abc');
    assert.equal(serverText('x'.repeat(5000)).length, 2000);
  });

  it('takes anything an error can carry', () => {
    assert.equal(serverText(new Error('NO \u0000bad\u001B[31m ')), 'NO \uFFFDbad\uFFFD');
    assert.equal(serverText(undefined), '');
    assert.equal(serverText(null), '');
    assert.equal(serverText(42), '42');
    assert.equal(folderLabel(`${'a'.repeat(300)}`).length, 200);
  });

  it('removes whole 7-bit sequences from stored content but keeps C1 characters for the caller', () => {
    assert.equal(withoutEscapeSequences('a\u001B[31mb\u001B]0;t\u0007c'), 'abc');
    assert.equal(withoutEscapeSequences('caf\u009D rest'), 'caf\u009D rest', 'a mis-decoded byte eats nothing');
  });

  it('makes an IMAP NO text printable, and a folder with a lone surrogate addressable', () => {
    const err = Object.assign(new Error('Command failed'), {
      responseStatus: 'NO',
      responseText: 'Authentication\u0000 failed \u001B[31mred',
      serverResponseCode: 'AUTHENTICATIONFAILED',
    });
    const text = imapErrorText(err);
    assert.ok(valid(text) && inert(text), JSON.stringify(text));
    assert.match(text, /^\[AUTHENTICATIONFAILED\] Authentication\uFFFD failed \uFFFDred/);
    const endpoint = { host: 'imap.example.com', port: 993, tls: true, user: 'u@example.com' };
    assert.equal(
      imapUrl(endpoint, decoded('&2AA-'), 7, 1),
      'imap://u%40example.com@imap.example.com/%EF%BF%BD;UIDVALIDITY=7/;UID=1',
    );
    assert.equal(
      imapUrl(endpoint, 'a/\u0000', 7, 1),
      'imap://u%40example.com@imap.example.com/a/%EF%BF%BD;UIDVALIDITY=7/;UID=1',
    );
  });

  it('tells a folder that PostgreSQL or the server refused from a failing connection', () => {
    assert.match(
      folderDataProblem({ code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0x00' }) ?? '',
      /PostgreSQL refused the folder's data: invalid byte sequence .* \(SQLSTATE 22021\)/,
    );
    assert.match(
      folderDataProblem({ responseStatus: 'NO', responseText: 'no such\u0000 mailbox\u001B[31m' }) ?? '',
      /^the server answered NO: no such\uFFFD mailbox\uFFFD$/,
    );
    assert.equal(folderDataProblem({ responseStatus: 'NO', serverResponseCode: 'UNAVAILABLE' }), null, 'try later');
    assert.equal(folderDataProblem({ responseStatus: 'NO', serverResponseCode: 'AUTHENTICATIONFAILED' }), null);
    assert.equal(folderDataProblem({ code: 'ECONNRESET' }), null);
    assert.equal(folderDataProblem({ code: '08006' }), null, 'a lost database connection is not the folder');
  });
});
