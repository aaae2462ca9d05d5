import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHeaderBlock } from '../../lib/mail/headers';
import { chooseRecipients } from '../../lib/mail/recipients';

const headers = parseHeaderBlock(
  'Received: from mail.sender.example by inbound-smtp.us-east-1.amazonaws.com with SMTP id abc\r\n for hidden@example.com; Mon, 1 Jan 2024 00:00:00 +0000\r\n' +
    'From: Alice <alice@sender.example>\r\nTo: "Bob, B." <Bob@Example.com>, carol@other.example\r\nCc: team: dave@example.com, erin@example.com;\r\nSubject: hi\r\n\r\nbody',
);

test('envelope recipients win and are limited to the object domain', () => {
  const c = chooseRecipients({
    envelope: ['Bob@example.com', 'bcc-only@example.com', 'x@other.example'],
    headers,
    domain: 'example.com',
  });
  assert.deepEqual(c.recipients, ['bob@example.com', 'bcc-only@example.com']);
  assert.equal(c.source, 'envelope');
  assert.deepEqual(c.foreign, ['x@other.example']);
});

test('without envelope: To, Cc (groups too) and the SES Received "for" clause', () => {
  const c = chooseRecipients({ headers, domain: 'example.com' });
  assert.equal(c.source, 'headers');
  assert.deepEqual(c.recipients.sort(), [
    'bob@example.com',
    'dave@example.com',
    'erin@example.com',
    'hidden@example.com',
  ]);
  assert.deepEqual(c.foreign, ['carol@other.example']);
});

test('no recipient in our domain', () => {
  const c = chooseRecipients({ headers: parseHeaderBlock('To: a@elsewhere.example\r\n\r\n'), domain: 'example.com' });
  assert.deepEqual(c.recipients, []);
});
