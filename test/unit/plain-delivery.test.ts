// When fetchAndDeliver may deliver an email itself (lib/mail/plain-delivery.ts): only when the
// workflow would go from the fetch straight to that delivery, with the same request and tag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EmailSummary, FetchResult, FetchedLookups, InboundRef } from '../../contracts/inbound';
import { plainDelivery } from '../../lib/mail/plain-delivery';

const ref: InboundRef = { domain: 'example.com', bucket: 'mail-example-com', key: 'incoming/1' };
const OUTSIDE = 'someone@sender.example';

function fetched(over: Partial<EmailSummary> = {}, lookups: FetchedLookups | null = { blocked: [], rules: [] }) {
  const summary: EmailSummary = {
    from: OUTSIDE,
    sender: OUTSIDE,
    size: 100,
    recipients: ['alice@example.com', 'bob@example.com'],
    recipientSource: 'envelope',
    autoReply: { to: OUTSIDE },
    ...over,
  };
  return { kind: 'email', summary, ...(lookups ? { lookups } : {}) } as FetchResult;
}

test('a plain email: every recipient, the envelope sender, an empty tag plan', () => {
  assert.deepEqual(plainDelivery(ref, fetched()), {
    request: { ...ref, recipients: ['alice@example.com', 'bob@example.com'], envelopeFrom: OUTSIDE },
    plan: { before: [], after: [], record: {} },
  });
});

test('blocked, looped, spam, SES verdicts and a re-delivery: in the request and the plan as the workflow records them', () => {
  const plain = plainDelivery(
    { ...ref, redeliver: true },
    fetched(
      {
        spam: true,
        verdicts: { spam: 'FAIL', dkim: 'PASS', source: 'notification' },
        looped: [{ recipient: 'carol@example.com', detail: 'reached 5 times within an hour' }],
      },
      { blocked: [{ recipient: 'bob@example.com', pattern: '*@sender.example', sender: OUTSIDE }], rules: [] },
    ),
  );
  assert.deepEqual(plain?.request, {
    ...ref,
    recipients: ['alice@example.com'],
    envelopeFrom: OUTSIDE,
    spam: true,
    redeliver: true,
  });
  assert.deepEqual(plain?.plan, {
    before: [{ recipient: 'bob@example.com', outcome: 'blocked', detail: `${OUTSIDE} matches *@sender.example` }],
    after: [{ recipient: 'carol@example.com', outcome: 'failed', detail: 'reached 5 times within an hour' }],
    record: { blockedSender: OUTSIDE, blockedRecipients: ['bob@example.com'], verdicts: 'spam=FAIL dkim=PASS' },
  });
});

test('anything else is the workflow’s to decide step by step', () => {
  const none = (f: Parameters<typeof plainDelivery>[1], why: string) =>
    assert.equal(plainDelivery(ref, f), undefined, why);
  none({ kind: 'large', size: 5_000_000 }, 'a large email (the regular fetch reads it)');
  none({ kind: 'terminal', status: 'invalid', reason: 'no recipient in our domains' }, 'a terminal status');
  none(fetched({}, null), 'the lookups could not be read with the fetch');
  none(fetched({}, { blocked: [] }), 'the rules could not be read: the rules step loads them');
  none(fetched({ loop: 'X-Mailroom-Loop' }), 'a loop');
  none(
    fetched({
      bounce: { fromSes: true, recipients: [], originalMessageIds: ['<m@x>'], kind: 'bounce' },
    }),
    'a report (bounce match, rewrite, no rules)',
  );
  none(
    fetched({}, { blocked: [], rules: [{ recipient: 'alice@example.com', forwards: ['frank@example.org'] }] }),
    'a rule for a recipient',
  );
  none(
    fetched(
      { recipients: ['alice@example.com'] },
      { blocked: [{ recipient: 'alice@example.com', pattern: '*', sender: OUTSIDE }], rules: [] },
    ),
    'every recipient blocked (tagged, then deleted)',
  );
  assert.ok(
    plainDelivery(
      ref,
      fetched({}, { blocked: [], rules: [{ recipient: 'dave@example.com', forwards: ['frank@example.org'] }] }),
    ),
    'a rule for someone else does not apply',
  );
});
