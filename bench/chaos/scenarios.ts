// The chaos scenarios: what each breaks, when, and for how long. Durations are the
// issue's (60 s outages, 2 min of 4xx, ...) times `scale`, so the test suite can run the
// same scenarios shortened.
import { setTimeout as sleep } from 'node:timers/promises';
import type { SingleBar } from 'cli-progress';
import { inboundWorkflowId } from '../../contracts/inbound';
import { startInbound } from '../../starters/start-inbound';
import { bucketForDomain } from '../../lib/config';
import type { InboundResult } from '../../contracts/inbound';
import { runInbound, until, type FaultWindow, type InboundOutcome } from './inbound-run';
import {
  DOMAIN,
  hostileMails,
  LOOP_PEER,
  LOOPER,
  LOOPER2,
  ordinaryMails,
  STRIPPING_PEER,
  type ChaosMail,
} from './mails';
import type { Backend, ChaosStack } from './stack';

export interface ChaosSettings {
  emails: number;
  /** Multiplies every outage and wait (1 = the durations the issue names). */
  scale: number;
  /** Workflow starts per second. */
  rate: number;
  bar?: SingleBar;
}

export interface InboundScenario {
  name: string;
  /** What is broken, for the report. */
  what: string;
  backend?: Backend;
  /** How long the run may take, when longer than the default (the long outages). */
  timeoutMs?(s: ChaosSettings): number;
  mails?(tag: string, stack: ChaosStack, s: ChaosSettings): ChaosMail[];
  fault(
    stack: ChaosStack,
    s: ChaosSettings,
    p: { closed: () => number; started: () => number },
    total: number,
    tag: string,
  ): Promise<FaultWindow>;
}

const secs = (s: ChaosSettings, n: number) => Math.max(1000, n * 1000 * s.scale);

/** Holds a fault on for `ms`, starting once a quarter of the emails have been started. */
function outage(
  on: (st: ChaosStack) => Promise<void>,
  off: (st: ChaosStack) => Promise<void>,
  seconds: number,
): InboundScenario['fault'] {
  return async (stack, s, p, total) => {
    await until(() => p.started() >= total / 4);
    const startedAt = Date.now();
    await on(stack);
    await sleep(secs(s, seconds));
    await off(stack);
    return { startedAt, liftedAt: Date.now() };
  };
}

/**
 * An outage longer than the steps' retries (issue 21): mail must wait (MailStatus deferred) and
 * be delivered once the server is back. It lasts `seconds` × scale, but never less than
 * LONG_OUTAGE_MIN_MS, three of a step's retry budgets within one deferral round (about 35 s:
 * the workflow's code, not scaled), so a shortened run still outlasts them. While it lasts,
 * visibility is asked how many emails are deferred.
 */
function longOutage(
  on: (st: ChaosStack) => Promise<void>,
  off: (st: ChaosStack) => Promise<void>,
  seconds: number,
): InboundScenario['fault'] {
  return async (stack, s, p, total) => {
    await until(() => p.started() >= total / 4);
    const startedAt = Date.now();
    await on(stack);
    const end = startedAt + longOutageMs(s, seconds);
    let deferredSeen = 0;
    const query = `TaskQueue = '${stack.taskQueue}' AND MailStatus = 'deferred' AND ExecutionStatus = 'Running'`;
    while (Date.now() < end) {
      try {
        deferredSeen = Math.max(deferredSeen, (await stack.client.workflow.count(query)).count);
      } catch {
        // Visibility is Temporal's, which is up; a failed count only misses one sample.
      }
      await sleep(Math.max(0, Math.min(3000, end - Date.now())));
    }
    await off(stack);
    return {
      startedAt,
      liftedAt: Date.now(),
      deferredSeen,
      note: `MailStatus deferred seen on up to ${deferredSeen} running email(s) during the outage`,
    };
  };
}

const LONG_OUTAGE_MIN_MS = 105_000;
const longOutageMs = (s: ChaosSettings, seconds: number) => Math.max(LONG_OUTAGE_MIN_MS, secs(s, seconds));

const killWorker: InboundScenario['fault'] = async (stack, s, p, total) => {
  await until(() => p.closed() >= total / 3);
  const startedAt = Date.now();
  await stack.killWorker();
  await sleep(secs(s, 5));
  await stack.startWorker();
  return { startedAt, liftedAt: Date.now() };
};

/** SIGKILL at the worst moment: the mail server has stored the message, the worker has not heard 250. */
const killAfterAccept: InboundScenario['fault'] = async (stack, s, p, total) => {
  await until(() => p.closed() >= total / 4);
  let held: string[] = [];
  let startedAt = 0;
  await new Promise<void>((fired) => {
    stack.mail.onBeforeAccept(async (info) => {
      stack.mail.onBeforeAccept(null);
      held = info.recipients;
      startedAt = Date.now();
      await stack.killWorker();
      fired();
    });
  });
  await sleep(secs(s, 5));
  await stack.startWorker();
  return {
    startedAt,
    liftedAt: Date.now(),
    note: `killed while ${held.length} recipient(s) were accepted but unacknowledged`,
  };
};

