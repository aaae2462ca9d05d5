// Several workers on one task queue (issue 24): two real worker processes (workers/main.ts)
// share the task queue of the chaos stack (real Temporal dev server, versitygw, dynalite, SMTP
// target), and one of them is SIGKILLed and restarted again and again while a batch of
// emails runs. Whatever a dead worker held (its cached workflows, a fast-path workflow task
// halfway through its local activities, an SMTP transaction) must be finished by the other
// worker or by the restarted one: every email delivered to each of its mailboxes once, every
// workflow completed and tagged with the status it really ended with, none failed.
//
// The one thing no SMTP client can make exactly-once is the RFC 1047 window (docs/chaos.md):
// a kill after the server stored a message and before the worker wrote its delivery log (its
// 250 in flight, or just read). Such a second copy is tolerated only when a kill explains it:
// the first copy was stored at most WINDOW_MS before one of the kills. Any other second copy
// fails the test.
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { inboundWorkflowId } from '../../contracts/inbound';
import { bucketForDomain } from '../../lib/config';
import { runInbound } from '../../bench/chaos/inbound-run';
import { DOMAIN, ordinaryMails } from '../../bench/chaos/mails';
import { startChaosStack } from '../../bench/chaos/stack';

const EMAILS = 100;
/** Workflow starts per second while mail is not held (below). */
const RATE = 4;
/** The worker that is killed; worker 0 keeps running. */
const VICTIM = 1;
const KILLS = 3;
/** How long before a kill a stored copy can still lack its delivery-log entry (generous: the machine is loaded). */
const WINDOW_MS = 5_000;

test(
  'two worker processes on one task queue, one SIGKILLed repeatedly: every email processed once',
  {
    timeout: 10 * 60_000,
  },
  async () => {
    const stack = await startChaosStack();
    try {
      await Promise.all([stack.startWorker(0), stack.startWorker(VICTIM)]);
      const kills: number[] = [];
      let holding = false;
      let startedAfterLastKill = false;
      const tag = `multi-${Date.now()}`;
      const mails = ordinaryMails(tag, EMAILS, 24);
      const outcome = await runInbound({
        stack,
        tag,
        mails,
        rate: RATE,
        timeoutMs: 6 * 60_000,
        hold: () => holding,
        async fault(p) {
          const startedAt = Date.now();
          // Let both workers take work, then: SIGKILL the victim while mail keeps arriving (worker
          // 0 takes the new mail and, once their sticky and workflow task timeouts pass, what the
          // dead worker held); hold new mail while the victim restarts (webpack bundles the
          // workflow code at every start of a worker from the sources: 17-21 s on the loaded
          // 2-core machine), so it has work again when it is back; let both work; again.
          while (p.started() < 12) await sleep(50);
          const open: number[] = [];
          const restartSeconds: number[] = [];
          for (let k = 0; k < KILLS; k++) {
            kills.push(Date.now());
            open.push(p.started() - p.closed());
            await stack.killWorker(VICTIM);
            await sleep(2000);
            holding = true;
            const t = Date.now();
            await stack.startWorker(VICTIM);
            restartSeconds.push(Math.round((Date.now() - t) / 1000));
            holding = false;
            await sleep(5000);
          }
          startedAfterLastKill = p.started() < EMAILS;
          return {
            startedAt,
            liftedAt: Date.now(),
            note: `worker ${VICTIM} SIGKILLed ${kills.length} time(s), with ${open.join(', ')} email(s) open; restarts took ${restartSeconds.join(', ')} s`,
          };
        },
      });
      const detail = JSON.stringify({ kills: kills.length, ...outcome, timeline: undefined });

      assert.equal(kills.length, KILLS);
      assert.ok(startedAfterLastKill, `every email was started before the last restart ended: ${detail}`);
      assert.equal(outcome.emails, EMAILS);
      assert.equal(outcome.open, 0, `workflows left running: ${detail}`);
      assert.equal(outcome.notCompleted, 0, `workflows that did not complete: ${detail}`);
      assert.equal(outcome.lost, 0, `lost deliveries: ${detail}`);
      assert.equal(outcome.strays, 0, `deliveries where they must not go: ${detail}`);
      assert.equal(outcome.untagged, 0, `emails without their processed tag: ${detail}`);
      // Includes already_processed (a step run twice taking its own tag for another run's) and a
      // tag that differs from the status the run returned.
      assert.deepEqual(outcome.wrongStatus, [], detail);
      assert.equal(outcome.statuses.failed, undefined, `failed emails: ${detail}`);
      assert.ok(outcome.expected > EMAILS / 2, `too few deliveries expected to prove anything: ${detail}`);

      // Every extra copy must sit in the RFC 1047 window of a kill (see the top of the file).
      const copies = new Map<string, number[]>();
      for (const d of await stack.mail.deliveries()) {
        if (!d.messageId?.includes(tag)) continue;
        // smtp-target names each stored copy <ms since epoch>-<counter>.eml.
        const storedAt = Number(basename(d.file).split('-')[0]);
        const k = `${d.messageId} ${d.recipient}`;
        copies.set(
          k,
          [...(copies.get(k) ?? []), storedAt].sort((a, b) => a - b),
        );
      }
      const unexplained: string[] = [];
      let extra = 0;
      for (const [k, times] of copies)
        for (const t of times.slice(0, -1)) {
          extra++;
          if (!kills.some((kill) => kill >= t && kill - t <= WINDOW_MS))
            unexplained.push(
              `${k}: a copy stored at ${new Date(t).toISOString()}, no kill within ${WINDOW_MS} ms after`,
            );
        }
      assert.equal(extra, outcome.duplicates);
      assert.deepEqual(unexplained, [], `second copies no kill explains: ${detail}`);

      // Both processes did the work: the histories name the worker that completed each workflow task.
      const bucket = bucketForDomain(DOMAIN);
      const emailsBy = new Map<string, number>();
      for (let i = 0; i < EMAILS; i++) {
        const key = `${tag}/${String(i).padStart(5, '0')}`;
        const history = await stack.client.workflow.getHandle(inboundWorkflowId(bucket, key)).fetchHistory();
        const identities = new Set(
          (history.events ?? []).map((e) => e.workflowTaskCompletedEventAttributes?.identity).filter(Boolean),
        );
        for (const id of identities) emailsBy.set(id!, (emailsBy.get(id!) ?? 0) + 1);
      }
      for (const index of [0, VICTIM])
        assert.ok(
          (emailsBy.get(stack.workerIdentity(index)) ?? 0) > 0,
          `worker ${index} completed no workflow task: ${JSON.stringify([...emailsBy])}`,
        );
      console.log(
        `multi-worker: ${outcome.note}; emails per worker ${JSON.stringify(Object.fromEntries(emailsBy))}; ` +
          `statuses ${JSON.stringify(outcome.statuses)}; ${outcome.delivered}/${outcome.expected} delivered, ` +
          `${outcome.duplicates} second copies in a kill's RFC 1047 window`,
      );
    } finally {
      await stack.stop();
    }
  },
);
