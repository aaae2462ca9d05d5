// The one header reader (lib/mail/headers.ts) and what goes out (lib/mail/outgoing.ts), on every
// line ending: CRLF, LF, bare CR and mixed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readHeaderBlock } from '../../lib/mail/headers';
import { outgoingMessage, toCrlf } from '../../lib/mail/outgoing';
import { LINE_ENDINGS, withLineEndings } from '../support/line-endings';

const message = Buffer.from(
  [
    'Return-Path: <>',
    'Received: from mx.example by inbound-smtp.us-east-1.amazonaws.com',
    '\tfor <u@example.com>; Mon, 1 Jan 2024 00:00:00 +0000',
    'From: Mail Delivery System <MAILER-DAEMON@mx.example>',
    'To: u@example.com',
    'Auto-Submitted: auto-replied',
    'Subject: Undelivered Mail',
    'Content-Type: multipart/report; report-type=delivery-status;',
    ' boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain',
    '',
    'Sorry.',
    '--b1--',
    '',
  ].join('\r\n'),
);

test('the same fields and body start whatever the line endings', () => {
  const want = readHeaderBlock(message);
  assert.equal(want.headers.get('auto-submitted')?.[0], 'auto-replied');
  assert.equal(want.headers.get('content-type')?.[0], 'multipart/report; report-type=delivery-status; boundary="b1"');
  assert.equal(
    want.headers.get('received')?.[0],
    'from mx.example by inbound-smtp.us-east-1.amazonaws.com for <u@example.com>; Mon, 1 Jan 2024 00:00:00 +0000',
  );
  assert.equal(want.doubt, undefined);
  for (const style of LINE_ENDINGS) {
    const variant = withLineEndings(message, style, 7);
    const got = readHeaderBlock(variant);
    assert.deepEqual(got.headers, want.headers, style);
    assert.equal(got.doubt, undefined, style);
    assert.equal(
      toCrlf(variant.subarray(got.bodyStart)).toString(),
      toCrlf(message.subarray(want.bodyStart)).toString(),
      style,
    );
  }
});

test('bare CR mail is not one giant header (the issue 11 trial: 24 replies to automatic mail)', () => {
  const cr = withLineEndings(message, 'cr');
  const block = readHeaderBlock(cr);
  assert.equal(block.fields.length, 7);
  assert.equal(block.headers.get('return-path')?.[0], '<>');
});

test('a line that is neither a field nor folded ends the header block, with doubt', () => {
  const raw = Buffer.from(
    'From: a@b.example\r\nTo: u@example.com\r\nthis is the body without an empty line\r\nTo: victim@evil.example\r\n',
  );
  const block = readHeaderBlock(raw);
  assert.deepEqual(block.headers.get('to'), ['u@example.com'], 'nothing after the non-field line is a header');
  assert.match(block.doubt ?? '', /line 3 is neither a header field nor a folded line/);
  assert.equal(raw.subarray(block.bodyStart).toString().split('\r\n')[0], 'this is the body without an empty line');
});

test('doubt: NUL bytes, two From fields, an oversized block; not doubt: an mbox From_ line, a header-only message', () => {
  assert.match(readHeaderBlock('From: a@b.example\r\nSubject: x\0y\r\n\r\n').doubt ?? '', /NUL/);
  assert.match(readHeaderBlock('From: a@b.example\r\nFrom: c@d.example\r\n\r\n').doubt ?? '', /2 from fields/);
  assert.match(readHeaderBlock('X-Big: ' + 'a'.repeat(1024 * 1024 + 10) + '\r\n\r\n').doubt ?? '', /longer than/);
  const mbox = readHeaderBlock('From MAILER-DAEMON Fri Jul  8 12:08:34 2005\nFrom: a@b.example\nSubject: s\n\nbody');
  assert.equal(mbox.doubt, undefined);
  assert.deepEqual([...mbox.headers.keys()], ['from', 'subject']);
  const headerOnly = readHeaderBlock('From: a@b.example\r\nSubject: s');
  assert.equal(headerOnly.doubt, undefined);
  assert.equal(headerOnly.headers.get('subject')?.[0], 's');
});

test('not a message: no header field at all', () => {
  assert.equal(readHeaderBlock(Buffer.from([0, 1, 2, 3, 255, 254, 10, 10, 10])).headers.size, 0);
  assert.equal(readHeaderBlock(' leading fold\r\nFrom: a@b.example\r\n\r\n').headers.size, 0);
});

test('what goes out is CRLF only: the stored bytes, our header edits, nothing else', () => {
  for (const style of LINE_ENDINGS) {
    const out = outgoingMessage(withLineEndings(message, style, 3), {
      add: [['X-Mailroom-Spam', 'yes\r\nBcc: injected@evil.example']],
      remove: ['auto-submitted'],
    });
    const text = out.toString('latin1');
    assert.equal(/\r(?!\n)|(?<!\r)\n/.test(text), false, `${style}: no bare CR or LF`);
    assert.ok(
      text.startsWith('X-Mailroom-Spam: yes Bcc: injected@evil.example\r\nReturn-Path: <>\r\n'),
      `${style}: added on top, injection flattened`,
    );
    assert.equal(text.includes('Auto-Submitted'), false);
    assert.equal(
      text.slice(text.indexOf('\r\n\r\n')),
      message.toString('latin1').slice(message.indexOf('\r\n\r\n')),
      `${style}: body unchanged`,
    );
  }
  // A header block that ended without an empty line gets one.
  assert.equal(
    outgoingMessage(Buffer.from('From: a@b.example\nbody line\n')).toString(),
    'From: a@b.example\r\n\r\nbody line\r\n',
  );
  assert.equal(outgoingMessage(Buffer.from('From: a@b.example')).toString(), 'From: a@b.example\r\n\r\n');
});

test('toCrlf leaves CRLF mail as it is', () => {
  const crlf = Buffer.from('a\r\nb\r\n');
  assert.equal(toCrlf(crlf), crlf);
  assert.equal(toCrlf(Buffer.from('a\rb\nc\r\n\r')).toString(), 'a\r\nb\r\nc\r\n\r\n');
});
