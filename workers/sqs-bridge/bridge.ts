// The SQS bridge: SES "Received" notifications (SNS-wrapped, one SQS queue per domain, as
// the existing setup delivers them) become inbound workflows. Pure decisions first
// (classifyMessage), then the per-message handling and the poll loop, all with injected
// clients so tests run them in-process against real servers and workers/sqs-bridge/main.ts
// runs them as a process.
//
// At-least-once, never lost: a message is deleted only after Temporal accepted the start
// or said the workflow already exists. A crash in between leaves the message on the
// queue; it comes back after VISIBILITY_TIMEOUT and its start is then a no-op, because
// the workflow id is derived from the S3 object (inbound/<bucket>/<key>).
// Poison (not an SES notification, or its object is missing) is moved aside once per
// receive, with a log line saying why: to the dead-letter queue when there is one
// (body unchanged, so it can be replayed with `start:object --notification`), otherwise
// hidden on its queue for SQS_POISON_VISIBILITY_TIMEOUT, for the queue's own redrive policy.
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueUrlCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import type { ProcessInboundInput } from '../../contracts/inbound';
import { componentLogger } from '../../lib/observability/logger';
import { registry } from '../../lib/observability/metrics';
import { NotSesNotificationError, parseSesNotification } from '../../lib/mail/ses-notification';
import { inboundWorkflowId } from '../../contracts/inbound';
import { isQueueUrl, type BridgeQueueConfig } from '../../lib/config/sqs-bridge';
import { type InboundFacts, startInbound } from '../../starters/start-inbound';

export interface DomainBucket {
  domain: string;
  bucket: string;
}

export type Decision =
  | { action: 'start'; input: ProcessInboundInput; sesMessageId?: string; sender?: string; note?: string }
  | { action: 'poison'; reason: string };

/**
 * What to do with one SQS message body: start the inbound workflow (bucket, key,
 * envelope recipients, domain), or set it aside as poison with the reason why.
 * The domain is the one whose bucket the notification names; failing that, the queue's
 * own domain (the queue is per domain); a shared queue with a foreign bucket is poison.
 */
export function classifyMessage(
  body: string | undefined,
  ctx: { buckets: DomainBucket[]; queueDomains: string[] },
): Decision {
  if (body === undefined || body.trim() === '') return { action: 'poison', reason: 'empty message body' };
  let n: ReturnType<typeof parseSesNotification>;
  try {
    n = parseSesNotification(body);
  } catch (err) {
    // Parsing reads nothing but the body: whatever it throws is about the body and would be
    // thrown again at every receive, so the message is poison at once (never retried).
    const why = err instanceof NotSesNotificationError ? err.message : `unreadable (${String(err)})`;
    return { action: 'poison', reason: `not an SES Received notification: ${why}` };
  }
  let domain = ctx.buckets.find((b) => b.bucket === n.bucket)?.domain;
  let note: string | undefined;
  if (!domain) {
    if (ctx.queueDomains.length !== 1)
      return {
        action: 'poison',
        reason: `bucket ${n.bucket} belongs to none of the domains of this queue (${ctx.queueDomains.join(', ')})`,
      };
    domain = ctx.queueDomains[0];
    note = `bucket ${n.bucket} is not the configured bucket of ${domain} (S3_BUCKET_TEMPLATE); starting it for ${domain}, the queue's domain`;
  }
  // The envelope and SES's receipt verdicts travel with the start: the stored object has neither Bcc nor the notification's verdicts.
  const input: ProcessInboundInput = {
    domain,
    bucket: n.bucket,
    key: n.key,
    ...(n.recipients.length > 0 ? { envelopeRecipients: n.recipients } : {}),
    ...(n.verdicts ? { verdicts: n.verdicts } : {}),
  };
  return { action: 'start', input, sesMessageId: n.messageId, sender: n.source, note };
}

/** Whether S3 says the object is not there (404 or the S3 error names); other errors are not an answer. */
export function isMissingObjectError(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e?.$metadata?.httpStatusCode === 404 ||
    ['NotFound', 'NoSuchKey', 'NoSuchBucket'].includes(e?.name ?? '') ||
    ['NoSuchKey', 'NoSuchBucket'].includes(e?.Code ?? '')
  );
}

export type Outcome = 'started' | 'duplicate' | 'dead-lettered' | 'set-aside' | 'retry';

export interface ResolvedQueue {
  name: string;
  url: string;
  domains: string[];
  deadLetter?: { name: string; url: string };
}

export interface BridgeDeps {
  sqs: SQSClient;
  s3: S3Client;
  /** Starts the inbound workflow; started=false when it already exists (or existed). */
  startWorkflow(input: ProcessInboundInput, facts?: InboundFacts): Promise<{ workflowId: string; started: boolean }>;
  /** Whether Temporal knows this workflow id (running or closed). */
  workflowExists(workflowId: string): Promise<boolean>;
  log?: Logger;
}