/**
 * SIGKILL in the middle of the fast path's local-activity sequence: the email has been
 * delivered (and logged) and its tag has just reached S3, but the workflow task holding those
 * local activities has not completed, so the next worker runs them all again in the same run.
 */
const killMidTask: InboundScenario['fault'] = async (stack, s, p, total) => {
  await until(() => p.closed() >= total / 3);
  let startedAt = 0;
  let target = '';
  await new Promise<void>((fired) => {
    stack.s3Proxy.onForwarded(async (req, status) => {
      // tagEmail's CopyObject (metadata onto itself), answered 200 by S3.
      if (req.method !== 'PUT' || !req.headers['x-amz-copy-source'] || status !== 200) return;
      stack.s3Proxy.onForwarded(null);
      startedAt = Date.now();
      // Path style: /<bucket>/<key>
      target = decodeURIComponent(new URL(req.url ?? '/', 'http://s3').pathname.split('/').slice(2).join('/'));
      await stack.killWorker();
      fired();
    });
  });
  await sleep(secs(s, 5));
  await stack.startWorker();
  return {
    startedAt,
    liftedAt: Date.now(),
    target,
    note: `killed as the tag of ${target} reached S3, before its workflow task completed`,
  };
};

const crashTemporal: InboundScenario['fault'] = async (stack, s, p, total) => {
  await until(() => p.closed() >= total / 3);
  const startedAt = Date.now();
  await stack.crashTemporal(secs(s, 10));
  return { startedAt, liftedAt: Date.now() };
};

export const INBOUND_SCENARIOS: InboundScenario[] = [
  { name: 'worker-sigkill', what: 'worker SIGKILLed mid-run, restarted 5 s later', fault: killWorker },
  {
    name: 'worker-sigkill-after-accept',
    what: 'worker SIGKILLed after the SMTP server stored a message, before its 250 reached the worker',
    fault: killAfterAccept,
  },
  {
    name: 'worker-sigkill-mid-task',
    what: 'worker SIGKILLed mid local-activity sequence: delivered and tagged, workflow task not completed',
    fault: killMidTask,
  },
  {
    name: 'temporal-kill-dev',
    what: 'Temporal dev server (SQLite) SIGKILLed, restarted 10 s later',
    backend: 'dev',
    fault: crashTemporal,
  },
  {
    name: 's3-down',
    what: 'S3 unreachable for 60 s',
    fault: outage(
      (st) => st.s3Proxy.set({ down: true }),
      (st) => st.s3Proxy.set({ down: false }),
      60,
    ),
  },
  {
    name: 'dynamodb-down',
    what: 'DynamoDB unreachable for 60 s',
    fault: outage(
      (st) => st.dynamoProxy.set({ down: true }),
      (st) => st.dynamoProxy.set({ down: false }),
      60,
    ),
  },
  {
    name: 'aws-faults',
    what: '5% S3 503 SlowDown, 5% DynamoDB throttling, 30% partial BatchGetItem and BatchWriteItem, whole run',
    async fault(stack, _s, p, total) {
      const startedAt = Date.now();
      await stack.s3Proxy.set({ errorRate: 0.05 });
      await stack.dynamoProxy.set({ errorRate: 0.05, partialBatchRate: 0.3 });
      await until(() => p.closed() >= total);
      await stack.s3Proxy.set({ errorRate: 0 });
      await stack.dynamoProxy.set({ errorRate: 0, partialBatchRate: 0 });
      const { errors } = stack.s3Proxy.stats;
      const d = stack.dynamoProxy.stats;
      return {
        startedAt,
        note: `${errors} S3 503s, ${d.errors} DynamoDB throttles, ${d.partialBatches} partial batches injected`,
      };
    },
  },
  {
    name: 'smtp-4xx',
    what: 'SMTP target answers 451 for 2 min',
    fault: outage(
      (st) =>
        Promise.resolve(st.mail.setTemporaryFailure({ code: 451, message: '4.3.0 Mailbox server busy, try later' })),
      (st) => Promise.resolve(st.mail.setTemporaryFailure(null)),
      120,
    ),
  },
  {
    name: 'smtp-refused',
    what: 'SMTP target refuses connections for 1 min',
    fault: outage(
      (st) => st.mail.refuse(true),
      (st) => st.mail.refuse(false),
      60,
    ),
  },
  {
    // Three times the 10 minutes that deliverEmail's 8 attempts used to bear (issue 21).
    name: 'smtp-down-long',
    what: 'SMTP target refuses connections for 30 min (three times the old retry budget)',
    timeoutMs: (s) => longOutageMs(s, 1800) + 900_000 * Math.min(1, s.scale * 4) + 120_000,
    fault: longOutage(
      (st) => st.mail.refuse(true),
      (st) => st.mail.refuse(false),
      1800,
    ),
  },
  {
    // Three times the 2 minutes that the lookups' 10 attempts used to bear (issue 21).
    name: 'dynamodb-down-long',
    what: 'DynamoDB unreachable for 6 min (three times the old retry budget)',
    timeoutMs: (s) => longOutageMs(s, 360) + 900_000 * Math.min(1, s.scale * 4) + 120_000,
    fault: longOutage(
      (st) => st.dynamoProxy.set({ down: true }),
      (st) => st.dynamoProxy.set({ down: false }),
      360,
    ),
  },
  {
    name: 'hostile-input',
    what: 'broken MIME, 30 MB attachment, header injection, a mail loop with another domain',
    mails: (tag, stack, s) => [
      ...hostileMails(tag, stack.maxMessageBytes),
      ...ordinaryMails(tag, Math.max(10, Math.floor(s.emails / 4))),
    ],
    async fault(stack, _s, p, total, tag) {
      const marked = peerLoop(stack, tag, LOOP_PEER, LOOPER, false);
      const stripped = peerLoop(stack, tag, STRIPPING_PEER, LOOPER2, true);
      stack.mail.onBeforeAccept((info) => {
        marked.relay(info);
        stripped.relay(info);
      });
      await until(() => p.closed() >= total);
      const [a, b] = [await marked.settle(), await stripped.settle()];
      stack.mail.onBeforeAccept(null);
      return { note: `${a}; ${b}` };
    },
  },
  {
    name: 'temporal-kill-postgres',
    what: 'Temporal server on PostgreSQL SIGKILLed, restarted 10 s later',
    backend: 'postgres',
    fault: crashTemporal,
  },
];

