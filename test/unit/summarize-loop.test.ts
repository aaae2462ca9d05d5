// Loop detection in the fetch step: our marker header, or too many hops when a forwarder
// rebuilt the headers and dropped the marker.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_HOPS, summarizeEmail } from '../../lib/mail/summarize';

const ref = { domain: 'example.com', bucket: 'example.com-emails', key: 'k' };
const mail = (extra: string[]) =>
  Buffer.from(
    [...extra, 'From: a@sender.example', 'To: u1@example.com', 'Subject: hi', 'Message-ID: <x@y>', '', 'body'].join(
      '\r\n',
    ),
  );
const received = (n: number) =>
  Array.from(
    { length: n },
    (_, i) => `Received: from hop${i}.example by hop${i + 1}.example; Mon, 23 Nov 2026 10:00:00 +0000`,
  );

test('a message that went round more than MAX_HOPS relays is a loop', async () => {
  const r = await summarizeEmail(mail(received(MAX_HOPS + 1)), ref);
  assert.equal(r.kind, 'email');
  if (r.kind === 'email') assert.match(r.summary.loop ?? '', /51 Received headers: more than 50 hops/);
});

test('a long but honest path is not a loop', async () => {
  const r = await summarizeEmail(mail(received(MAX_HOPS)), ref);
  assert.equal(r.kind === 'email' ? r.summary.loop : 'terminal', undefined);
});

test('our marker header is a loop at the first hop', async () => {
  const r = await summarizeEmail(
    mail(['X-Mailroom-Processed: worker-1; forwarded-for=u1@example.com', ...received(2)]),
    ref,
  );
  assert.equal(r.kind, 'email');
  if (r.kind === 'email') assert.match(r.summary.loop ?? '', /marker header present \(processed by worker-1/);
});
