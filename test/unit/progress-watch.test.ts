// lib/temporal/heartbeat.ts heartbeatOnProgress outside an activity: a connection that moves no
// messages and too few bytes is closed and the reason kept; bytes count as progress; our own
// quiet work is no stall; the deadline closes everything.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heartbeatOnProgress } from '../../lib/temporal/heartbeat';

function fakeConnection() {
  const c = { closed: false, received: 0, close: () => (c.closed = true), stats: () => ({ received: c.received }) };
  return c;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('heartbeats on progress', () => {
  it('gives up on a connection that stalls or drips, and says why', async () => {
    const conn = fakeConnection();
    const failure = await heartbeatOnProgress({ stallMs: 200, minBytes: 1000 }, async (watch) => {
      watch.guard(conn);
      // Drips: 10 bytes every 20 ms is progress on the wire, but far below the bar.
      for (let i = 0; i < 30 && !conn.closed; i++) {
        conn.received += 10;
        await sleep(20);
      }
      return watch.takeFailure();
    });
    assert.ok(conn.closed, 'the dripping connection was closed');
    assert.equal(failure?.kind, 'stall');
    assert.match(failure?.message ?? '', /no progress for 0\.\d s/);
  });

  it('counts messages and enough bytes as progress, and quiet work as no stall', async () => {
    const conn = fakeConnection();
    await heartbeatOnProgress({ stallMs: 150, minBytes: 1000 }, async (watch) => {
      watch.guard(conn);
      for (let i = 0; i < 10; i++) {
        conn.received += 2000; // a body arriving
        await sleep(50);
      }
      for (let i = 0; i < 5; i++) {
        watch.progress({ n: i }); // a message stored
        await sleep(50);
      }
      await watch.quiet(() => sleep(400)); // a long commit
      assert.equal(watch.takeFailure(), undefined);
    });
    assert.equal(conn.closed, false);
  });

  it('closes everything at the deadline, and later connections at once', async () => {
    const conn = fakeConnection();
    await heartbeatOnProgress({ stallMs: 10_000, deadlineMs: 300 }, async (watch) => {
      watch.guard(conn);
      assert.equal(watch.deadlineNear(), false);
      while (!conn.closed) {
        watch.progress();
        await sleep(20);
      }
      assert.equal(watch.takeFailure()?.kind, 'deadline');
      assert.ok(watch.deadlineNear());
      const late = fakeConnection();
      watch.guard(late);
      assert.ok(late.closed);
    });
  });
});
