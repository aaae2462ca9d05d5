// One inbound chaos scenario: upload the emails, start their workflows at a steady rate,
// break something while they run (the scenario's fault), lift it, wait until every
// workflow is closed, then check everything against the ground truth.
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { SingleBar } from 'cli-progress';
import { startInbound } from '../../starters/start-inbound';
import { inboundWorkflowId } from '../../contracts/inbound';
import { bucketForDomain } from '../../lib/config';
import type { InboundResult } from '../../contracts/inbound';
import type { DeliveryPolicy } from '../../contracts/inbound';
import { tally, type Expectation, type Tally } from './ground-truth';
import { DOMAIN, type ChaosMail } from './mails';
import type { ChaosStack } from './stack';

export interface FaultWindow {
  /** When the fault was put on (ms since epoch); undefined for faults that break nothing of ours. */
  startedAt?: number;
  /** When the fault was lifted (ms since epoch); undefined for faults that last the whole run. */
  liftedAt?: number;
  note?: string;
  /** The email the fault aimed at, when it aimed at one (its S3 key). */
  target?: string;
  /** Long outages: the most emails seen with MailStatus deferred (and running) while it lasted. */
  deferredSeen?: number;
}

export interface InboundRunOptions {
  stack: ChaosStack;
  tag: string;
  mails: ChaosMail[];
  /** Workflow starts per second. */
  rate: number;
  /** Breaks something and resolves when it is lifted. Gets the count of closed workflows. */
  fault(progress: { closed: () => number; started: () => number }): Promise<FaultWindow>;
  delivery?: Partial<DeliveryPolicy>;
  /**
   * While this returns true, no workflow is started (the schedule resumes where it paused):
   * test/integration/multi-worker.test.ts holds new mail while a killed worker restarts, so
   * the next kill finds it busy.
   */
  hold?: () => boolean;
  bar?: SingleBar;
  timeoutMs: number;
}

export interface InboundOutcome extends Tally {
  /** Workflows not closed when the run gave up. */
  open: number;
  /** Closed, but not completed (failed, terminated, timed out). */
  notCompleted: number;
  /** Emails whose S3 object lacks processed=true (deleted blocked mail excepted). */
  untagged: number;
  /** Emails whose status differs from the one the scenario demanded. */
  wrongStatus: string[];
  statuses: Record<string, number>;
  /** Seconds from the fault being lifted until the last workflow closed. */
  recoverSeconds?: number;
  note?: string;
  /** The email the fault aimed at, if any. */
  target?: string;
  deferredSeen?: number;
  /** For the chart: seconds since the first start at which each workflow closed, and the fault's span. */
  timeline: { closedAt: number[]; fault?: { from: number; to?: number } };
}

/** Retries a call that can fail while Temporal itself is down (the restart scenarios). */
async function persist<T>(what: string, fn: () => Promise<T>, deadline: number): Promise<T> {
  for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || Date.now() > deadline)
        throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(delay);
    }
  }
}

export async function runInbound(o: InboundRunOptions): Promise<InboundOutcome> {
  const { stack, mails } = o;
  const deadline = Date.now() + o.timeoutMs;
  const bucket = bucketForDomain(DOMAIN);
  const expectations: Expectation[] = [];
  for (const [i, m] of mails.entries()) {
    const key = `${o.tag}/${String(i).padStart(5, '0')}`;
    await stack.put(m.raw, key);
    expectations.push({ key, ...m.expectation });
  }
  let started = 0;
  let closed = 0;
  const closeTimes: number[] = [];
  const results = new Map<string, InboundResult>();
  o.bar?.start(mails.length, 0, { phase: o.tag });

  const t0 = Date.now();
  const waits: Promise<void>[] = [];
  let held = 0;
  const starting = (async () => {
    for (const e of expectations) {
      if (o.hold?.()) {
        const from = Date.now();
        while (o.hold()) await sleep(50);
        held += Date.now() - from;
      }
      const due = t0 + held + (started / o.rate) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
      const ref = { domain: DOMAIN, bucket, key: e.key, ...(o.delivery ? { delivery: o.delivery } : {}) };
      // A trigger retries until Temporal has the start; a repeated start is a no-op (workflow id).
      await persist(`start ${e.key}`, () => startInbound(stack.client, stack.taskQueue, ref), deadline);
      started++;
      const id = inboundWorkflowId(bucket, e.key);
      waits.push(
        persist(
          `result of ${id}`,
          () => stack.client.workflow.getHandle(id).result() as Promise<InboundResult>,
          deadline,
        )
          .then((r) => void results.set(e.key, r))
          .catch(() => undefined)
          .finally(() => {
            closed++;
            closeTimes.push(Date.now());
            o.bar?.increment();
          }),
      );
    }
  })();
  const fault = await o.fault({ closed: () => closed, started: () => started });
  await starting;
  await Promise.all(waits);
  o.bar?.stop();

  // Verdict: terminal states in Temporal, tags in S3, deliveries at the mail server.
  let open = 0;
  let notCompleted = 0;
  let untagged = 0;
  const wrongStatus: string[] = [];
  const statuses: Record<string, number> = {};
  for (const [i, e] of expectations.entries()) {
    const id = inboundWorkflowId(bucket, e.key);
    const d = await persist(
      `describe ${id}`,
      () => stack.client.workflow.getHandle(id).describe(),
      Date.now() + 60_000,
    );
    if (d.status.name === 'RUNNING') open++;
    else if (d.status.name !== 'COMPLETED') notCompleted++;
    const status = results.get(e.key)?.status ?? `(${d.status.name.toLowerCase()})`;
    statuses[status] = (statuses[status] ?? 0) + 1;
    const want = mails[i].status;
    if (want && want !== status) wrongStatus.push(`${e.key}: ${status}, expected ${want}`);
    const meta = await stack.metadata(e.key);
    if (meta === undefined ? status !== 'blocked' : meta.processed !== 'true') untagged++;
    // Each email is started once: already_processed means a step run again took its own tag
    // for another run's. And the tag must say how the run ended.
    else if (status === 'already_processed' || (meta && results.has(e.key) && meta.status !== status))
      wrongStatus.push(`${e.key}: finished ${status}, tagged ${meta?.status ?? '(deleted)'}`);
  }
  const deliveries = await stack.mail.deliveries();
  const t = tally(expectations, deliveries);
  const lastClose = Math.max(...closeTimes);
  return {
    ...t,
    open,
    notCompleted,
    untagged,
    wrongStatus,
    statuses,
    recoverSeconds: fault.liftedAt !== undefined ? Math.max(0, (lastClose - fault.liftedAt) / 1000) : undefined,
    note: fault.note,
    target: fault.target,
    ...(fault.deferredSeen !== undefined ? { deferredSeen: fault.deferredSeen } : {}),
    timeline: {
      closedAt: closeTimes.map((t) => (t - t0) / 1000),
      fault:
        fault.startedAt === undefined
          ? undefined
          : {
              from: Math.max(0, (fault.startedAt - t0) / 1000),
              to: fault.liftedAt === undefined ? undefined : (fault.liftedAt - t0) / 1000,
            },
    },
  };
}

/** Resolves once `cond` holds (polled), so a fault can wait until the run is under way. */
export async function until(
  cond: () => boolean,
  timeoutMs = 600_000,
  what = 'the point where the fault was due',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`chaos: the run never reached ${what} within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}
