import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copiesKey, type Copy, countCopy, objectTag } from '../../lib/mail/copy-window';

function counter() {
  let seen: Record<string, Copy> = {};
  return (object: string, now: number, hops: number) => {
    const r = countCopy(seen, object, now, hops);
    seen = r.seen;
    return r.rounds;
  };
}

test('a loop: each copy travelled further; the fourth within an hour has three rounds before it', () => {
  const arrive = counter();
  assert.equal(arrive('o1', 1000, 2), 0);
  assert.equal(arrive('o1', 1010, 2), 0, 'a retried fetch of the same object counts once');
  assert.equal(arrive('o2', 1100, 5), 1);
  assert.equal(arrive('o3', 1200, 8), 2);
  assert.equal(arrive('o4', 1300, 11), 3);
  assert.equal(arrive('o5', 1000 + 3600 + 150, 14), 2, 'o1 and o2 left the window');
});

test('the same message again without travelling further is not a loop (resent, or in four line-ending styles)', () => {
  const arrive = counter();
  for (let i = 0; i < 10; i++) assert.equal(arrive(`o${i}`, 1000 + i, 3), 0);
});

test('keys: per recipient and message id, the id hashed', () => {
  assert.equal(copiesKey('Bob@example.com', '<a@b>'), copiesKey('bob@example.com', ' <a@b> '));
  assert.notEqual(copiesKey('bob@example.com', '<a@b>'), copiesKey('carol@example.com', '<a@b>'));
  assert.match(copiesKey('bob@example.com', '<a@b>'), /^copies\|bob@example\.com\|[0-9a-f]{32}$/);
  assert.notEqual(objectTag('b', 'k1'), objectTag('b', 'k2'));
});
