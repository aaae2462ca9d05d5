// The email's end status, decided once for the workflow's tag step and for a delivery that
// tags the object itself (deliverAndTag): both must write the same tag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RecipientResult } from '../../contracts/inbound';
import { emailOutcome } from '../../lib/mail/email-outcome';
import { outcomesAfterDelivery } from '../../activities/inbound/deliver-and-tag';

const ok = (recipient: string): RecipientResult => ({ recipient, outcome: 'delivered' });
const unknown = (recipient: string): RecipientResult => ({ recipient, outcome: 'invalid', code: 550 });
const failed = (recipient: string, detail?: string): RecipientResult => ({ recipient, outcome: 'failed', detail });
const blocked = (recipient: string): RecipientResult => ({ recipient, outcome: 'blocked', detail: 'x matches *' });

test('delivered, partial, rejected, failed: from the outcomes and the number expected', () => {
  assert.deepEqual(emailOutcome([ok('a'), ok('b')], 2), { status: 'delivered', invalidInboxes: [], deliveredCount: 2 });
  assert.deepEqual(emailOutcome([ok('a'), unknown('b')], 2), {
    status: 'partial',
    invalidInboxes: ['b'],
    deliveredCount: 1,
  });
  assert.deepEqual(emailOutcome([unknown('a'), unknown('b')], 2), {
    status: 'rejected',
    invalidInboxes: ['a', 'b'],
    deliveredCount: 0,
  });
  assert.equal(emailOutcome([unknown('a'), failed('b', '552 too big')], 2).status, 'failed');
  assert.equal(emailOutcome([blocked('a'), ok('b')], 2).status, 'partial', 'a blocked recipient is not delivered');
  assert.equal(emailOutcome([ok('a')], 2).status, 'partial', 'fewer delivered than expected');
});

test('the reason names failed recipients first, then rule errors; none without problems', () => {
  assert.equal(emailOutcome([ok('a')], 1).reason, undefined);
  assert.equal(
    emailOutcome([ok('a'), failed('b', '552 too big'), failed('c')], 3, ['forward: refused']).reason,
    'b: 552 too big; c: failed; forward: refused',
  );
  assert.equal(emailOutcome([ok('a')], 1, ['auto-reply: down']).status, 'delivered', 'rule errors leave the status');
});

test('outcomesAfterDelivery: in the workflow order (before, the delivery in list order, after); none while one is deferred', () => {
  const plan = { before: [blocked('x')], after: [failed('loop', 'looped')], record: {} };
  assert.deepEqual(outcomesAfterDelivery(['b', 'a'], [ok('a'), unknown('b')], plan), [
    blocked('x'),
    unknown('b'),
    ok('a'),
    failed('loop', 'looped'),
  ]);
  assert.equal(outcomesAfterDelivery(['a', 'b'], [ok('a'), { recipient: 'b', outcome: 'deferred' }], plan), undefined);
  assert.equal(outcomesAfterDelivery(['a', 'b'], [ok('a')], plan), undefined, 'an answer missing: not final');
});
