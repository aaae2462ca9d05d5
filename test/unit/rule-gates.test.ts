import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EmailSummary } from '../../contracts/inbound';
import { autoReplyTarget, reportedRecipient } from '../../lib/mail/rule-gates';

const summary = (s: Partial<EmailSummary>): EmailSummary => ({
  size: 1,
  recipients: ['bob@example.com', 'dave@example.com'],
  recipientSource: 'envelope',
  autoReply: { to: 'alice@sender.example' },
  ...s,
});

test('a vacation answers only mail that names the user in To, Cc or Bcc (RFC 5230 4.5), never itself', () => {
  assert.deepEqual(autoReplyTarget(summary({ addressed: ['bob@example.com'] }), 'bob@example.com'), {
    to: 'alice@sender.example',
  });
  assert.match(
    (autoReplyTarget(summary({ addressed: ['bob@example.com'] }), 'dave@example.com') as { skip: string }).skip,
    /not named in To, Cc or Bcc/,
  );
  assert.deepEqual(autoReplyTarget(summary({ autoReply: { skip: 'bounce' } }), 'bob@example.com'), { skip: 'bounce' });
  assert.deepEqual(
    autoReplyTarget(
      summary({ autoReply: { to: 'bob@example.com' }, addressed: ['bob@example.com'] }),
      'bob@example.com',
    ),
    { skip: 'message from the recipient itself' },
  );
  assert.deepEqual(
    autoReplyTarget(summary({}), 'dave@example.com'),
    { to: 'alice@sender.example' },
    'histories from before have no addressed list',
  );
});

test('the reported recipient is one our message went to, when the report names it', () => {
  const b = (recipients: { recipient: string; action?: string }[]) => ({
    fromSes: true,
    recipients,
    originalMessageIds: ['x'],
  });
  assert.equal(
    reportedRecipient(
      b([
        { recipient: 'other@far.example', action: 'failed' },
        { recipient: 'jane@far.example', action: 'failed' },
      ]),
      ['Jane@far.example'],
    ),
    'jane@far.example',
  );
  assert.equal(
    reportedRecipient(
      b([
        { recipient: 'a@far.example', action: 'delayed' },
        { recipient: 'b@far.example', action: 'failed' },
      ]),
      undefined,
    ),
    'b@far.example',
  );
  assert.equal(
    reportedRecipient(b([]), ['only@far.example']),
    'only@far.example',
    'a complaint with the recipient redacted, one destination',
  );
  assert.equal(reportedRecipient(b([]), ['a@far.example', 'b@far.example']), undefined);
});

test('destinations only (issue 21): a report naming none of our message destinations names nobody', () => {
  const b = (recipients: { recipient: string; action?: string }[]) => ({
    fromSes: false,
    recipients,
    originalMessageIds: ['x'],
  });
  const forged = b([{ recipient: 'ceo@example.com', action: 'failed' }]);
  assert.equal(reportedRecipient(forged, ['jane@far.example'], true), undefined, 'not one of the destinations');
  assert.equal(reportedRecipient(forged, undefined, true), undefined, 'no matched message: nobody');
  assert.equal(reportedRecipient(forged, ['jane@far.example']), 'ceo@example.com', 'the old path, for runs in flight');
  assert.equal(
    reportedRecipient(
      b([
        { recipient: 'ceo@example.com', action: 'failed' },
        { recipient: 'Jane@far.example', action: 'delayed' },
      ]),
      ['jane@far.example'],
      true,
    ),
    'Jane@far.example',
    'the destination the report names, in any case, even when another is the failed one',
  );
  assert.equal(reportedRecipient(b([]), ['only@far.example'], true), 'only@far.example', 'redacted, one destination');
  assert.equal(reportedRecipient(b([]), ['a@far.example', 'b@far.example'], true), undefined);
});
