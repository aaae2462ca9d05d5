// What fetchEmail decides from a stored message (lib/mail/summarize.ts): SES verdicts and
// quarantine, SNS notifications and complaints, the header-recipient cap, doubt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EmailSummary, FetchResult } from '../../contracts/inbound';
import { DEFAULT_SUMMARIZE_OPTIONS, summarizeEmail } from '../../lib/mail/summarize';
import { rawMail, sesBounce, sesComplaint, sesStored, snsNotificationMail } from '../../scripts/stack/demo-emails';

const ref = { domain: 'example.com', bucket: 'example-com-emails', key: 'k' };
const human = { from: 'alice@sender.example', to: ['bob@example.com'], subject: 'Lunch?' };

function email(r: FetchResult): EmailSummary {
  assert.equal(r.kind, 'email', JSON.stringify(r));
  return (r as { summary: EmailSummary }).summary;
}

test("a person's mail: a reply target, addressed recipients, no automatic verdict", async () => {
  const s = email(await summarizeEmail(rawMail(human), ref));
  assert.deepEqual(s.autoReply, { to: 'alice@sender.example' });
  assert.deepEqual(s.addressed, ['bob@example.com']);
  assert.equal(s.automatic, undefined);
  assert.equal(s.outsideForward, undefined);
  assert.equal(s.verdicts, undefined, 'no SES block, no verdicts: behaves as before');
});

test('virus FAIL is quarantined; the notification verdict wins over the header', async () => {
  const r = await summarizeEmail(sesStored(human, { spam: 'PASS', virus: 'FAIL' }), ref);
  assert.equal(r.kind, 'terminal');
  assert.ok(r.kind === 'terminal');
  assert.equal(r.status, 'quarantined');
  assert.match(r.reason, /SES virus verdict FAIL \(headers\)/);
  assert.deepEqual(r.verdicts, { spam: 'PASS', virus: 'FAIL', source: 'headers' });
  const byNotification = await summarizeEmail(sesStored(human, { virus: 'PASS' }), {
    ...ref,
    verdicts: { virus: 'FAIL', source: 'notification' },
  });
  assert.equal(byNotification.kind === 'terminal' && byNotification.status, 'quarantined');
});

test('spam FAIL: delivered marked (default), never answered or forwarded outside; or quarantined', async () => {
  const s = email(
    await summarizeEmail(
      sesStored(human, { spam: 'FAIL', virus: 'PASS', spf: 'PASS', dkim: 'PASS', dmarc: 'PASS' }),
      ref,
    ),
  );
  assert.equal(s.spam, true);
  assert.deepEqual(s.autoReply, { skip: 'SES spam verdict FAIL' });
  assert.deepEqual(s.outsideForward, { skip: 'SES spam verdict FAIL' });
  const q = await summarizeEmail(sesStored(human, { spam: 'FAIL' }), ref, {
    ...DEFAULT_SUMMARIZE_OPTIONS,
    spamAction: 'quarantine',
  });
  assert.equal(q.kind === 'terminal' && q.status, 'quarantined');
});

test('failed sender authentication: no reply, and a report from it is not rewritten', async () => {
  const s = email(await summarizeEmail(sesStored(human, { spf: 'PASS', dkim: 'FAIL', dmarc: 'FAIL' }), ref));
  assert.deepEqual(s.autoReply, { skip: 'sender authentication failed (DKIM, DMARC)' });
  const forged = Buffer.concat([
    Buffer.from('X-SES-Spam-Verdict: PASS\r\n'),
    sesBounce({
      to: 'bob@example.com',
      sesMessageId: '0100018c-forged',
      bouncedRecipient: 'x@far.example',
      originalSubject: 'x',
    }),
  ]);
  assert.equal(
    email(await summarizeEmail(forged, ref)).bounce?.untrusted,
    undefined,
    'a verdict the sender wrote proves nothing',
  );
  const failed = email(
    await summarizeEmail(
      sesBounce({
        to: 'bob@example.com',
        sesMessageId: '0100018c-forged',
        bouncedRecipient: 'x@far.example',
        originalSubject: 'x',
      }),
      { ...ref, verdicts: { dmarc: 'FAIL', source: 'notification' } },
    ),
  );
  assert.match(failed.bounce?.untrusted ?? '', /DMARC/);
});

