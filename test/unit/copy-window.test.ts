import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copiesKey, type Copy, countCopy, loopSubject, objectTag } from '../../lib/mail/copy-window';

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

test('keys: per recipient and message (id, From, Subject), all but our recipient hashed', () => {
  const msg = { messageId: '<a@b>', from: 'sender@far.example', subject: 'Quarterly report' };
  assert.equal(
    copiesKey('Bob@example.com', msg),
    copiesKey('bob@example.com', { messageId: ' <a@b> ', from: 'Sender@Far.example', subject: ' quarterly  REPORT ' }),
  );
  assert.notEqual(copiesKey('bob@example.com', msg), copiesKey('carol@example.com', msg));
  assert.match(copiesKey('bob@example.com', msg), /^copies2\|bob@example\.com\|[0-9a-f]{32}$/);
  assert.doesNotMatch(copiesKey('bob@example.com', msg), /sender|far\.example|quarterly/i, 'sender and subject hashed');
  assert.notEqual(objectTag('b', 'k1'), objectTag('b', 'k2'));
});

test('keys: a copy with the same Message-ID from another sender or with another subject is another message', () => {
  const genuine = { messageId: '<a@b>', from: 'sender@far.example', subject: 'Quarterly report' };
  const key = (m: Partial<typeof genuine>) => copiesKey('bob@example.com', { ...genuine, ...m });
  assert.notEqual(key({ from: 'forger@evil.example' }), key({}));
  assert.notEqual(key({ subject: 'Win a prize' }), key({}));
  assert.notEqual(key({ from: undefined, subject: undefined }), key({}));
  // Fields cannot be shifted into one another: the parts are separated.
  assert.notEqual(
    copiesKey('bob@example.com', { messageId: '<a@b>', from: 'x', subject: 'y z' }),
    copiesKey('bob@example.com', { messageId: '<a@b>', from: 'x y', subject: 'z' }),
  );
});

test('keys: what a loop adds to the subject on each pass does not make another message', () => {
  const key = (subject: string) => copiesKey('bob@example.com', { messageId: '<a@b>', from: 's@far.example', subject });
  for (const s of ['Fwd: Report', 'FW: fwd: Report', 'AW: WG: Report', 'Re[2]: Report', '[peer] Fwd: [list]  report'])
    assert.equal(key(s), key('Report'), s);
  assert.equal(loopSubject(undefined), '');
  assert.equal(loopSubject('Fwd: Re: Report: Q3'), 'report: q3', 'only leading prefixes');
  assert.equal(loopSubject('Reply needed'), 'reply needed', 'a word that starts like a prefix stays');
});

test('three forged one-hop copies of an id do not make the genuine copy a fourth round', () => {
  // The counter is per key: the forged copies (another sender) land on another item.
  const items = new Map<string, Record<string, Copy>>();
  const arrive = (m: { from: string; subject: string }, object: string, now: number, hops: number) => {
    const k = copiesKey('bob@example.com', { messageId: '<id@far.example>', ...m });
    const r = countCopy(items.get(k) ?? {}, object, now, hops);
    items.set(k, r.seen);
    return r.rounds;
  };
  const forged = { from: 'forger@evil.example', subject: 'Invoice' };
  const genuine = { from: 'sender@far.example', subject: 'Invoice' };
  assert.deepEqual(
    [arrive(forged, 'f1', 1000, 1), arrive(forged, 'f2', 1001, 1), arrive(forged, 'f3', 1002, 1)],
    [0, 0, 0],
  );
  assert.equal(arrive(genuine, 'g1', 1003, 4), 0, 'the genuine copy has no earlier round');
  // A real loop of the genuine message is still counted.
  assert.equal(arrive(genuine, 'g2', 1100, 6), 1);
  assert.equal(arrive({ ...genuine, subject: 'Fwd: Invoice' }, 'g3', 1200, 8), 2);
  assert.equal(arrive({ ...genuine, subject: 'Fwd: Fwd: Invoice' }, 'g4', 1300, 10), 3);
});
