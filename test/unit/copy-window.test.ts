import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copiesKey, countCopy, objectTag } from '../../lib/copy-window';

test('each object counts once per hour; older arrivals drop out of the window', () => {
  let seen: Record<string, number> = {};
  const arrive = (object: string, now: number) => {
    const r = countCopy(seen, object, now);
    seen = r.seen;
    return r.count;
  };
  assert.equal(arrive('o1', 1000), 1);
  assert.equal(arrive('o1', 1010), 1, 'a retried fetch of the same object');
  assert.equal(arrive('o2', 1100), 2);
  assert.equal(arrive('o3', 1200), 3);
  assert.equal(arrive('o4', 1300), 4, 'the fourth copy within an hour');
  assert.equal(arrive('o5', 1000 + 3600 + 150), 3, 'o1 and o2 left the window');
});

test('keys: per recipient and message id, the id hashed', () => {
  assert.equal(copiesKey('Bob@example.com', '<a@b>'), copiesKey('bob@example.com', ' <a@b> '));
  assert.notEqual(copiesKey('bob@example.com', '<a@b>'), copiesKey('carol@example.com', '<a@b>'));
  assert.match(copiesKey('bob@example.com', '<a@b>'), /^copies\|bob@example\.com\|[0-9a-f]{32}$/);
  assert.notEqual(objectTag('b', 'k1'), objectTag('b', 'k2'));
});
