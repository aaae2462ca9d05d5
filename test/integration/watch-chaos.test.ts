// The IMAP IDLE watcher chaos scenarios (bench/chaos/watch-run.ts; `npm run chaos -- --scenario
// watch-imap-restart,watch-worker-kill,watch-network-cut` at full length), scaled down: 3 accounts
// idling under their watchers, the sync worker a real child process, Dovecot restarted, the
// worker SIGKILLed and restarted, the network to Dovecot cut for 15 s, with mail arriving around
// each fault. What is asserted is the end state, not timings: every message in PostgreSQL,
// none twice, every watcher back in IDLE. Recovery times are printed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { runWatchScenarios, WATCH_SCENARIOS } from '../../bench/chaos/watch-run';
import { startTestTemporal } from '../support/temporal';
import { quietTemporalLogs } from './sync-fixtures';

let env: TestWorkflowEnvironment;

before(async () => {
  quietTemporalLogs();
  env = await startTestTemporal();
});

after(async () => {
  await env?.teardown();
});

test(
  'watchers recover from a Dovecot restart, a worker SIGKILL and a network cut without losing or duplicating mail',
  {
    timeout: 10 * 60_000,
  },
  async () => {
    const rows = await runWatchScenarios({
      temporalAddress: env.address,
      accounts: 3,
      perAccount: 1,
      // The network cut: 15 s instead of 60 s.
      scale: 0.25,
      log: (line) => console.log(line),
    });
    assert.deepEqual(
      rows.map((r) => r.scenario),
      WATCH_SCENARIOS.map((s) => s.name),
    );
    for (const r of rows) {
      // 3 accounts × (before or during, during, after) = 9 messages per scenario.
      assert.equal(r.in, 9, `${r.scenario}: messages sent`);
      assert.equal(r.lost, 0, `${r.scenario} lost mail: ${r.note}`);
      assert.equal(r.stored, r.in, `${r.scenario}: ${r.note}`);
      assert.equal(r.duplicates, 0, `${r.scenario} stored a message twice: ${r.note}`);
      assert.ok(r.watchersIdleAgain, `${r.scenario}: watchers not back in IDLE: ${r.note}`);
      console.log(`${r.scenario}: recovered ${r.recoverSeconds} s after the fault ended (down ${r.downSeconds} s)`);
    }
  },
);