export interface BridgeHooks {
  /** After Temporal accepted the start (or reported it exists), before DeleteMessage. */
  afterStart?(ctx: {
    queue: ResolvedQueue;
    message: Message;
    workflowId: string;
    started: boolean;
  }): void | Promise<void>;
  /** Every handled message, with its outcome. */
  onOutcome?(ctx: { queue: ResolvedQueue; message: Message; outcome: Outcome; reason?: string }): void;
}

export interface BridgeOptions {
  buckets: DomainBucket[];
  /** ReceiveMessage WaitTimeSeconds (POLL_INTERVAL). */
  waitTimeSeconds: number;
  /** ReceiveMessage MaxNumberOfMessages (MAX_MESSAGES). */
  maxMessages: number;
  /** ReceiveMessage VisibilityTimeout (VISIBILITY_TIMEOUT). */
  visibilityTimeoutSeconds: number;
  /** How long poison stays hidden on its queue when there is no dead-letter queue. */
  poisonVisibilityTimeoutSeconds: number;
  hooks?: BridgeHooks;
}

export const bridgeMessages = new Counter({
  name: 'sqs_bridge_messages_total',
  help: 'SQS messages handled by the SQS bridge, by queue and outcome (started, duplicate, dead-lettered, set-aside, retry)',
  labelNames: ['queue', 'outcome'] as const,
  registers: [registry],
});

/** Temporal's side of the bridge, from a client. */
export function temporalBridgeDeps(
  client: Client,
  taskQueue: string,
): Pick<BridgeDeps, 'startWorkflow' | 'workflowExists'> {
  return {
    startWorkflow: (input, facts) => startInbound(client, taskQueue, input, undefined, facts),
    async workflowExists(workflowId) {
      try {
        await client.workflow.getHandle(workflowId).describe();
        return true;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },
  };
}

/** Queue URLs for the configured names (GetQueueUrl), URLs kept as they are. Throws naming the queue. */
export async function resolveQueues(sqs: SQSClient, queues: BridgeQueueConfig[]): Promise<ResolvedQueue[]> {
  const urlOf = async (ref: string, what: string): Promise<string> => {
    if (isQueueUrl(ref)) return ref;
    try {
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: ref }));
      if (!QueueUrl) throw new Error('no QueueUrl in the answer');
      return QueueUrl;
    } catch (err) {
      throw new Error(`${what} ${ref}: ${(err as Error).message}`, { cause: err });
    }
  };
  const out: ResolvedQueue[] = [];
  for (const q of queues) {
    const url = await urlOf(q.queue, `queue of ${q.domains.join(', ')} (SQS_QUEUE_TEMPLATE)`);
    const deadLetter = q.deadLetter
      ? { name: q.deadLetter, url: await urlOf(q.deadLetter, 'dead-letter queue (SQS_DEAD_LETTER_QUEUE)') }
      : undefined;
    out.push({ name: q.queue, url, domains: q.domains, deadLetter });
  }
  return out;
}

function attr(value: string): MessageAttributeValue {
  return { DataType: 'String', StringValue: value };
}

