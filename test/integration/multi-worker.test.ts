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
// 250 in flight, or just read). Right after each kill the test notes which (email, mailbox)
// pairs the SMTP target has stored that the delivery log (DynamoDB) does not have: those were
// in the window. A second copy is tolerated for those pairs only; any other fails the test
// (a retry that ignores the log, a step run twice, two workers delivering one email).
import assert from 'node:assert/strict';
import { type AttributeValue, ScanCommand } from '@aws-sdk/client-dynamodb';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { inboundWorkflowId } from '../../contracts/inbound';
import { bucketForDomain } from '../../lib/config';
import { runInbound } from '../../bench/chaos/inbound-run';
import { DOMAIN, ordinaryMails } from '../../bench/chaos/mails';
import { startChaosStack } from '../../bench/chaos/stack';
import { deliveryKey, objectRef } from '../../lib/storage/delivery-log';
import { DEFAULT_TABLES } from '../../scripts/stack/dynamodb';

const EMAILS = 100;
/**
 * Workflow starts per second while mail is not held (below). Slow enough that mail still arrives
 * after the last restart on a fast, quiet machine too, where each wait for a busy worker runs its
 * full 8 s (at 4/s a quiet CI run had started all 100 before the third restart).
 */
const RATE = 2;
/** The worker that is killed; worker 0 keeps running. */
const VICTIM = 1;
const KILLS = 3;

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
      let leftAfterLastRestart = 0;
      const tag = `multi-${Date.now()}`;
      const mails = ordinaryMails(tag, EMAILS, 24);
      const bucket = bucketForDomain(DOMAIN);
      const keyOf = new Map(mails.map((m, i) => [m.expectation.messageId, `${tag}/${String(i).padStart(5, '0')}`]));
      // (Message-ID, mailbox) pairs stored at the SMTP target but not in the delivery log just
      // after a kill: the dead worker's RFC 1047 window (and, for a few milliseconds, worker
      // 0's own deliveries between 250 and log write, which can only make this more lenient).
      const inWindow = new Set<string>();
      const noteWindow = async () => {
        const stored = await stack.mail.deliveries(); // before the log: a pair logged in between counts as logged
        const logged = new Set<string>();
        let from: Record<string, AttributeValue> | undefined;
        do {
          const page = await stack.dynamo.send(
            new ScanCommand({
              TableName: DEFAULT_TABLES.delivery,
              ProjectionExpression: 'pk',
              ExclusiveStartKey: from,
            }),
          );
          for (const item of page.Items ?? []) if (item.pk?.S) logged.add(item.pk.S);
          from = page.LastEvaluatedKey;
        } while (from);
        for (const d of stored) {
          const key = d.messageId && keyOf.get(d.messageId);
          if (key && !logged.has(deliveryKey(objectRef(bucket, key), d.recipient)))
            inWindow.add(`${d.messageId} ${d.recipient}`);
        }
      };
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
          // Busy: ten more emails started and at least three open (in some worker's hands), or 8 s.
          const busy = async (from: number) => {
            const end = Date.now() + 8000;
            while (Date.now() < end && !(p.started() >= from + 10 && p.started() - p.closed() >= 3)) await sleep(20);
          };
          await busy(0);
          const open: number[] = [];
          const restartSeconds: number[] = [];
          for (let k = 0; k < KILLS; k++) {
            kills.push(Date.now());
            open.push(p.started() - p.closed());
            await stack.killWorker(VICTIM);
            await noteWindow();
            await sleep(2000);
            holding = true;
            const t = Date.now();
            await stack.startWorker(VICTIM);
            restartSeconds.push(Math.round((Date.now() - t) / 1000));
            holding = false;
            leftAfterLastRestart = EMAILS - p.started();
            await busy(p.started());
          }
          return {
            startedAt,
            liftedAt: Date.now(),
            note: `worker ${VICTIM} SIGKILLed ${kills.length} time(s), with ${open.join(', ')} email(s) open; restarts took ${restartSeconds.join(', ')} s`,
          };
        },
      });
      const detail = JSON.stringify({ kills: kills.length, ...outcome, timeline: undefined });

      assert.equal(kills.length, KILLS);
      // The restarted worker got new mail after the last kill, too.
      assert.ok(leftAfterLastRestart > 0, `every email was started before the last restart ended: ${detail}`);
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

      // Every extra copy must be of a pair that was in a kill's RFC 1047 window (top of the file).
      const copies = new Map<string, number>();
      for (const d of await stack.mail.deliveries()) {
        if (!d.messageId || !keyOf.has(d.messageId)) continue;
        const k = `${d.messageId} ${d.recipient}`;
        copies.set(k, (copies.get(k) ?? 0) + 1);
      }
      let extra = 0;
      const unexplained: string[] = [];
      for (const [k, n] of copies) {
        extra += n - 1;
        if (n > 1 && !inWindow.has(k)) unexplained.push(`${k}: ${n} copies, not in a kill's window`);
      }
      assert.equal(extra, outcome.duplicates);
      assert.deepEqual(unexplained, [], `second copies no kill explains: ${detail}`);

      // Both processes did the work: the histories name the worker that completed each workflow task.
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
          `${outcome.duplicates} second copies, ${inWindow.size} pair(s) in a kill's RFC 1047 window`,
      );
    } finally {
      await stack.stop();
    }
  },
);
