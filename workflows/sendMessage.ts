// sendMessage: one durable send of one outbox message from a user's account (contracts/send.ts).
//
//   1. Wait on a durable timer until send_at. `cancel` before it fires is undo send (the row
//      becomes cancelled, the run ends); `reschedule` moves the timer. The database decides a
//      race between a cancel and the timer (lib/outbox/store.ts): whichever commits first wins.
//   2. Build the MIME message once (stored in the outbox row, never in history).
//   3. Submit through the account's SMTP server; recipients a server defers (4xx, connection
//      errors, the account's send rate) are tried again with backoff (10 s doubling up to
//      maxRetryIntervalSeconds) until maxAgeSeconds after send_at; a 5xx ends its recipient.
//   4. Append the Sent copy (unless the account keeps none), then record the final status:
//      sent, partial (some recipients refused for good) or failed.
// All I/O is in activities/send/; the history holds ids, counts and server replies only.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type * as activities from '../activities/send';
import { ACCOUNT_ID, SEND_STATUS } from '../contracts/search-attributes';
import {
  cancelSendSignal,
  rescheduleSendSignal,
  SEND_ERRORS,
  sendStatusQuery,
  type OutboxStatus,
  type SendMessageInput,
  type SendProgress,
  type SendResult,
} from '../contracts/send';
import { ERR_ACCOUNT_NOT_FOUND, ERR_AUTH, ERR_SECRET_KEY } from '../contracts/sync';

type Activities = ReturnType<typeof activities.createSendActivities>;

const DEFAULT_MAX_AGE_SECONDS = 24 * 3600;
const DEFAULT_MAX_RETRY_INTERVAL_SECONDS = 30 * 60;
const DEFAULT_INITIAL_RETRY_INTERVAL_SECONDS = 10;

/** Failures no retry of the same step fixes: the message ends failed saying why. */
const FINAL = [
  SEND_ERRORS.NotFound,
  SEND_ERRORS.NotSendable,
  SEND_ERRORS.AuthRefused,
  SEND_ERRORS.SecretKey,
  ERR_AUTH,
  ERR_ACCOUNT_NOT_FOUND,
  ERR_SECRET_KEY,
];

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

