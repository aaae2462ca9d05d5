// The send-sigkill chaos scenario (bench/chaos/send-run.ts; `npm run chaos -- --scenario
// send-sigkill,send-sigkill-no-sent` at full length), scaled down: 8 messages from 2 accounts
// (2 recipients each) through the SMTP submission server with AUTH, the sync worker process
// (which runs the send worker) SIGKILLed twice per variant at the moment the server has stored
// DATA, once before its 250 is written and once right after, restarted each time. Ground truth
// is the server's stored copies. Asserted for the provider that files Sent before its 250: no
// copy lost, none twice, every outbox row sent. The variant whose provider files nothing is run
// too and its duplicates (the residual window, docs/sending.md) printed, not asserted, apart
// from nothing lost and every row sent.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { runSendScenarios } from '../../bench/chaos/send-run';
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
  'a send worker SIGKILLed after the server stored DATA loses nothing and sends nothing twice when the provider files Sent',
  { timeout: 10 * 60_000 },
  async () => {
    const rows = await runSendScenarios({
      temporalAddress: env.address,
      messages: 8,
      kills: 2,
      downMs: 1000,
      timeoutMs: 240_000,
      log: (line) => console.log(line),
    });
    assert.deepEqual(
      rows.map((r) => r.scenario),
      ['send-sigkill', 'send-sigkill-no-sent'],
    );
    for (const r of rows) {
      assert.equal(r.messages, 8, `${r.scenario}: messages sent`);
      assert.deepEqual(r.kills, { beforeReply: 1, afterReply: 1 }, `${r.scenario}: kills`);
      assert.equal(r.lost, 0, `${r.scenario} lost mail: ${r.note}`);
      assert.deepEqual(r.statuses, { sent: 8 }, `${r.scenario}: outbox rows: ${r.note}`);
    }
    const [saves, noSent] = rows;
    assert.equal(saves.duplicates, 0, `send-sigkill delivered a message twice: ${saves.note}`);
    assert.equal(saves.delivered, saves.expected);
    // The kill before the 250 always leaves an unrecorded acceptance: the Sent lookup closes it.
    assert.ok((saves.recovery.found_in_sent ?? 0) >= 1, `send-sigkill: no recovery from Sent: ${saves.note}`);
    console.log(
      `residual window (provider files nothing in Sent): ${noSent.duplicates} duplicate copies of ${noSent.duplicatedMessages} of ${noSent.messages} messages, recovery ${JSON.stringify(noSent.recovery)}`,
    );
  },
);