test('SES notifications mailed by SNS: bounces and complaints are matched by mail.messageId; deliveries are not bounces', async () => {
  for (const jsonEnvelope of [false, true]) {
    const b = email(
      await summarizeEmail(
        snsNotificationMail({
          to: 'bob@example.com',
          type: 'Bounce',
          sesMessageId: '0100018c1f2e3d4c-1a2b3c4d-1111-2222-3333-444455556666-000000',
          recipients: ['Jane@far.example'],
          originalSubject: 'Offer',
          jsonEnvelope,
        }),
        ref,
      ),
    );
    assert.deepEqual(b.bounce?.originalMessageIds, ['0100018c1f2e3d4c-1a2b3c4d-1111-2222-3333-444455556666-000000']);
    assert.equal(b.bounce?.kind, 'bounce');
    assert.equal(b.bounce?.sns, true);
    assert.deepEqual(
      b.bounce?.recipients.map((r) => [r.recipient, r.action, r.status]),
      [['jane@far.example', 'failed', '5.1.1']],
    );
    assert.ok('skip' in b.autoReply);
  }
  const c = email(
    await summarizeEmail(
      snsNotificationMail({
        to: 'bob@example.com',
        type: 'Complaint',
        sesMessageId: 'id-2',
        recipients: ['rich@far.example'],
      }),
      ref,
    ),
  );
  assert.equal(c.bounce?.kind, 'complaint');
  const d = email(
    await summarizeEmail(
      snsNotificationMail({
        to: 'bob@example.com',
        type: 'Delivery',
        sesMessageId: 'id-3',
        recipients: ['ok@far.example'],
      }),
      ref,
    ),
  );
  assert.equal(d.bounce, undefined);
  assert.equal(d.automatic?.rule, 'ses-notification');
  assert.ok('skip' in d.autoReply);
});

test('an SES complaint (RFC 5965 feedback report) names the complainer and the original message', async () => {
  const s = email(
    await summarizeEmail(
      sesComplaint({
        to: 'bob@example.com',
        sesMessageId: '0100018c1f2e3d4c-1a2b3c4d-1111-2222-3333-444455556666-000000',
        complainedRecipient: 'rich@far.example',
        originalSubject: 'Offer',
      }),
      ref,
    ),
  );
  assert.equal(s.bounce?.kind, 'complaint');
  assert.deepEqual(s.bounce?.recipients, [
    { recipient: 'rich@far.example', action: 'complained', diagnostic: 'abuse' },
  ]);
  assert.ok(
    s.bounce?.originalMessageIds.includes(
      '<0100018c1f2e3d4c-1a2b3c4d-1111-2222-3333-444455556666-000000@email.amazonses.com>',
    ),
  );
  assert.ok(s.bounce?.originalMessageIds.includes('0100018c1f2e3d4c-1a2b3c4d-1111-2222-3333-444455556666-000000'));
});

test('recipients from headers are capped: above MAX_HEADER_RECIPIENTS nothing is delivered', async () => {
  const many = Array.from({ length: 60 }, (_, i) => `user${i}@example.com`);
  const r = await summarizeEmail(rawMail({ from: 'alice@sender.example', to: many, subject: 'All hands' }), ref);
  assert.equal(r.kind === 'terminal' && r.status, 'invalid');
  assert.match(
    r.kind === 'terminal' ? r.reason : '',
    /names 60 recipients .* MAX_HEADER_RECIPIENTS=50, nothing delivered/,
  );
  const withEnvelope = email(
    await summarizeEmail(rawMail({ from: 'alice@sender.example', to: many, subject: 'All hands' }), {
      ...ref,
      envelopeRecipients: ['user1@example.com'],
    }),
  );
  assert.deepEqual(withEnvelope.recipients, ['user1@example.com'], 'the envelope is the truth and is not capped');
});

test('a header block read with doubt: delivered, never answered, never forwarded outside', async () => {
  const raw = Buffer.from(
    rawMail(human).toString().replace('Subject: Lunch?\r\n', 'Subject: Lunch?\r\nthis line is not a header\r\n'),
  );
  const s = email(await summarizeEmail(raw, ref));
  assert.deepEqual(s.recipients, ['bob@example.com']);
  assert.match('skip' in s.autoReply ? s.autoReply.skip : '', /header block unreadable/);
  assert.match(s.outsideForward?.skip ?? '', /header block unreadable/);
});
