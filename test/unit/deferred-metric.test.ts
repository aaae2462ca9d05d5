// mailroom_deferred_emails: counted from Temporal visibility, at most once per interval however
// often /metrics is scraped, and a failed count keeps the last value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gauge, Registry } from 'prom-client';
import { trackDeferredEmails } from '../../lib/observability/metrics';

test('the deferred-email gauge asks visibility at most once per interval and keeps its value on errors', async () => {
  const registry = new Registry();
  const gauge = new Gauge({ name: 'mailroom_deferred_emails_test', help: 'test', registers: [registry] });
  let clock = 0;
  let asked = 0;
  let answer: number | Error = 3;
  const errors: string[] = [];
  const refresh = trackDeferredEmails(
    async () => {
      asked++;
      if (answer instanceof Error) throw answer;
      return answer;
    },
    { ttlMs: 15_000, now: () => clock, gauge, onError: (e) => errors.push(e.message) },
  );
  const value = async () => (await gauge.get()).values[0]?.value;

  await Promise.all([refresh(), refresh(), refresh()]);
  assert.equal(asked, 1, 'concurrent scrapes share one query');
  assert.equal(await value(), 3);
  answer = 7;
  clock = 14_999;
  await refresh();
  assert.equal(asked, 1, 'not asked again within the interval');
  assert.equal(await value(), 3);
  clock = 15_000;
  await refresh();
  assert.equal(asked, 2);
  assert.equal(await value(), 7);
  answer = new Error('visibility unavailable');
  clock = 30_000;
  await refresh();
  assert.equal(await value(), 7, 'the last value stays when the count fails');
  assert.deepEqual(errors, ['visibility unavailable']);
});
