import { test } from 'node:test';
import assert from 'node:assert/strict';
import { placeInWindow, sweepWindow } from '../../lib/sweep/window';
import { TaskPool } from '../../lib/sweep/task-pool';

const NOW = Date.parse('2026-11-24T12:00:00Z');
const BASE = { now: NOW, minAge: 15 * 60, overlap: 3600, fallbackWindow: 2 * 86400 };
const at = (iso: string) => new Date(iso);

test('the window starts at the last sweep minus the overlap and ends SWEEP_MIN_AGE before now', () => {
  const w = sweepWindow({ ...BASE, sweptUntil: Date.parse('2026-11-24T11:30:00Z') });
  assert.deepEqual(w, {
    from: Date.parse('2026-11-24T10:30:00Z'),
    until: Date.parse('2026-11-24T11:45:00Z'),
    source: 'state',
    advancesState: true,
  });
  assert.equal(placeInWindow(w, at('2026-11-24T10:29:59Z')), 'old');
  assert.equal(placeInWindow(w, at('2026-11-24T10:30:00Z')), 'read');
  assert.equal(placeInWindow(w, at('2026-11-24T11:45:00Z')), 'read');
  assert.equal(placeInWindow(w, at('2026-11-24T11:45:01Z')), 'young');
  assert.equal(placeInWindow(w, undefined), 'read', 'no LastModified: read it rather than risk skipping it');
});

test('no recorded sweep: the fallback window; --all: no lower bound; both move the mark', () => {
  const w = sweepWindow(BASE);
  assert.equal(w.source, 'fallback');
  assert.equal(w.from, NOW - 2 * 86400 * 1000);
  assert.equal(w.advancesState, true);
  const all = sweepWindow({ ...BASE, sweptUntil: NOW - 60_000, all: true });
  assert.equal(all.from, undefined);
  assert.equal(all.source, 'all');
  assert.equal(placeInWindow(all, at('2001-01-01T00:00:00Z')), 'read');
  assert.equal(all.advancesState, true);
});

test('--since moves the mark only when it reaches back at least as far as the default window', () => {
  const sweptUntil = NOW - 5 * 86400 * 1000; // sweeps have failed for five days
  assert.equal(
    sweepWindow({ ...BASE, sweptUntil, since: NOW - 3 * 86400 * 1000 }).advancesState,
    false,
    'days 3 to 5 were not read',
  );
  assert.equal(sweepWindow({ ...BASE, sweptUntil, since: NOW - 6 * 86400 * 1000 }).advancesState, true);
  assert.equal(
    sweepWindow({ ...BASE, since: NOW - 3600_000 }).advancesState,
    false,
    'shorter than the fallback window',
  );
  assert.equal(sweepWindow({ ...BASE, since: NOW - 3 * 86400 * 1000 }).advancesState, true);
});

test('min age 0: the window ends now (an operator sweep may take what the bridge has not)', () => {
  assert.equal(sweepWindow({ ...BASE, minAge: 0 }).until, NOW);
});

test('TaskPool: never more than its size in flight, every task runs, the first failure stops it', async () => {
  const pool = new TaskPool(3);
  let inFlight = 0;
  let peak = 0;
  const done: number[] = [];
  for (let i = 0; i < 20; i++) {
    await pool.add(async () => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 1 + (i % 4)));
      inFlight--;
      done.push(i);
    });
  }
  await pool.drain();
  assert.equal(peak, 3);
  assert.deepEqual(
    [...done].sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i),
  );

  const failing = new TaskPool(2);
  const ran: number[] = [];
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 10; i++) {
        await failing.add(async () => {
          ran.push(i);
          await new Promise((r) => setTimeout(r, 5));
          if (i === 1) throw new Error('HEAD failed');
        });
      }
      await failing.drain();
    })(),
    /HEAD failed/,
  );
  assert.ok(ran.length < 10, `no task starts after the failure (ran ${ran.length})`);
});
