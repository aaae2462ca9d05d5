// The recipient check of outgoing mail (lib/mail/send-recipients.ts) and the pure limits of
// sending (lib/outbox/limits.ts): what is refused before anything is queued, and why.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redactAddresses } from '../../lib/mail/address';
import { validateRecipients } from '../../lib/mail/send-recipients';
import { attachmentProblems, rateLimitWait } from '../../lib/outbox/limits';

describe('validateRecipients', () => {
  test('normalises addresses, keeps display names, splits lists and flattens groups', () => {
    const r = validateRecipients({
      to: '"Bob B." <Bob@Example.COM>, carol@example.com',
      cc: ['Team: dave@example.net, erin@example.net;'],
    });
    assert.deepEqual(r, {
      ok: true,
      to: [{ address: 'bob@example.com', name: 'Bob B.' }, { address: 'carol@example.com' }],
      cc: [{ address: 'dave@example.net' }, { address: 'erin@example.net' }],
      bcc: [],
      count: 4,
    });
  });

  test('an address listed twice is kept once, in its first field (To before Cc before Bcc)', () => {
    const r = validateRecipients({ to: 'a@x.org', cc: 'A@X.org, b@x.org', bcc: ['b@x.org', 'a@x.org'] });
    assert.ok(r.ok);
    assert.deepEqual(
      [r.to, r.cc, r.bcc].map((l) => l.map((m) => m.address)),
      [['a@x.org'], ['b@x.org'], []],
    );
  });

  test('every invalid entry is named with its field', () => {
    const r = validateRecipients({ to: 'ok@x.org, x@localhost', cc: 'not an address', bcc: 'b@' });
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.equal(r.problems.length, 3, r.problems.join('\n'));
    assert.match(r.problems[0], /^to: "x@localhost" is not a deliverable address/);
    assert.match(r.problems[1], /^cc: /);
    assert.match(r.problems[2], /^bcc: /);
  });

  test('a line break in a display name cannot add a header or a recipient', () => {
    const r = validateRecipients({ to: '"x\r\nBcc: evil@x.org" <a@x.org>' });
    assert.ok(r.ok);
    assert.deepEqual(r.to, [{ address: 'a@x.org', name: 'x Bcc: evil@x.org' }]);
    assert.equal(r.count, 1);
  });

  test('no recipient, or more than the limit, is refused', () => {
    assert.deepEqual(validateRecipients({ to: ' ', cc: [] }), {
      ok: false,
      problems: ['no recipient: give at least one To, Cc or Bcc address'],
    });
    const many = validateRecipients({ to: ['a@x.org', 'b@x.org', 'c@x.org'] }, { maxRecipients: 2 });
    assert.ok(!many.ok);
    assert.match(many.problems[0], /3 recipients, more than the limit of 2/);
  });
});

describe('attachmentProblems', () => {
  test('names the file and the limit when over the cap', () => {
    const p = attachmentProblems(
      [
        { filename: 'ok.txt', contentType: 'text/plain', size: 10, path: '/tmp/ok.txt' },
        {
          filename: 'huge.iso',
          contentType: 'application/octet-stream',
          size: 3 * 1024 * 1024,
          s3Bucket: 'b',
          s3Key: 'k',
        },
      ],
      2 * 1024 * 1024,
    );
    assert.deepEqual(p, [
      'attachment huge.iso is 3.0 MiB (3145728 bytes), over the limit of 2.0 MiB (2097152 bytes) per file (SEND_MAX_ATTACHMENT_BYTES)',
    ]);
  });

  test('needs exactly one source, a content type and a size', () => {
    const p = attachmentProblems(
      [
        { filename: 'x', contentType: 'nonsense', size: -1 } as never,
        { filename: 'y', contentType: 'a/b', size: 1, path: '/p', s3Bucket: 'b', s3Key: 'k' } as never,
      ],
      100,
    );
    assert.equal(p.length, 4, p.join('\n'));
  });
});

describe('rateLimitWait', () => {
  test('0 while under the limit, else until the oldest submission in the window leaves it', () => {
    const now = 1_000_000;
    assert.equal(rateLimitWait([], now, 2), 0);
    assert.equal(rateLimitWait([now - 10_000], now, 2), 0);
    assert.equal(rateLimitWait([now - 10_000, now - 5_000], now, 2), 50_000);
    assert.equal(rateLimitWait([now - 70_000, now - 5_000], now, 2), 0, 'older ones no longer count');
    assert.equal(rateLimitWait([now - 1, now - 2, now - 30_000], now, 2), 59_998);
    assert.equal(rateLimitWait([now], now, 0), 0, '0 turns the limit off');
  });
});

describe('redactAddresses', () => {
  test('server replies lose their addresses, keep their words and codes', () => {
    assert.equal(
      redactAddresses('550 5.1.1 <bob@Example.com>: Recipient address rejected'),
      '550 5.1.1 <address>: Recipient address rejected',
    );
    assert.equal(
      redactAddresses('451 try later for a.b+c@mail.example.org, x@y.io'),
      '451 try later for <address>, <address>',
    );
    assert.equal(
      redactAddresses('421 4.7.0 too many connections from 10.0.0.1'),
      '421 4.7.0 too many connections from 10.0.0.1',
    );
  });
});
