import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DELAY_MS, OutboxInputError, parseSendTime } from '../../lib/outbox/send-time';

const NOW = new Date('2026-12-07T10:00:00.000Z');

test('send time: a delay from now in seconds, minutes, hours, days', () => {
  assert.equal(parseSendTime('+10m', NOW).toISOString(), '2026-12-07T10:10:00.000Z');
  assert.equal(parseSendTime('+90s', NOW).toISOString(), '2026-12-07T10:01:30.000Z');
  assert.equal(parseSendTime(' +2H ', NOW).toISOString(), '2026-12-07T12:00:00.000Z');
  assert.equal(parseSendTime('+1.5d', NOW).toISOString(), '2026-12-08T22:00:00.000Z');
  assert.equal(parseSendTime('+0s', NOW).toISOString(), NOW.toISOString());
});

test('send time: ISO 8601 with a zone, in its forms', () => {
  assert.equal(parseSendTime('2026-12-24T09:00:00Z', NOW).toISOString(), '2026-12-24T09:00:00.000Z');
  assert.equal(parseSendTime('2026-12-24T10:00+01:00', NOW).toISOString(), '2026-12-24T09:00:00.000Z');
  assert.equal(parseSendTime('2026-12-24T10:00:00+0100', NOW).toISOString(), '2026-12-24T09:00:00.000Z');
  assert.equal(parseSendTime('2026-12-24 04:00-05', NOW).toISOString(), '2026-12-24T09:00:00.000Z');
  assert.equal(parseSendTime('2026-12-24T09:00:00.250z', NOW).toISOString(), '2026-12-24T09:00:00.250Z');
});

test('send time: no zone is refused with the fix, not guessed', () => {
  assert.throws(
    () => parseSendTime('2026-12-24T09:00', NOW),
    (e: Error) => {
      assert.ok(e instanceof OutboxInputError);
      assert.match(e.message, /has no time zone: add one \(2026-12-24T09:00Z for UTC/);
      return true;
    },
  );
  assert.throws(() => parseSendTime('2026-12-24', NOW), /has no time zone: add one \(2026-12-24T09:00Z/);
});

test('send time: garbage, impossible dates, the past and the far future are refused', () => {
  for (const bad of ['tomorrow', '10m', '+10', '+-5m', '+10 weeks', '', '2026-13-45T99:00Z'])
    assert.throws(() => parseSendTime(bad, NOW), OutboxInputError, bad);
  assert.throws(() => parseSendTime('2026-12-07T09:00:00Z', NOW), /is in the past .*leave the time out to send now/);
  assert.throws(() => parseSendTime('+367d', NOW), /more than a year ahead/);
  assert.equal(
    parseSendTime(new Date(NOW.getTime() + MAX_DELAY_MS).toISOString(), NOW).getTime() - NOW.getTime(),
    MAX_DELAY_MS,
  );
});

test('send time: a moment within a minute in the past is now (a front end whose clock is behind)', () => {
  assert.equal(parseSendTime('2026-12-07T09:59:30Z', NOW).toISOString(), NOW.toISOString());
});
