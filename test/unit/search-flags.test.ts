// Pure parts of search: flags in canonical form (lib/sync-store/flags.ts), the body text that is
// indexed (lib/sync-store/search-text.ts), search input validation (lib/sync-store/search.ts)
// and mail text made safe for a terminal (lib/cli/printable.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalFlag, canonicalFlags, isRecentFlag } from '../../lib/sync-store/flags';
import { BODY_TEXT_MAX_CHARS, extractBodyText } from '../../lib/sync-store/search-text';
import { parseSearchQuery, SearchInputError } from '../../lib/sync-store/search';
import { printable, printableJson } from '../../lib/cli/printable';
import { toNewMessage } from '../../lib/imap/client';
import { folderKey } from '../../lib/imap/server-text';

describe('canonical flags', () => {
  it('spells system flags as RFC 3501 does, whatever the case sent', () => {
    for (const [sent, stored] of [
      ['\\seen', '\\Seen'],
      ['\\SEEN', '\\Seen'],
      ['\\answered', '\\Answered'],
      ['\\fLaGgEd', '\\Flagged'],
      ['\\DELETED', '\\Deleted'],
      ['\\draft', '\\Draft'],
      ['\\RECENT', '\\Recent'],
    ])
      assert.equal(canonicalFlag(sent), stored, sent);
  });

  it('keeps keywords and unknown backslash flags exactly as sent', () => {
    for (const f of ['$Label1', '$label1', 'Junk', 'seen', '\\Seenx', '\\Custom', '\\İmportant', 'NonJunk'])
      assert.equal(canonicalFlag(f), f);
  });

  it('dedupes flags that differ only in case, and sorts', () => {
    assert.deepEqual(canonicalFlags(['\\seen', 'Work', '\\Seen', '\\flagged']), ['Work', '\\Flagged', '\\Seen']);
    assert.deepEqual(canonicalFlags([]), []);
  });

  it('recognises \\Recent in any case (never stored: it belongs to one session)', () => {
    assert.ok(isRecentFlag('\\recent') && isRecentFlag('\\Recent') && isRecentFlag('\\RECENT'));
    assert.ok(!isRecentFlag('Recent') && !isRecentFlag('\\Seen'));
    // A server that answers in lower case: \\recent is dropped at the IMAP boundary like \\Recent.
    const row = toNewMessage(
      { seq: 1, uid: 7, flags: new Set(['\\recent', '\\seen', '$Work']) } as Parameters<typeof toNewMessage>[0],
      null,
      { host: 'imap.example.com', port: 993, tls: true, user: 'u' },
      'INBOX',
      1,
    );
    assert.deepEqual(canonicalFlags(row.flags), ['$Work', '\\Seen']);
  });
});

describe('body text for search', () => {
  const mime = (type: string, body: string) =>
    Buffer.from(`From: a@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: ${type}\r\n\r\n${body}\r\n`);

  it('takes the text part, or the text of an HTML-only message', async () => {
    assert.equal(await extractBodyText(mime('text/plain; charset=utf-8', 'Hello\r\n\r\n  world')), 'Hello world');
    assert.equal(
      await extractBodyText(mime('text/html', '<p>Our <b>meetings</b></p><script>x</script>')),
      'Our meetings',
    );
  });

  it('is storable and bounded: no NUL or controls, at most BODY_TEXT_MAX_CHARS', async () => {
    const text = await extractBodyText(mime('text/plain', `a\u0000b\u001b[31mc ${'word '.repeat(40_000)}`));
    assert.ok(!text.includes('\u0000'));
    assert.ok(!text.includes('\u001b'));
    assert.ok(text.length <= BODY_TEXT_MAX_CHARS);
    assert.ok(text.startsWith('ab'));
  });

  it('gives empty text for a message without a body or with broken MIME, never an error', async () => {
    assert.equal(await extractBodyText(Buffer.from('Subject: only headers\r\n\r\n')), '');
    assert.equal(typeof (await extractBodyText(Buffer.from([0xff, 0xfe, 0x00, 0x01]))), 'string');
  });
});

describe('search input', () => {
  it('fills defaults and canonicalises flag filters', () => {
    const q = parseSearchQuery({ text: ' invoice ', flags: ['\\seen', '\\SEEN'], withoutFlags: ['$Work'] });
    assert.equal(q.text, 'invoice');
    assert.deepEqual(q.flags, ['\\Seen']);
    assert.deepEqual(q.withoutFlags, ['$Work']);
    assert.equal(q.sort, 'newest');
    assert.equal(q.limit, 50);
  });

  it('matches folders by the key they are stored under (a NUL in the server name is U+FFFD)', () => {
    const q = parseSearchQuery({ folders: ['Odd\u0000Name', 'INBOX'] });
    assert.deepEqual(q.folders, [folderKey('Odd\u0000Name'), 'INBOX']);
    assert.deepEqual(q.folders, ['Odd\uFFFDName', 'INBOX']);
  });

  it('names every field that is wrong', () => {
    assert.throws(
      () => parseSearchQuery({ accountIds: ['x'], limit: 0, since: 'soon' }),
      (err: Error) =>
        err instanceof SearchInputError &&
        /accountIds\.0/.test(err.message) &&
        /limit/.test(err.message) &&
        /since/.test(err.message),
    );
    assert.throws(() => parseSearchQuery({ folder: 'INBOX' }), SearchInputError, 'unknown fields are refused');
  });
});

describe('printable mail text', () => {
  it('removes escape sequences, C0/C1 controls and bidi overrides from a table cell', () => {
    assert.equal(printable('a\u001b[31mred\u001b[0m b'), 'ared b');
    assert.equal(printable('x\u009b2Jy'), 'xy');
    assert.equal(printable('bell\u0007 tab\t cr\r nl\n'), 'bell  tab  cr  nl ');
    assert.equal(printable('\u202Eevil'), ' evil');
    assert.equal(printable(null), '');
  });

  it('cuts at a width with an ellipsis, never inside a surrogate pair', () => {
    assert.equal(printable('abcdef', 4), 'abc…');
    assert.equal(printable('😀😀😀', 2), '😀…');
    assert.equal(printable('abc', 3), 'abc');
  });

  it('JSON escapes what JSON.stringify leaves raw, and stays valid JSON', () => {
    const value = { s: 'a\u009bb\u202Ec\u2028d\u001be' };
    const json = printableJson(value);
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2028]/.test(json));
    assert.deepEqual(JSON.parse(json), value);
  });
});
