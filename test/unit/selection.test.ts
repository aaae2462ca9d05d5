import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTime, selects } from '../../lib/sweep/selection';

const now = new Date('2026-11-23T10:00:00Z');
const day = (s: string) => Date.parse(s) / 1000;

test('time forms', () => {
  assert.equal(parseTime('yesterday', now), day('2026-11-22T00:00:00Z'));
  assert.equal(parseTime('today', now), day('2026-11-23T00:00:00Z'));
  assert.equal(parseTime('24h', now), day('2026-11-22T10:00:00Z'));
  assert.equal(parseTime('2026-11-20', now), day('2026-11-20T00:00:00Z'));
  assert.equal(parseTime('now', now), day('2026-11-23T10:00:00Z'));
  assert.equal(
    parseTime('now', new Date(1_000_500)),
    1000.5,
    'now is not rounded down: --until now includes what was tagged a moment ago',
  );
  assert.equal(parseTime('2026-11-20T08:30:00Z', now), day('2026-11-20T08:30:00Z'));
  assert.equal(parseTime('2026-11-20T08:30', now), day('2026-11-20T08:30:00Z'), 'no zone: UTC');
  assert.equal(parseTime('2026-11-20T08:30:00+02:00', now), day('2026-11-20T06:30:00Z'));
  for (const bad of ['last tuesday', 'Nov 22', '2026-13-01', '22.11.2026', '24x'])
    assert.throws(() => parseTime(bad, now), /cannot read the time/, bad);
});

test('selection by status and window', () => {
  const blockedYesterday = { processed: 'true', status: 'blocked', processed_at: String(day('2026-11-22T15:00:00Z')) };
  const sel = { statuses: ['blocked'], since: parseTime('yesterday', now), until: parseTime('today', now) };
  assert.equal(selects(blockedYesterday, sel), true);
  assert.equal(selects({ ...blockedYesterday, status: 'delivered' }, sel), false);
  assert.equal(selects({ ...blockedYesterday, processed_at: String(day('2026-11-23T01:00:00Z')) }, sel), false);
  assert.equal(selects({}, sel), false);
  assert.equal(selects({}, { includeUnprocessed: true }), true);
});

test('a deferred email is not selected as processed: its run is still trying', () => {
  const deferred = { processed: 'false', status: 'deferred', processed_at: '1700000000' };
  assert.equal(selects(deferred, { statuses: ['deferred'] }), false);
  assert.equal(selects(deferred, {}), false);
  assert.equal(selects(deferred, { includeUnprocessed: true }), true);
});