/** Handles one received message to its outcome; never throws for the message's own faults. */
export async function handleMessage(
  deps: BridgeDeps,
  queue: ResolvedQueue,
  message: Message,
  opts: BridgeOptions,
): Promise<Outcome> {
  const log = (deps.log ?? componentLogger('sqs-bridge')).child({ queue: queue.name, sqsMessageId: message.MessageId });
  const receiveCount = message.Attributes?.ApproximateReceiveCount;

  const remove = async (): Promise<void> => {
    try {
      await deps.sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: message.ReceiptHandle }));
    } catch (err) {
      // Not lost and not doubled: the message comes back and its start is a no-op.
      log.warn(
        { err: (err as Error).message },
        'DeleteMessage failed; the message will be received again and its start will be a no-op',
      );
    }
  };

  const setAside = async (reason: string): Promise<Outcome> => {
    if (queue.deadLetter) {
      try {
        await deps.sqs.send(
          new SendMessageCommand({
            QueueUrl: queue.deadLetter.url,
            MessageBody: message.Body || '(empty)',
            MessageAttributes: {
              'mailroom-reason': attr(reason.slice(0, 1000)),
              'mailroom-source-queue': attr(queue.name),
              'mailroom-source-message-id': attr(message.MessageId ?? 'unknown'),
              'mailroom-receive-count': attr(receiveCount ?? 'unknown'),
              'mailroom-dead-lettered-at': attr(new Date().toISOString()),
            },
          }),
        );
      } catch (err) {
        log.error(
          { reason, err: (err as Error).message },
          'poison message could not be sent to the dead-letter queue; it stays on its queue and comes back after VISIBILITY_TIMEOUT',
        );
        return 'retry';
      }
      await remove();
      log.error(
        { reason, deadLetterQueue: queue.deadLetter.name, receiveCount },
        `poison message moved to the dead-letter queue: ${reason}`,
      );
      return 'dead-lettered';
    }
    try {
      await deps.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queue.url,
          ReceiptHandle: message.ReceiptHandle,
          VisibilityTimeout: opts.poisonVisibilityTimeoutSeconds,
        }),
      );
    } catch (err) {
      log.error(
        { reason, err: (err as Error).message },
        'poison message could not be hidden; it comes back after VISIBILITY_TIMEOUT',
      );
      return 'retry';
    }
    log.error(
      { reason, receiveCount, hiddenForSeconds: opts.poisonVisibilityTimeoutSeconds },
      `poison message left on its queue, hidden for ${opts.poisonVisibilityTimeoutSeconds} s (no SQS_DEAD_LETTER_QUEUE; the queue's redrive policy moves it after maxReceiveCount receives): ${reason}`,
    );
    return 'set-aside';
  };

  const decision = classifyMessage(message.Body, { buckets: opts.buckets, queueDomains: queue.domains });
  if (decision.action === 'poison') return setAside(decision.reason);

  const { input } = decision;
  const workflowId = inboundWorkflowId(input.bucket, input.key);
  const elog = log.child({ bucket: input.bucket, key: input.key, workflowId });
  if (decision.note) elog.warn(decision.note);

  let size: number | undefined;
  try {
    size = (await deps.s3.send(new HeadObjectCommand({ Bucket: input.bucket, Key: input.key }))).ContentLength;
  } catch (err) {
    if (!isMissingObjectError(err)) {
      elog.warn(
        { err: (err as Error).message },
        'cannot check the S3 object (HeadObject); the message comes back after VISIBILITY_TIMEOUT',
      );
      return 'retry';
    }
    // Blocked mail is deleted by its workflow: a late copy of its notification is a duplicate, not poison.
    let exists: boolean;
    try {
      exists = await deps.workflowExists(workflowId);
    } catch (e) {
      elog.warn(
        { err: (e as Error).message },
        'object missing and Temporal unreachable; the message comes back after VISIBILITY_TIMEOUT',
      );
      return 'retry';
    }
    if (exists) {
      await remove();
      elog.info('object is gone but its workflow exists: duplicate notification, deleted');
      return 'duplicate';
    }
    return setAside(`object s3://${input.bucket}/${input.key} does not exist`);
  }

  let started: boolean;
  try {
    ({ started } = await deps.startWorkflow(input, { sender: decision.sender, size }));
  } catch (err) {
    elog.error(
      { err: (err as Error).message },
      'Temporal did not accept the workflow start; the message comes back after VISIBILITY_TIMEOUT',
    );
    return 'retry';
  }
  await opts.hooks?.afterStart?.({ queue, message, workflowId, started });
  await remove();
  if (started)
    elog.info({ recipients: input.envelopeRecipients?.length ?? 0, receiveCount }, 'workflow started, message deleted');
  else
    elog.info(
      { receiveCount },
      'workflow already started earlier (duplicate or redelivered notification): no-op, message deleted',
    );
  return started ? 'started' : 'duplicate';
}

/** One ReceiveMessage (long poll) and the handling of its batch. Only the receive is aborted by `signal`. */
export async function pollQueue(
  deps: BridgeDeps,
  queue: ResolvedQueue,
  opts: BridgeOptions,
  signal?: AbortSignal,
): Promise<Outcome[]> {
  const res = await deps.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queue.url,
      MaxNumberOfMessages: opts.maxMessages,
      WaitTimeSeconds: opts.waitTimeSeconds,
      VisibilityTimeout: opts.visibilityTimeoutSeconds,
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
    }),
    { abortSignal: signal },
  );
  const messages = res.Messages ?? [];
  return Promise.all(
    messages.map(async (message) => {
      let outcome: Outcome;
      try {
        outcome = await handleMessage(deps, queue, message, opts);
      } catch (err) {
        (deps.log ?? componentLogger('sqs-bridge')).error(
          { queue: queue.name, sqsMessageId: message.MessageId, err },
          'unexpected error; the message comes back after VISIBILITY_TIMEOUT',
        );
        outcome = 'retry';
      }
      bridgeMessages.inc({ queue: queue.name, outcome });
      opts.hooks?.onOutcome?.({ queue, message, outcome });
      return outcome;
    }),
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Polls every queue until `signal` aborts: one long-poll loop per queue. On abort the
 * pending receives are cancelled (a message received by a cancelled call is simply
 * received again after its visibility timeout) and in-flight batches are finished.
 * Receive errors (SQS unreachable) back off from 1 s to 30 s.
 */
export async function runBridge(
  deps: BridgeDeps,
  queues: ResolvedQueue[],
  opts: BridgeOptions,
  signal: AbortSignal,
): Promise<void> {
  const log = deps.log ?? componentLogger('sqs-bridge');
  await Promise.all(
    queues.map(async (queue) => {
      let failures = 0;
      while (!signal.aborted) {
        try {
          await pollQueue(deps, queue, opts, signal);
          failures = 0;
        } catch (err) {
          if (signal.aborted) break;
          failures++;
          const delay = Math.min(30_000, 500 * 2 ** failures);
          log.error({ queue: queue.name, err: (err as Error).message, retryInMs: delay }, 'ReceiveMessage failed');
          await sleep(delay, signal);
        }
      }
    }),
  );
}