function duration(ms: number): string {
  if (ms >= 3600_000) return `${Math.round(ms / 360_000) / 10} h`;
  if (ms >= 60_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 1000)} s`;
}

function failureType(err: unknown): string | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.type ?? undefined;
  return undefined;
}

export async function sendMessage(input: SendMessageInput): Promise<SendResult> {
  const { userId, accountId, outboxId } = input;
  const ref = { userId, accountId, outboxId };
  const o = input.options ?? {};
  // Set from the input, else from the worker's SEND_MAX_AGE / SEND_MAX_RETRY_INTERVAL (beginSend).
  let maxAgeMs = (o.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS) * 1000;
  let maxIntervalMs = (o.maxRetryIntervalSeconds ?? DEFAULT_MAX_RETRY_INTERVAL_SECONDS) * 1000;
  const firstIntervalMs = (o.initialRetryIntervalSeconds ?? DEFAULT_INITIAL_RETRY_INTERVAL_SECONDS) * 1000;

  // PostgreSQL (and the IMAP server for the duplicate check) briefly away: the activity's own
  // retries. What the SMTP server says comes back as a value and is retried by the loop below.
  const retry = {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '1m',
    maximumAttempts: 30,
    nonRetryableErrorTypes: FINAL,
  };
  const db = proxyActivities<Activities>({ startToCloseTimeout: '1m', retry });
  // Heartbeating (activities/send/index.ts): a dead worker's step is retried within 30 s.
  const net = proxyActivities<Activities>({ startToCloseTimeout: '10m', heartbeatTimeout: '30s', retry });

  const progress: SendProgress = {
    status: 'scheduled',
    sendAt: null,
    phase: 'waiting',
    attempts: 0,
    recipientsAccepted: 0,
    recipientsFailed: 0,
    recipientsPending: 0,
    reason: null,
  };
  // What the signals asked for, taken by the undo-window loop below.
  const asked: { cancel: { reason: string | null } | null; rescheduleTo: number | null } = {
    cancel: null,
    rescheduleTo: null,
  };
  setHandler(sendStatusQuery, () => progress);
  setHandler(cancelSendSignal, (s) => {
    asked.cancel = { reason: typeof s?.reason === 'string' ? s.reason.slice(0, 500) : null };
  });
  setHandler(rescheduleSendSignal, (s) => {
    if (s && typeof s.sendAt === 'number' && Number.isFinite(s.sendAt)) asked.rescheduleTo = s.sendAt;
  });

  const setStatus = (status: OutboxStatus) => {
    progress.status = status;
    upsertSearchAttributes([
      { key: ACCOUNT_ID, value: accountId },
      { key: SEND_STATUS, value: status },
    ]);
  };
  const details = () => {
    const when = progress.sendAt ? new Date(progress.sendAt).toISOString() : 'now';
    setCurrentDetails(
      `${progress.status}: send at ${when}; ${progress.recipientsAccepted} accepted, ${progress.recipientsFailed} refused, ${progress.recipientsPending} pending; ${progress.attempts} attempt(s)${progress.reason ? `; ${progress.reason}` : ''}`,
    );
  };
  const done = (status: SendResult['status'], reason: string | null, sentFolder: string | null = null): SendResult => {
    progress.phase = 'done';
    progress.reason = reason;
    setStatus(status);
    details();
    return {
      outboxId,
      status,
      recipientsAccepted: progress.recipientsAccepted,
      recipientsFailed: progress.recipientsFailed,
      sentFolder,
      reason,
    };
  };
  const finish = async (giveUp: string | null, sentFolder: string | null = null): Promise<SendResult> => {
    const f = await db.finishSend.executeWithOptions({ summary: 'record the outcome in the outbox' }, [ref, giveUp]);
    progress.recipientsAccepted = f.accepted;
    progress.recipientsFailed = f.failed;
    progress.recipientsPending = 0;
    const status = f.status === 'sent' || f.status === 'partial' || f.status === 'failed' ? f.status : 'failed';
    const reason = [f.reason, copyProblem].filter(Boolean).join('; ') || null;
    return done(status, reason, f.sentFolder ?? sentFolder);
  };
  let copyProblem: string | null = null;

  // 1. The undo window.
  const begun = await db.beginSend.executeWithOptions({ summary: 'read the outbox message' }, [ref]);
  let state: Awaited<ReturnType<Activities['beginSend']>> | Awaited<ReturnType<Activities['startSending']>> = begun;
  if (o.maxAgeSeconds === undefined && begun.limits) maxAgeMs = begun.limits.maxAgeSeconds * 1000;
  if (o.maxRetryIntervalSeconds === undefined && begun.limits)
    maxIntervalMs = begun.limits.maxRetryIntervalSeconds * 1000;
  progress.sendAt = state.sendAt;
  progress.recipientsPending = state.recipients;
  if (state.status === 'draft')
    throw ApplicationFailure.nonRetryable(
      `Outbox message ${outboxId} is still a draft: schedule it (markScheduled) before starting its send`,
      'OutboxNotScheduled',
    );
  setStatus(state.status);
  details();
  if (state.status === 'cancelled') return done('cancelled', state.reason);
  if (state.status === 'sent' || state.status === 'partial' || state.status === 'failed')
    return done(state.status, state.reason);
  while (state.status === 'scheduled') {
    // Date.now() in workflow code is deterministic on purpose: the SDK's sandbox replaces it with
    // the time of the workflow task being processed, the same on replay (here and below).
    const wait = (state.sendAt ?? Date.now()) - Date.now();
    const signalled = () => asked.cancel !== null || asked.rescheduleTo !== null;
    if (wait > 0) await condition(signalled, wait);
    const cancel = asked.cancel;
    if (cancel) {
      asked.cancel = null;
      const c = await db.cancelSend.executeWithOptions({ summary: 'undo send' }, [ref, cancel.reason]);
      if (c.cancelled || c.status === 'cancelled') return done('cancelled', c.reason);
      // Too late (another run or a front end moved it on): go on with what the row says.
      state = c;
      progress.reason = 'the cancel came too late: sending had begun';
      continue;
    }
    const to = asked.rescheduleTo;
    if (to !== null) {
      asked.rescheduleTo = null;
      const r = await db.rescheduleSend.executeWithOptions({ summary: 'move the send time' }, [ref, to]);
      state = r;
      progress.sendAt = r.sendAt;
      details();
      continue;
    }
    state = await db.startSending.executeWithOptions({ summary: 'send time reached: no more undo' }, [ref]);
    if (state.status === 'cancelled') return done('cancelled', state.reason);
  }
  if (state.status !== 'sending')
    return done(state.status === 'draft' ? 'failed' : (state.status as SendResult['status']), state.reason);
  if (asked.cancel) progress.reason = 'the cancel came too late: sending had begun';
  setStatus('sending');

  // 2. Build once.
  progress.phase = 'building';
  details();
  try {
    await net.buildMessage.executeWithOptions({ summary: 'build the MIME message' }, [ref]);
  } catch (err) {
    if (!FINAL.includes(failureType(err) as (typeof FINAL)[number])) throw err;
    return finish(failureMessage(err));
  }

  // 3. Submit until every recipient has a final verdict or the time is up.
  const deadline = Math.max(state.sendAt ?? 0, Date.now()) + maxAgeMs; // the workflow task's time (deterministic)
  let interval = firstIntervalMs;
  let sentCopy: string | null = null;
  let copyTried = false;
  for (;;) {
    progress.phase = progress.attempts === 0 ? 'submitting' : 'retrying';
    progress.attempts++;
    details();
    let s;
    try {
      s = await net.submitMessage.executeWithOptions({ summary: `submit over SMTP (attempt ${progress.attempts})` }, [
        ref,
      ]);
    } catch (err) {
      if (!FINAL.includes(failureType(err) as (typeof FINAL)[number])) throw err;
      return finish(failureMessage(err));
    }
    progress.recipientsAccepted = s.accepted;
    progress.recipientsFailed = s.failed;
    progress.recipientsPending = s.pending;
    progress.reason = s.retryReason;
    // 4a. The Sent copy as soon as the server has the message (not after the last deferral).
    if (s.accepted > 0 && !copyTried) {
      copyTried = true;
      progress.phase = 'saving_copy';
      details();
      try {
        sentCopy = (await net.saveSentCopy.executeWithOptions({ summary: 'append the copy to the Sent folder' }, [ref]))
          .folder;
      } catch (err) {
        // The send stands; the missing copy is said in the status reason.
        copyProblem = `the Sent copy could not be saved: ${failureMessage(err)}`;
      }
    }
    if (s.pending === 0) break;
    const now = Date.now(); // the workflow task's time (deterministic, as above)
    if (now >= deadline) {
      const giveUp = `gave up after ${duration(maxAgeMs)} of temporary failures (SEND_MAX_AGE): ${s.retryReason ?? 'no final reply'}`;
      return finish(giveUp, sentCopy);
    }
    // The account's send rate names its own wait; otherwise exponential backoff.
    const wait = Math.min(deadline - now, s.retryAfterMs ?? interval);
    if (s.retryAfterMs === null) interval = Math.min(interval * 2, maxIntervalMs);
    details();
    await sleep(wait);
  }
  progress.phase = 'saving_copy';
  return finish(null, sentCopy);
}
