import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isBounce,
  isSesSender,
  parseBounce,
  parseDeliveryStatus,
  rewriteBounce,
  sesMessageIdCandidates,
} from '../../lib/mail/bounce';
import { parseHeaderBlock, readHeaderBlock } from '../../lib/mail/headers';
import { sesBounce } from '../../scripts/stack/demo-emails';

const raw = sesBounce({
  to: 'alice@example.com',
  sesMessageId: '0100018c-abc-000000',
  bouncedRecipient: 'nobody@far.example',
  originalSubject: 'Quarterly report',
});

test('an SES bounce is recognised and read', () => {
  const headers = parseHeaderBlock(raw);
  assert.equal(isBounce(headers), true);
  assert.equal(isSesSender(headers), true);
  const block = readHeaderBlock(raw);
  const facts = parseBounce(raw.subarray(block.bodyStart).toString(), block);
  assert.deepEqual(facts.recipients, [
    {
      recipient: 'nobody@far.example',
      action: 'failed',
      status: '5.1.1',
      diagnostic: '550 5.1.1 <nobody@far.example>: Recipient address rejected: User unknown',
    },
  ]);
  assert.deepEqual(facts.originalMessageIds, ['<0100018c-abc-000000@us-east-1.amazonses.com>']);
  assert.equal(facts.kind, 'bounce');
});

test('SES Message-ID forms: header form yields the bare id first', () => {
  assert.deepEqual(sesMessageIdCandidates('<0100018c-abc@us-east-1.amazonses.com>'), [
    '0100018c-abc',
    '0100018c-abc@us-east-1.amazonses.com',
  ]);
  assert.deepEqual(sesMessageIdCandidates('0100018c-abc'), ['0100018c-abc']);
  assert.deepEqual(sesMessageIdCandidates('<x@other.example>'), ['x@other.example']);
});

test('delivery-status with several recipients and folded lines', () => {
  const r = parseDeliveryStatus(
    'Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; A@x.org\nAction: failed\nStatus: 5.2.2\nDiagnostic-Code: smtp; 552 mailbox\n full\n\nOriginal-Recipient: rfc822;b@y.org\nFinal-Recipient: rfc822;<b@y.org>\nAction: delayed\nStatus: 4.4.1\n',
  );
  assert.deepEqual(r, [
    { recipient: 'a@x.org', action: 'failed', status: '5.2.2', diagnostic: '552 mailbox full' },
    { recipient: 'b@y.org', action: 'delayed', status: '4.4.1', diagnostic: undefined },
  ]);
});

test('rewrite: From/Reply-To/Subject name the bounced recipient, originals kept, body untouched', () => {
  const out = rewriteBounce(
    raw,
    {
      bouncedRecipient: 'nobody@far.example',
      status: '5.1.1',
      diagnostic: '550 User unknown',
      originalSubject: 'Quarterly report',
    },
    'w1',
  );
  const text = out.toString();
  const headers = parseHeaderBlock(out);
  assert.equal(headers.get('from')?.length, 1);
  assert.match(headers.get('from')![0], /<nobody@far\.example>$/);
  assert.equal(headers.get('reply-to')![0], '<nobody@far.example>');
  assert.match(headers.get('subject')![0], /Delivery failed to nobody@far\.example/);
  assert.equal(headers.get('x-original-from')![0], 'MAILER-DAEMON@amazonses.com');
  assert.equal(headers.get('x-original-subject')![0], 'Delivery Status Notification (Failure)');
  assert.equal(headers.get('x-mailroom-processed')![0], 'w1');
  const body = (s: string) => s.slice(s.indexOf('\r\n\r\n'));
  assert.equal(body(text), body(raw.toString()));
});

test('a bounce SES forwards names our message id only in its VERP address: still found', () => {
  const id = '00000331b8b1d648-b8302192-701f-124d-a1d5-d268912677de-135246';
  const raw = Buffer.from(
    [
      `X-Original-To: ${id}@email-bounces.amazonses.com`,
      `Delivered-To: ${id}@email-bounces.amazonses.com`,
      'From: MAILER-DAEMON@mx.far.example',
      'Subject: Undelivered Mail Returned to Sender',
      'Return-Path: <>',
      '',
      'The mail system: <x@far.example>: user unknown',
      '',
    ].join('\r\n'),
  );
  const block = readHeaderBlock(raw);
  assert.equal(isBounce(block.headers), true);
  assert.deepEqual(parseBounce(raw.subarray(block.bodyStart).toString(), block).originalMessageIds, [id]);
});
