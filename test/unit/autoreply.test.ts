import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoReplyDecision, autoReplySubject } from '../../lib/autoreply';
import { parseHeaderBlock } from '../../lib/headers';

const h = (s: string) => parseHeaderBlock(s + '\r\n\r\nbody');
const base = 'From: Alice <alice@sender.example>\r\nTo: bob@example.com\r\nSubject: hello';

test('a personal message gets a reply to its Return-Path, else From', () => {
  assert.deepEqual(autoReplyDecision(h(base), 'bob@example.com'), { reply: true, to: 'alice@sender.example' });
  assert.deepEqual(autoReplyDecision(h('Return-Path: <alice+bounce@sender.example>\r\n' + base), 'bob@example.com'), { reply: true, to: 'alice+bounce@sender.example' });
});

for (const [name, extra] of [
  ['Auto-Submitted', 'Auto-Submitted: auto-replied'],
  ['Auto-Submitted auto-generated', 'Auto-Submitted: auto-generated'],
  ['Precedence bulk', 'Precedence: bulk'],
  ['Precedence list', 'Precedence: list'],
  ['Precedence junk', 'Precedence: junk'],
  ['List-Id', 'List-Id: <news.sender.example>'],
  ['List-Unsubscribe', 'List-Unsubscribe: <mailto:u@sender.example>'],
  ['null Return-Path', 'Return-Path: <>'],
  ['X-Auto-Response-Suppress', 'X-Auto-Response-Suppress: OOF'],
  ['our own marker', 'X-Mailroom-Processed: w1'],
  ['DSN', 'Content-Type: multipart/report; report-type=delivery-status; boundary=x'],
] as const) {
  test(`no reply: ${name}`, () => {
    const d = autoReplyDecision(h(`${extra}\r\n${base}`), 'bob@example.com');
    assert.equal(d.reply, false);
  });
}

test('no reply to mailer-daemon, noreply and similar senders', () => {
  for (const from of ['MAILER-DAEMON@x.example', 'noreply@x.example', 'no-reply@x.example', 'do-not-reply@x.example', 'postmaster@x.example', 'list-request@x.example', 'bounces@x.example']) {
    const d = autoReplyDecision(h(`From: ${from}\r\nTo: bob@example.com`), 'bob@example.com');
    assert.equal(d.reply, false, from);
  }
});

test('Auto-Submitted: no is a human message', () => {
  assert.equal(autoReplyDecision(h('Auto-Submitted: no\r\n' + base), 'bob@example.com').reply, true);
});

test('subject', () => {
  assert.equal(autoReplySubject('Lunch?'), 'Auto: Lunch?');
  assert.equal(autoReplySubject(undefined), 'Auto: (no subject)');
});