/**
 * A peer domain whose server forwards whatever reaches `peer` straight back to `back`, as
 * SES would receive it (one more Received line per hop for the peer, one for SES). With
 * `strip` it drops our marker header on the way, so only the hop count can stop the loop.
 */
function peerLoop(stack: ChaosStack, tag: string, peer: string, back: string, strip: boolean) {
  const hops: Promise<InboundResult>[] = [];
  const bucket = bucketForDomain(DOMAIN);
  const name = strip ? 'unmarked' : 'marked';
  return {
    relay(info: { recipients: string[]; raw: Buffer }) {
      if (!info.recipients.some((r) => r.toLowerCase() === peer) || hops.length >= MAX_RELAY_HOPS) return;
      const key = `${tag}/loop-${name}-${hops.length + 1}`;
      let raw = info.raw.toString('latin1');
      if (strip) raw = raw.replace(/^X-Mailroom-Processed:.*\r?\n(?:[ \t].*\r?\n)*/gim, '');
      const now = new Date().toUTCString();
      raw = `Received: from mx.peer.example by inbound-smtp.us-east-1.amazonaws.com for <${back}>; ${now}\r\nReceived: from relay.peer.example by mx.peer.example for <${peer}>; ${now}\r\n${raw}`;
      hops.push(
        stack.put(Buffer.from(raw, 'latin1'), key).then(async () => {
          await startInbound(stack.client, stack.taskQueue, { domain: DOMAIN, bucket, key });
          return stack.client.workflow.getHandle(inboundWorkflowId(bucket, key)).result() as Promise<InboundResult>;
        }),
      );
    },
    /** Waits until no new hop appears, then describes how the loop ended. */
    async settle(): Promise<string> {
      for (let seen = -1; seen !== hops.length;) {
        seen = hops.length;
        await Promise.all(hops);
        await sleep(2000);
      }
      const statuses = (await Promise.all(hops)).map((r) => r.status);
      const stopped = hops.length > 0 && hops.length < MAX_RELAY_HOPS && statuses.at(-1) === 'loop';
      return stopped
        ? `${name} mail loop stopped after ${hops.length} hop(s)`
        : `${name} MAIL LOOP NOT STOPPED: ${hops.length} hops, last status ${statuses.at(-1)}`;
    },
  };
}

const MAX_RELAY_HOPS = 60;

export async function runInboundScenario(
  stack: ChaosStack,
  sc: InboundScenario,
  s: ChaosSettings,
): Promise<InboundOutcome> {
  if (sc.backend) await stack.useBackend(sc.backend);
  await stack.startWorker();
  const tag = `${sc.name}-${Date.now().toString(36)}`;
  const mails = sc.mails ? sc.mails(tag, stack, s) : ordinaryMails(tag, s.emails);
  // Shortened runs shorten the workflow's own 4xx retry rounds too (60 s, doubling).
  const delivery = s.scale < 1 ? { firstDelaySeconds: Math.max(1, Math.round(60 * s.scale)) } : undefined;
  return runInbound({
    stack,
    tag,
    mails,
    rate: s.rate,
    delivery,
    bar: s.bar,
    timeoutMs: Math.max(300_000, 900_000 * s.scale, sc.timeoutMs?.(s) ?? 0),
    fault: (p) => sc.fault(stack, s, p, mails.length, tag),
  });
}
