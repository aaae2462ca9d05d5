// The chaos harness's verdict arithmetic: what counts as delivered, duplicated, lost or stray.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tally, type Expectation } from '../../bench/chaos/ground-truth';

const e = (key: string, deliverTo: string[], mustNotReach: string[] = []): Expectation => ({
  key,
  messageId: `<${key}@x>`,
  deliverTo,
  mustNotReach,
});

test('one copy per expected mailbox is delivered, nothing else', () => {
  const t = tally(
    [e('a', ['u1@example.com', 'u2@example.com']), e('b', ['u1@example.com'])],
    [
      { recipient: 'u1@example.com', messageId: '<a@x>' },
      { recipient: 'U2@Example.com', messageId: '<A@x>' },
      { recipient: 'u1@example.com', messageId: '<b@x>' },
    ],
  );
  assert.deepEqual(
    { ...t, lostExamples: undefined },
    {
      emails: 2,
      expected: 3,
      delivered: 3,
      duplicates: 0,
      lost: 0,
      strays: 0,
      lostExamples: undefined,
      duplicateKeys: [],
    },
  );
});

test('extra copies are duplicates, missing ones are lost with examples', () => {
  const t = tally(
    [e('a', ['u1@example.com']), e('b', ['u2@example.com'])],
    [
      { recipient: 'u1@example.com', messageId: '<a@x>' },
      { recipient: 'u1@example.com', messageId: '<a@x>' },
      { recipient: 'u1@example.com', messageId: '<a@x>' },
    ],
  );
  assert.equal(t.delivered, 1);
  assert.equal(t.duplicates, 2);
  assert.equal(t.lost, 1);
  assert.deepEqual(t.lostExamples, ['b → u2@example.com']);
  assert.deepEqual(t.duplicateKeys, ['a']);
});

test('copies at forbidden addresses are strays; other messages and id-less files do not count', () => {
  const t = tally(
    [e('a', [], ['blocker@example.com', 'victim@evil.example'])],
    [
      { recipient: 'blocker@example.com', messageId: '<a@x>' },
      { recipient: 'victim@evil.example', messageId: '<a@x>' },
      { recipient: 'blocker@example.com', messageId: '<other@x>' },
      { recipient: 'blocker@example.com' },
    ],
  );
  assert.equal(t.strays, 2);
  assert.equal(t.expected, 0);
  assert.equal(t.lost, 0);
});
