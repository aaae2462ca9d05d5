import { test } from 'node:test';
import assert from 'node:assert/strict';
import { internalCopy, outsideForward } from '../../lib/mail/forward';
import { readHeaderBlock } from '../../lib/mail/headers';

const stored = (from: string, extra: string[] = []) =>
  Buffer.from(
    [
      'Return-Path: <eve@sender.example>',
      'DKIM-Signature: v=1; d=sender.example;',
      '\tb=abc',
      'Sender: list@sender.example',
      `From: ${from}`,
      'To: erin@example.com',
      'Subject: hi',
      'X-Mailroom-Spam: no',
      ...extra,
      '',
      'body',
    ].join('\n'),
  );

test("an outside forward goes in the recipient's name; the original sender stays reachable", () => {
  const out = outsideForward(stored('Eve Example <eve@sender.example>'), {
    recipient: 'erin@example.com',
    marker: 'w1',
  });
  const h = readHeaderBlock(out).headers;
  assert.deepEqual(h.get('from'), ['"Eve Example via example.com" <erin@example.com>']);
  assert.deepEqual(h.get('reply-to'), ['Eve Example <eve@sender.example>']);
  assert.deepEqual(h.get('x-original-from'), ['Eve Example <eve@sender.example>']);
  assert.deepEqual(h.get('x-mailroom-processed'), ['w1; forwarded-for=erin@example.com']);
  for (const gone of ['return-path', 'sender', 'dkim-signature', 'x-mailroom-spam'])
    assert.equal(h.has(gone), false, gone);
  assert.equal(out.toString().endsWith('\r\n\r\nbody'), true, 'CRLF, body kept');
});

test('an existing Reply-To stays; a sender without a name is named by its address', () => {
  const h = readHeaderBlock(
    outsideForward(stored('eve@sender.example', ['Reply-To: team@sender.example']), {
      recipient: 'erin@example.com',
      marker: 'w1',
      spam: true,
    }),
  ).headers;
  assert.deepEqual(h.get('from'), ['"eve@sender.example via example.com" <erin@example.com>']);
  assert.deepEqual(h.get('reply-to'), ['team@sender.example']);
  assert.deepEqual(h.get('x-mailroom-spam'), ['yes']);
});

test('a display name with encoded line breaks cannot inject headers; non-ASCII names are encoded', () => {
  const injected = outsideForward(stored('=?UTF-8?Q?Eve=0D=0ABcc:_victim=40evil.example?= <eve@sender.example>'), {
    recipient: 'erin@example.com',
    marker: 'w1',
  });
  const h = readHeaderBlock(injected).headers;
  assert.equal(h.has('bcc'), false);
  assert.deepEqual(h.get('from'), ['"Eve Bcc: victim@evil.example via example.com" <erin@example.com>']);
  const utf8 = readHeaderBlock(
    outsideForward(stored('=?UTF-8?Q?J=C3=BCrgen?= <j@sender.example>'), {
      recipient: 'erin@example.com',
      marker: 'w1',
    }),
  ).headers;
  assert.equal(utf8.get('from')![0], '=?UTF-8?Q?J=C3=BCrgen_via_example=2Ecom?= <erin@example.com>');
});

test('an internal copy changes nothing but our marker and our spam mark', () => {
  const h = readHeaderBlock(
    internalCopy(stored('Eve <eve@sender.example>'), { marker: 'w1; forwarded-for=erin@example.com' }),
  ).headers;
  assert.deepEqual(h.get('from'), ['Eve <eve@sender.example>']);
  assert.equal(h.has('dkim-signature'), true);
  assert.equal(h.has('x-mailroom-spam'), false, 'a spam mark written by the sender is removed');
});
