// One inbound email = one run of this workflow (id `inbound/<bucket>/<key>`).
// Deterministic code only: every decision that needs I/O is an activity, and the raw
// message never passes through here, only its S3 key and the facts fetchEmail found.
import {
  ActivityFailure,
  ApplicationFailure,
  makeContinueAsNewFunc,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  TemporalFailure,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import { RetryState, type SearchAttributePair } from '@temporalio/common';
import type { InboundActivities } from '../activities';
import {
  type AddressHashes,
  type BounceRewriteInfo,
  DEFAULT_DEFERRAL,
  type DeferralSettings,
  type DeferralState,
  type DeliveryPolicy,
  type DeliveredAndTagged,
  type DeliveryTagPlan,
  type EmailSummary,
  type FetchedLookups,
  INBOUND_ERRORS,
  type InboundRef,
  type InboundResult,
  type ProcessInboundInput,
  progressQuery,
  type RecipientResult,
  type RecipientRules,
} from '../contracts/inbound';
import { DEFERRED_STATUS, type EmailStatus } from '../contracts/email-status';
import { MAIL_DOMAIN, MAIL_FROM_HASH, MAIL_STATUS, MAIL_TO_HASH } from '../contracts/search-attributes';
import type { AuditRecord } from '../lib/mail/metadata';
import { emailOutcome } from '../lib/mail/email-outcome';
import { autoReplyTarget, reportedRecipient } from '../lib/mail/rule-gates';
import {
  blockedRecord as auditOfBlocked,
  blockedResults,
  deliveryRequest,
  loopedResults,
  notBlockedRecipients,
  rulesApply,
} from '../lib/mail/plain-delivery';
import { compactVerdicts } from '../lib/mail/ses-verdicts';

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = { rounds: 6, firstDelaySeconds: 60, maxDelaySeconds: 1800 };

// Reading S3 and parsing: a few seconds normally; retried on S3 errors.
// Every activity heartbeats while it runs (lib/temporal/heartbeat.ts): a worker that dies
// mid-activity is noticed after HEARTBEAT, and the activity retried on another worker.
const HEARTBEAT = '20 seconds';
// Backoffs longer than this become a workflow timer, so an outage does not hold the task.
const LOCAL_RETRY_THRESHOLD = '10 seconds';
/** What a step's regular and local activities share. */
type StepOptions = Pick<LocalActivityOptions, 'startToCloseTimeout' | 'retry'>;
const fetchOptions = {
  startToCloseTimeout: '3 minutes',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
} satisfies StepOptions;
const { fetchEmail } = proxyActivities<InboundActivities>({ ...fetchOptions, heartbeatTimeout: HEARTBEAT });
// Short DynamoDB lookups. Since LOCAL_LOOKUPS_PATCH they run as local activities: no task
// queue round trip and one marker event instead of three events each (the benchmark's
// figures are in docs/benchmarks.md). Histories from before the patch replay with the old path.
const lookupOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
} satisfies StepOptions;
const remoteLookups = proxyActivities<InboundActivities>(lookupOptions);
const localLookups = proxyLocalActivities<InboundActivities>({
  ...lookupOptions,
  localRetryThreshold: LOCAL_RETRY_THRESHOLD,
});
export const LOCAL_LOOKUPS_PATCH = 'local-dynamodb-lookups';
// Since this patch a run that finds no object fails (status missing) instead of completing.
export const MISSING_FAILS_PATCH = 'missing-object-fails-run';
// Issue 11 (inbound mail safety): verdicts in details and metadata, bounce and complaint
// matching that a forged report cannot steer, each rule on its own, the per-recipient
// auto-reply gate, outside-forward gate, looped recipients. Decided once per run, at its
// start, so histories from before take the old path throughout.
export const MAIL_SAFETY_PATCH = 'inbound-mail-safety';
// Issue 14 (one workflow task per email): an ordinary email (up to FAST_PATH_MAX_BYTES, which
// fetchEmail applies and reports as a 'large' result) is fetched, checked, delivered (first
// round), its rules run and it is tagged by local activities, so the happy path is one
// workflow task. A larger message, and every delivery round after a 4xx, uses the regular,
// heartbeating activities. Every step is safe to run twice within one run (a worker that dies
// before the workflow task completes runs its local activities again): fetch recognises its
// own run's tag, deliveries and forwards are logged per object and recipient, the auto-reply
// claim names its run. Since this patch the starters alone set MailDomain (starters/start-inbound.ts)
// and the run no longer upserts it. Decided once per run, at its start.
export const FAST_PATH_PATCH = 'inbound-fast-path';
// One marker for a new run. Every patched() call records a marker and an upsert of
// TemporalChangeVersion: two history events, which the server writes for every email. A run
// started since this patch records this one marker, which stands for MAIL_SAFETY_PATCH,
// FAST_PATH_PATCH and MISSING_FAILS_PATCH (its behaviour is theirs, unchanged), so a plain
// email is 12 events instead of 14 (docs/benchmarks.md). Runs that recorded those markers
// replay with them. The next change to this workflow adds a patch of its own, as before.
export const CURRENT_PATCH = 'inbound-current-2026-12';
// Issue 21 (no outage loses mail): the marker of a new run since then; it stands for
// CURRENT_PATCH's behaviour plus deferral. A temporary failure (a server unreachable, a
// timeout, a 4xx, AWS throttling or 5xx) no longer fails the email once the step's retries
// run out: the email is `deferred` and tried again after a durable timer (Postfix-like
// backoff) until DELIVERY_MAX_AGE after its arrival; only a permanent answer fails it. A bounce
// rewrite names only a destination of the matched message. Runs that recorded CURRENT_PATCH or
// older markers replay with their behaviour. Decided once per run, at its start.
// Issue 25 (find by address) rides on this marker, released with it: a run on this path sets
// MailFromHash and MailToHash (fetchEmail's keyed hashes, never addresses) in the upserts of
// MailStatus it makes anyway, so a plain email keeps its 12 events.
export const DEFERRAL_PATCH = 'inbound-current-2026-12b';
// Issue 24 (fewer activations per email): the marker of a new run since then; it stands for
// DEFERRAL_PATCH's behaviour plus this. fetchEmail is asked for the lookups too (`lookups`): the
// blocklist and rules of the recipients and a report's outbound message, read with its copy
// counter in one DynamoDB request, so an ordinary email is fetch, delivery and tag (one local
// activity, one marker and one activation less). When fetchEmail could not read them, the
// lookup and bounce-match steps run on their own as before (with their retries and waits).
// Runs that recorded DEFERRAL_PATCH or older markers replay with their behaviour. Decided once
// per run, at its start.
export const BATCHED_PATCH = 'inbound-current-2026-12c';
// Issue 24 (fewer activations per email), continued: the marker of a new run since then; it
// stands for BATCHED_PATCH's behaviour plus this. When the first delivery ends the email (no
// recipient deferred, no rules to run after it), the same local activity tags the S3 object
// (deliverAndTag, with the status lib/mail/email-outcome.ts decides for both): an ordinary
// email is fetch and deliver-and-tag, one local activity, one marker and one activation less.
// A tag that fails there is written by the tag step as before. Runs that recorded
// BATCHED_PATCH or older markers replay with their behaviour. Decided once per run, at its start.
export const TAG_WITH_DELIVERY_PATCH = 'inbound-current-2026-12d';
// Issue 24, continued: the marker of a new run since then; it stands for TAG_WITH_DELIVERY_PATCH's
// behaviour plus this. The local fetch is fetchAndDeliver: when the email needs nothing but its
// delivery (lib/mail/plain-delivery.ts: no loop, no report, a recipient not blocked, no rules
// for them; the decision this workflow makes after a fetch), the same local activity delivers
// and tags it as deliverAndTag would, and the workflow takes that answer for its delivery step.
// An ordinary email is then one local activity: one marker and one activation less. Anything
// else, and a delivery that threw there, goes through the steps below as before. Runs that
// recorded TAG_WITH_DELIVERY_PATCH or older markers replay with their behaviour. Decided once
// per run, at its start.
export const FETCH_AND_DELIVER_PATCH = 'inbound-current-2026-12e';
// Delivery: a 40 MB message over SMTP can take a while; connection errors retry with backoff.
const deliverOptions = {
  startToCloseTimeout: '5 minutes',
  retry: {
    initialInterval: '5s',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 8,
    nonRetryableErrorTypes: [INBOUND_ERRORS.DeliveryRefused, INBOUND_ERRORS.EmailMissing],
  },
} satisfies StepOptions;
const rulesOptions = {
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '5s',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 8,
    nonRetryableErrorTypes: [
      INBOUND_ERRORS.ForwardRefused,
      INBOUND_ERRORS.AutoReplyRefused,
      INBOUND_ERRORS.EmailMissing,
    ],
  },
} satisfies StepOptions;
// Tagging is the audit trail: keep trying for hours rather than leave an email untagged.
const tagOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 60 },
} satisfies StepOptions;
const { deliverEmail } = proxyActivities<InboundActivities>({ ...deliverOptions, heartbeatTimeout: HEARTBEAT });
const regularRules = proxyActivities<InboundActivities>({ ...rulesOptions, heartbeatTimeout: HEARTBEAT });
const { forwardEmail, sendAutoReply } = regularRules;
const { tagEmail: regularTagEmail, deleteEmail } = proxyActivities<InboundActivities>({
  ...tagOptions,
  heartbeatTimeout: HEARTBEAT,
});
/**
 * A local activity's failure reaches the workflow as the error the activity threw (an
 * ApplicationFailure, a TimeoutFailure), not wrapped in an ActivityFailure as a regular
 * activity's is. The steps tell an activity's failure (the email fails or partly fails) from
 * a bug in workflow code (the task fails, and is retried once the code is fixed) by
 * ActivityFailure, so these proxies wrap their failures the same way.
 */
function asActivityFailures<T extends object>(proxy: T): T {
  // One .catch, not an async function around an await: each promise made in workflow code
  // costs the SDK's promise hook a captured stack trace (issue 24).
  const wrap =
    <A extends unknown[], R>(type: string, call: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      call(...args).catch((err: unknown) => {
        if (err instanceof TemporalFailure && !(err instanceof ActivityFailure)) {
          const state =
            err instanceof TimeoutFailure
              ? RetryState.TIMEOUT
              : err instanceof ApplicationFailure && err.nonRetryable
                ? RetryState.NON_RETRYABLE_FAILURE
                : RetryState.MAXIMUM_ATTEMPTS_REACHED;
          throw new ActivityFailure(err.message, type, undefined, state, 'local activity', err);
        }
        throw err;
      });
  return new Proxy(proxy, {
    get(target, name) {
      const fn = Reflect.get(target, name) as ((...args: unknown[]) => Promise<unknown>) & {
        executeWithOptions: (...args: unknown[]) => Promise<unknown>;
      };
      if (typeof name !== 'string' || typeof fn !== 'function') return fn;
      return Object.assign(wrap(name, fn), { executeWithOptions: wrap(name, fn.executeWithOptions) });
    },
  });
}
// The fast path's: the same timeouts and retries, no heartbeat (a local activity lives inside
// the workflow task), and the local retry threshold.
const local = {
  fetch: asActivityFailures(
    proxyLocalActivities<InboundActivities>({ ...fetchOptions, localRetryThreshold: LOCAL_RETRY_THRESHOLD }),
  ),
  deliver: asActivityFailures(
    proxyLocalActivities<InboundActivities>({ ...deliverOptions, localRetryThreshold: LOCAL_RETRY_THRESHOLD }),
  ),
  rules: asActivityFailures(
    proxyLocalActivities<InboundActivities>({ ...rulesOptions, localRetryThreshold: LOCAL_RETRY_THRESHOLD }),
  ),
  tag: asActivityFailures(
    proxyLocalActivities<InboundActivities>({ ...tagOptions, localRetryThreshold: LOCAL_RETRY_THRESHOLD }),
  ),
};
// The lookups on the fast path: the same local activities, their failures wrapped.
const fastLookups = asActivityFailures(localLookups);

// Since DEFERRAL_PATCH each step has a short retry budget of about a minute (a blip is absorbed
// within the step); after that the workflow waits on a durable timer and tries again (wait(),
// below), so an outage holds no activity slot and no workflow task.
const roundRetry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 6 };
const deferral = {
  fetch: { ...fetchOptions, retry: roundRetry },
  lookups: { ...lookupOptions, retry: roundRetry },
  deliver: {
    ...deliverOptions,
    retry: { ...deliverOptions.retry, maximumInterval: '30 seconds', maximumAttempts: 4 },
  },
  tag: { ...tagOptions, retry: roundRetry },
} satisfies Record<string, StepOptions>;
/** The proxies of one path: the steps as local (fast path) and regular activities. */
interface StepProxies {
  fetch: typeof local.fetch;
  localFetch: typeof local.fetch;
  deliver: typeof local.deliver;
  localDeliver: typeof local.deliver;
  tag: typeof local.tag;
  localTag: typeof local.tag;
  fastLookups: typeof fastLookups;
}
const classicSteps: StepProxies = {
  fetch: { fetchEmail } as typeof local.fetch,
  localFetch: local.fetch,
  deliver: { deliverEmail } as typeof local.deliver,
  localDeliver: local.deliver,
  tag: { tagEmail: regularTagEmail } as typeof local.tag,
  localTag: local.tag,
  fastLookups,
};
const deferralSteps: StepProxies = {
  fetch: proxyActivities<InboundActivities>({ ...deferral.fetch, heartbeatTimeout: HEARTBEAT }),
  localFetch: asActivityFailures(
    proxyLocalActivities<InboundActivities>({ ...deferral.fetch, localRetryThreshold: LOCAL_RETRY_THRESHOLD }),
  ),
  deliver: proxyActivities<InboundActivities>({ ...deferral.deliver, heartbeatTimeout: HEARTBEAT }),
  localDeliver: asActivityFailures(
    proxyLocalActivities<InboundActivities>({ ...deferral.deliver, localRetryThreshold: LOCAL_RETRY_THRESHOLD }),
  ),
  tag: proxyActivities<InboundActivities>({ ...deferral.tag, heartbeatTimeout: HEARTBEAT }),
  localTag: asActivityFailures(
    proxyLocalActivities<InboundActivities>({ ...deferral.tag, localRetryThreshold: LOCAL_RETRY_THRESHOLD }),
  ),
  fastLookups: asActivityFailures(
    proxyLocalActivities<InboundActivities>({ ...deferral.lookups, localRetryThreshold: LOCAL_RETRY_THRESHOLD }),
  ),
};
// fetchAndDeliver (FETCH_AND_DELIVER_PATCH): the fetch's retries (only its fetch throws: a
// delivery that fails there is left to the delivery step), the time of a fetch and a delivery.
const localFetchAndDeliver = asActivityFailures(
  proxyLocalActivities<InboundActivities>({
    startToCloseTimeout: '8 minutes',
    retry: roundRetry,
    localRetryThreshold: LOCAL_RETRY_THRESHOLD,
  }),
);
// The `deferred` tag while an email waits: best effort (S3 may be what is down), a few tries.
const { tagEmail: tagDeferred } = proxyActivities<InboundActivities>({
  ...tagOptions,
  retry: { ...roundRetry, maximumAttempts: 3 },
  heartbeatTimeout: HEARTBEAT,
});

/**
 * Whether an activity's failure is temporary (deferred since DEFERRAL_PATCH): the step ran out
 * of retries or time, or its failure type says unavailable. Permanent: a failure the activity
 * marked non-retryable for another reason (a 5xx refusal of the whole message, a missing object).
 */
function isTemporary(err: ActivityFailure): boolean {
  const cause = err.cause;
  if (cause instanceof ApplicationFailure && cause.type?.endsWith('Unavailable')) return true;
  // A refusal (DeliveryRefused, ForwardRefused, AutoReplyRefused) or a missing object, also when
  // thrown as retryable (the step's policy lists them as non-retryable).
  if (
    cause instanceof ApplicationFailure &&
    (cause.nonRetryable || cause.type?.endsWith('Refused') || cause.type === INBOUND_ERRORS.EmailMissing)
  )
    return false;
  return err.retryState !== RetryState.NON_RETRYABLE_FAILURE;
}

const STEP_NAMES: Record<string, string> = { deliverAndTag: 'deliverEmail', fetchAndDeliver: 'fetchEmail' };

function describe(err: unknown): string {
  // deliverAndTag fails only in its delivery (a failed tag is left to the tag step), fetchAndDeliver
  // only in its fetch (a failed delivery is left to the delivery step): named as such.
  if (err instanceof ActivityFailure && err.cause)
    return `${STEP_NAMES[err.activityType] ?? err.activityType}: ${err.cause.message}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * One run's state, shared by the steps below. Each step is a named function that takes the
 * run, calls its activities and records what it found in `result`; adding a step is one
 * call in processInboundEmail plus its activity. The order of the calls is the order of
 * the commands in history: changing it needs patched() (docs/upgrades.md).
 */
interface InboundRun {
  input: ProcessInboundInput;
  ref: InboundRef;
  policy: DeliveryPolicy;
  /** DEFERRAL_PATCH, decided once at the start: temporary failures wait and try again. */
  deferral: boolean;
  /** BATCHED_PATCH, decided once at the start: fetchEmail is asked for the lookups too. */
  batched: boolean;
  /** TAG_WITH_DELIVERY_PATCH, decided once at the start: a delivery that ends the email tags it too. */
  tagWithDelivery: boolean;
  /** FETCH_AND_DELIVER_PATCH, decided once at the start: the local fetch is fetchAndDeliver. */
  fetchAndDeliver: boolean;
  /** fetchAndDeliver's delivery of a plain email: the answer of the first delivery round, taken once. */
  delivered?: DeliveredAndTagged;
  /** The status deliverAndTag tagged the object with (finish() then writes no tag of its own for it). */
  taggedAs?: EmailStatus;
  /** Batched path: the lookups fetchEmail made (absent when it could not: the steps run on their own). */
  fetched?: FetchedLookups;
  /** The activities of this run's path (classic or deferral). */
  steps: StepProxies;
  /** Deferral: when the object arrived (unix ms), from fetchEmail; the run's start until then. */
  arrival: number;
  /** Deferral settings: the defaults until fetchEmail reports the worker's. */
  settings: DeferralSettings;
  /** Waits so far, over every run of this email; in this run. */
  waits: number;
  runWaits: number;
  lastReason?: string;
  /** MailStatus already says deferred; the S3 object carries the deferred tag. */
  shownDeferred: boolean;
  /** Deferral path: the address hashes fetchEmail reported, and whether an upsert set them (a continued run carries them). */
  hashes?: AddressHashes;
  shownHashes: boolean;
  taggedDeferred: boolean;
  /** Why the email ended failed at DELIVERY_MAX_AGE (prefix of the reason). */
  gaveUp?: string;
  /** What the progress query reports while the email waits. */
  waiting?: { reason: string; since: string; nextTry: string; giveUpAt: string; waits: number };
  /** CURRENT_PATCH, decided once at the start: the three patches it stands for apply without their markers. */
  current: boolean;
  /** MAIL_SAFETY_PATCH, decided once at the start. */
  safety: boolean;
  /** FAST_PATH_PATCH, decided once at the start. */
  fastPath: boolean;
  /** Steps run as local activities: on the fast path, until fetchEmail finds a large message. */
  local: boolean;
  result: InboundResult;
  /** What the progress query reports. */
  step: string;
  blocked: { recipient: string; pattern: string; sender: string }[];
  ruleErrors: string[];
  /** The DynamoDB lookups: local or regular activities, decided at the first lookup. */
  lookups?: typeof remoteLookups;
  /** Fast path: every recipient's rules, read with the blocklist (lookupRecipients); absent when they could not be read then. */
  rules?: RecipientRules[];
}

/**
 * The deferral settings of a run: the defaults, then the worker's (fetchEmail's result, or
 * carried over a continue-as-new), then the run's own input (`delivery`'s delays, `deferral`).
 */
function deferralSettings(input: ProcessInboundInput, worker?: DeferralSettings): DeferralSettings {
  const { firstDelaySeconds, maxDelaySeconds } = input.delivery ?? {};
  return {
    ...DEFAULT_DEFERRAL,
    ...worker,
    ...(firstDelaySeconds !== undefined ? { firstDelaySeconds } : {}),
    ...(maxDelaySeconds !== undefined ? { maxDelaySeconds } : {}),
    ...input.deferral,
  };
}

function startRun(input: ProcessInboundInput): InboundRun {
  const ref: InboundRef = {
    domain: input.domain.toLowerCase(),
    bucket: input.bucket,
    key: input.key,
    envelopeRecipients: input.envelopeRecipients,
    redrive: input.redrive,
    ...(input.redeliver ? { redeliver: true } : {}),
    ...(input.verdicts ? { verdicts: input.verdicts } : {}),
  };
  const resume = input.resume;
  const run: InboundRun = {
    input,
    ref,
    policy: { ...DEFAULT_DELIVERY_POLICY, ...input.delivery },
    deferral: false,
    batched: false,
    tagWithDelivery: false,
    fetchAndDeliver: false,
    steps: classicSteps,
    arrival: resume?.arrival ?? workflowInfo().runStartTime.getTime(),
    settings: deferralSettings(input, resume?.settings),
    waits: resume?.waits ?? 0,
    runWaits: 0,
    lastReason: resume?.lastReason,
    shownDeferred: resume !== undefined,
    // A continued run carries its hashes as search attributes (wait() passes them on), unless
    // its predecessor never read the email (S3 unavailable): then its own fetch sets them.
    shownHashes: resume !== undefined && carriedHashes().length > 0,
    taggedDeferred: resume?.tagged ?? false,
    current: false,
    safety: false,
    fastPath: false,
    local: false,
    result: { status: 'failed', bucket: ref.bucket, key: ref.key, recipients: [], autoReplies: [], forwards: [] },
    step: 'fetch',
    blocked: [],
    ruleErrors: [],
  };
  setHandler(progressQuery, () => ({
    step: run.step,
    recipients: run.result.recipients,
    // Deferred while the mail waits (a forward or the tag waiting alone leaves the status be).
    ...(run.waiting ? { deferred: run.waiting } : {}),
    ...(run.waiting && run.shownDeferred ? { status: DEFERRED_STATUS } : {}),
  }));
  // A run continued as new is a deferral run: it exists only since DEFERRAL_PATCH. One started
  // by this code records BATCHED_PATCH; one continued by older code does not.
  run.fetchAndDeliver = patched(FETCH_AND_DELIVER_PATCH);
  run.tagWithDelivery = run.fetchAndDeliver || patched(TAG_WITH_DELIVERY_PATCH);
  run.batched = run.tagWithDelivery || patched(BATCHED_PATCH);
  run.deferral = run.batched || resume !== undefined || patched(DEFERRAL_PATCH);
  if (run.deferral) run.steps = deferralSteps;
  run.current = run.deferral || patched(CURRENT_PATCH);
  run.safety = run.current || patched(MAIL_SAFETY_PATCH);
  run.fastPath = run.local = run.current || patched(FAST_PATH_PATCH);
  // The starters set MailDomain when they start the run; before the fast path it was set again here.
  if (!run.fastPath) upsertSearchAttributes([{ key: MAIL_DOMAIN, value: ref.domain }]);
  return run;
}

// Decided once, at the first lookup, so one run never mixes the two. The fast path's lookups
// are local on either path (as they were since LOCAL_LOOKUPS_PATCH), without that patch's marker.
const dynamo = (run: InboundRun) =>
  (run.lookups ??= run.fastPath ? run.steps.fastLookups : patched(LOCAL_LOOKUPS_PATCH) ? localLookups : remoteLookups);

const blockedRecord = (run: InboundRun): Partial<AuditRecord> => auditOfBlocked(run.blocked, run.result.verdicts);

const iso = (ms: number) => new Date(ms).toISOString();
// Date.now() here is deterministic on purpose: the SDK's sandbox replaces it with the time of the
// current workflow task, recorded in history, so a replay decides the same waits and give-ups.
const giveUpAt = (run: InboundRun) => run.arrival + run.settings.maxAgeSeconds * 1000;
const pastMaxAge = (run: InboundRun) => Date.now() >= giveUpAt(run);
const gaveUpText = (run: InboundRun) =>
  `deferred since ${iso(run.arrival)}, given up after DELIVERY_MAX_AGE (${run.settings.maxAgeSeconds} s)`;

/** What a step waits for, when its failure is temporary (deferral path). */
interface WaitFor {
  /** For the details and the reason: "reading the email from S3". */
  what: string;
  /** The mail itself waits (MailStatus deferred, the S3 tag, continue-as-new); false for the final tag. */
  mail: boolean;
  /** At DELIVERY_MAX_AGE: fail (the failure is thrown, the email ends failed) or skip (undefined). */
  atMaxAge: 'fail' | 'skip';
}

/**
 * Runs a step; on the deferral path a temporary failure waits (wait(), a durable timer) and
 * the step is tried again, until DELIVERY_MAX_AGE. Permanent failures, and every failure on
 * the classic path, are thrown as before.
 */
async function persist<T>(run: InboundRun, w: WaitFor & { atMaxAge: 'fail' }, call: () => Promise<T>): Promise<T>;
async function persist<T>(run: InboundRun, w: WaitFor, call: () => Promise<T>): Promise<T | undefined>;
async function persist<T>(run: InboundRun, w: WaitFor, call: () => Promise<T>): Promise<T | undefined> {
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!run.deferral || !(err instanceof ActivityFailure) || !isTemporary(err)) throw err;
      const reason = `${w.what}: ${describe(err)}`;
      if (pastMaxAge(run)) {
        run.lastReason = reason;
        if (w.atMaxAge === 'skip') return undefined;
        run.gaveUp = gaveUpText(run);
        throw err;
      }
      await wait(run, reason, w.mail ? {} : false);
    }
  }
}

/**
 * The email waits (deferral path): shown as deferred (MailStatus, details, the progress
 * query; the S3 tag after the first failed try, best effort), then a durable timer: the first
 * delay doubling up to the maximum (Postfix's backoff), never past DELIVERY_MAX_AGE. After
 * roundsPerRun waits the run continues as new, carrying what `carry` gives (without it the next
 * run starts again at fetch: everything before delivery only reads).
 */
async function wait(
  run: InboundRun,
  reason: string,
  mail: false | { carry?: () => NonNullable<DeferralState['delivery']> },
): Promise<void> {
  const { ref, settings } = run;
  run.lastReason = reason;
  const now = Date.now(); // the workflow task's time (deterministic; see pastMaxAge)
  const backoff = Math.min(settings.maxDelaySeconds, settings.firstDelaySeconds * 2 ** Math.min(run.waits, 30)) * 1000;
  const delay = Math.max(1, Math.ceil(Math.min(backoff, giveUpAt(run) - now)));
  run.waits++;
  run.runWaits++;
  const nextTry = iso(now + delay);
  run.waiting = { reason, since: iso(run.arrival), nextTry, giveUpAt: iso(giveUpAt(run)), waits: run.waits };
  log.warn(mail ? 'email deferred' : 'step deferred', {
    bucket: ref.bucket,
    key: ref.key,
    reason,
    nextTry,
    waits: run.waits,
  });
  if (mail) {
    // A deferred email is findable by address while it waits (when fetchEmail got that far).
    const hashes = run.shownHashes ? [] : hashAttributes(run);
    if (!run.shownDeferred || hashes.length)
      upsertSearchAttributes([{ key: MAIL_STATUS, value: DEFERRED_STATUS }, ...hashes]);
    run.shownDeferred = true;
    if (hashes.length) run.shownHashes = true;
    setCurrentDetails(
      `deferred: ${reason.slice(0, 300)}; try ${run.waits + 1} at ${nextTry}; gives up at ${run.waiting.giveUpAt} (DELIVERY_MAX_AGE, from the arrival at ${run.waiting.since})`,
    );
    if (!run.taggedDeferred) await tagAsDeferred(run, reason);
  } else
    setCurrentDetails(
      `${run.step}: waiting for ${reason.slice(0, 300)}; try ${run.waits + 1} at ${nextTry}; gives up at ${run.waiting.giveUpAt}`,
    );
  await sleep(delay);
  if (mail && run.runWaits >= settings.roundsPerRun) {
    const state: DeferralState = {
      arrival: run.arrival,
      waits: run.waits,
      lastReason: run.lastReason,
      settings: run.settings,
      tagged: run.taggedDeferred,
      ...(mail.carry ? { delivery: mail.carry() } : {}),
    };
    log.info('email still deferred: continuing as new', { bucket: ref.bucket, key: ref.key, waits: run.waits });
    // Same workflow id: a trigger meanwhile is still refused by the running workflow.
    await makeContinueAsNewFunc<typeof processInboundEmail>({
      typedSearchAttributes: [
        { key: MAIL_DOMAIN, value: ref.domain },
        { key: MAIL_STATUS, value: DEFERRED_STATUS },
        ...carriedHashes(),
      ],
    })({ ...run.input, resume: state });
  }
}

/** MailFromHash and MailToHash for an upsert the run makes anyway (deferral path; none without keys). */
function hashAttributes(run: InboundRun): SearchAttributePair[] {
  const h = run.hashes;
  if (!run.deferral || !h) return [];
  return [
    ...(h.from.length ? [{ key: MAIL_FROM_HASH, value: h.from }] : []),
    ...(h.to.length ? [{ key: MAIL_TO_HASH, value: h.to }] : []),
  ];
}

/**
 * The hashes this run's search attributes hold (set by an upsert, or carried into a continued
 * run), for the next run of a continue-as-new: its search attributes are only those it is given.
 */
function carriedHashes(): SearchAttributePair[] {
  const attrs = workflowInfo().typedSearchAttributes;
  return [MAIL_FROM_HASH, MAIL_TO_HASH].flatMap((key) => {
    const value = attrs.get(key);
    return value?.length ? [{ key, value }] : [];
  });
}

/** The S3 object says `deferred` while the email waits: best effort, S3 may be what is down. */
async function tagAsDeferred(run: InboundRun, reason: string): Promise<void> {
  const { ref } = run;
  try {
    await tagDeferred.executeWithOptions({ summary: 'tag S3 object: status=deferred' }, [
      {
        domain: ref.domain,
        bucket: ref.bucket,
        key: ref.key,
        record: { status: DEFERRED_STATUS, error: reason, arrivedAt: Math.floor(run.arrival / 1000) },
      },
    ]);
    run.taggedDeferred = true;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    log.warn('deferred tag not written (tried again at the next wait)', { bucket: ref.bucket, key: ref.key });
  }
}

/** Tags the object with its status (unless `tag` is false), sets the search attribute and details. */
async function finish(
  run: InboundRun,
  status: EmailStatus,
  record: Partial<Omit<AuditRecord, 'status' | 'processedAt' | 'processedBy'>> = {},
  tag = true,
): Promise<InboundResult> {
  const { ref, result } = run;
  result.status = status;
  run.step = 'tag';
  const tagEmail = run.local ? run.steps.localTag.tagEmail : run.steps.tag.tagEmail;
  // Written with the delivery (deliverAndTag), with this status, from the same outcomes.
  if (tag && run.taggedAs !== status) {
    const tagged = await persist(run, { what: 'tagging the S3 object', mail: false, atMaxAge: 'skip' }, () =>
      tagEmail.executeWithOptions({ summary: `tag S3 object: status=${status}` }, [
        { domain: ref.domain, bucket: ref.bucket, key: ref.key, record: { status, ...record } },
      ]),
    );
    if (tagged === undefined)
      log.error('S3 object left untagged: tagging failed until DELIVERY_MAX_AGE', {
        bucket: ref.bucket,
        key: ref.key,
        status,
        reason: run.lastReason,
      });
  }
  run.waiting = undefined;
  const hashes = run.shownHashes ? [] : hashAttributes(run);
  upsertSearchAttributes([{ key: MAIL_STATUS, value: status }, ...hashes]);
  const counts = ['delivered', 'invalid', 'blocked', 'failed']
    .map((o) => [o, result.recipients.filter((r) => r.outcome === o).length] as const)
    .filter(([, n]) => n > 0);
  setCurrentDetails(
    `${status}${counts.length ? ': ' + counts.map(([o, n]) => `${n} ${o}`).join(', ') : ''}${result.reason ? ` (${result.reason.slice(0, 200)})` : ''}${result.verdicts ? `; SES verdicts: ${result.verdicts}` : ''}`,
  );
  run.step = 'done';
  log.info('email finished', { status, bucket: ref.bucket, key: ref.key, reason: result.reason });
  return result;
}

/**
 * Reads the object and its facts. Returns the summary to go on with, or the finished
 * result when the email ends here (missing, oversize, invalid, quarantined, ...).
 */
async function fetchStep(run: InboundRun): Promise<{ summary: EmailSummary } | { done: InboundResult }> {
  const { ref, result, safety } = run;
  const reading = { what: 'reading the email from S3', mail: true, atMaxAge: 'fail' } as const;
  // Batched path: the lookups are read with the email (one activity and DynamoDB request).
  const asked = run.batched ? { ...ref, lookups: true } : ref;
  const what = run.batched
    ? 'read the object from S3, parse its headers; blocklist and rules of its recipients'
    : 'read the object from S3 and parse its headers';
  let fetched = await persist(run, reading, () =>
    run.local && run.fetchAndDeliver
      ? localFetchAndDeliver.fetchAndDeliver.executeWithOptions(
          { summary: `${what}; deliver and tag if nothing else applies` },
          [ref],
        )
      : run.local
        ? run.steps.localFetch.fetchEmail.executeWithOptions({ summary: what }, [{ ...asked, fastPath: true }])
        : run.steps.fetch.fetchEmail.executeWithOptions({ summary: what }, [asked]),
  );
  if (fetched.kind === 'large') {
    // Over FAST_PATH_MAX_BYTES: this email takes the regular, heartbeating activities.
    run.local = false;
    const size = fetched.size;
    fetched = await persist(run, reading, () =>
      run.steps.fetch.fetchEmail.executeWithOptions(
        {
          summary: `${what} (${Math.ceil(size / 1024)} KB: regular activities)`,
        },
        [asked],
      ),
    );
  }
  if (fetched.kind === 'large')
    throw ApplicationFailure.nonRetryable(
      `fetchEmail answered 'large' without the fastPath flag for s3://${ref.bucket}/${ref.key}`,
      'FetchContract',
    );
  if (fetched.kind === 'terminal') {
    result.reason = fetched.reason;
    const verdicts = safety ? compactVerdicts(fetched.verdicts) : undefined;
    if (verdicts) result.verdicts = verdicts;
    // Nothing to tag when the object is gone; an earlier run's tags stay as they are.
    const tag = fetched.status !== 'missing' && fetched.status !== 'already_processed';
    const done = await finish(
      run,
      fetched.status,
      { error: fetched.reason, ...(result.verdicts ? { verdicts: result.verdicts } : {}) },
      tag,
    );
    if (fetched.status === 'missing' && (run.current || patched(MISSING_FAILS_PATCH))) {
      // A failed run, unlike a completed one, lets a later trigger start this workflow id
      // again (WorkflowIdReusePolicy ALLOW_DUPLICATE_FAILED_ONLY, starters/start-inbound.ts): the
      // object may still arrive, and then the sweep or an operator processes it. The
      // result rides along in the details.
      throw ApplicationFailure.create({
        type: INBOUND_ERRORS.EmailMissing,
        message: `${fetched.reason} (status missing): nothing was processed; a later trigger for this object starts a new run`,
        nonRetryable: true,
        details: [done],
      });
    }
    return { done };
  }
  const summary = fetched.summary;
  if (run.batched && fetched.lookups) run.fetched = fetched.lookups;
  if (run.fetchAndDeliver && fetched.delivered) run.delivered = fetched.delivered;
  if (run.deferral) {
    // The worker's settings and the arrival, recorded in history with the result. An
    // operator's re-drive is a new arrival: the object's own time may be weeks old.
    run.settings = deferralSettings(run.input, fetched.deferral);
    if (fetched.arrival !== undefined && !ref.redrive) run.arrival = Math.min(run.arrival, fetched.arrival);
  }
  if (run.deferral && fetched.addressHashes) run.hashes = fetched.addressHashes;
  result.messageId = summary.messageId;
  const verdicts = safety ? compactVerdicts(summary.verdicts) : undefined;
  if (verdicts) result.verdicts = verdicts;
  // Shown in the Web UI while the workflow runs; read through a query, so the payload
  // codec protects the address like any other payload.
  const kind = summary.bounce
    ? `, ${summary.bounce.kind ?? 'bounce'}`
    : safety && summary.automatic
      ? `, automatic (${summary.automatic.rule})`
      : '';
  setCurrentDetails(
    `from ${summary.from ?? '(none)'} to ${summary.recipients.length} recipient(s), ${Math.ceil(summary.size / 1024)} KB${kind}${result.verdicts ? `; SES verdicts: ${result.verdicts}` : ''}`,
  );
  return { summary };
}

/** A bounce or complaint about our outbound mail: the rewrite delivery applies, if it matched one of our messages. */
async function matchBounce(run: InboundRun, summary: EmailSummary): Promise<BounceRewriteInfo | undefined> {
  const { result, safety } = run;
  run.step = 'bounce';
  if (!summary.bounce || summary.bounce.originalMessageIds.length === 0) return undefined;
  const b = summary.bounce;
  const original =
    run.fetched?.outbound !== undefined
      ? run.fetched.outbound
      : await persist(
          run,
          { what: 'matching the report to our outbound message (DynamoDB)', mail: true, atMaxAge: 'fail' },
          () =>
            dynamo(run).findOutboundMessage.executeWithOptions(
              { summary: `match the ${b.kind ?? 'bounce'} to our outbound message` },
              [{ messageIds: b.originalMessageIds }],
            ),
        );
  if (!safety) {
    const failed = b.recipients.find((r) => r.action === 'failed') ?? b.recipients[0];
    result.bounce = { matched: original !== null, bouncedRecipient: failed?.recipient };
    if (original && failed)
      return {
        bouncedRecipient: failed.recipient,
        status: failed.status,
        diagnostic: failed.diagnostic,
        originalSubject: original.subject,
      };
    return undefined;
  }
  // The recipient our message went to, as the report names it; a report whose sender
  // failed authentication is delivered as received (it must not choose our From).
  // Since DEFERRAL_PATCH only a destination of the matched message (issue 21).
  // Unmatched, nothing is rewritten: the named recipient is only recorded.
  const who = reportedRecipient(b, original?.destinations, run.deferral && original !== null);
  const named = b.recipients.find((r) => r.recipient === who);
  result.bounce = { matched: original !== null, bouncedRecipient: who, kind: b.kind ?? 'bounce', rewritten: false };
  if (original && who && b.untrusted) result.bounce.reason = b.untrusted;
  else if (original && !who && run.deferral)
    result.bounce.reason = `the report names none of the ${original.destinations.length} address(es) our message was sent to: delivered unmodified`;
  else if (original && who) {
    result.bounce.rewritten = true;
    return {
      bouncedRecipient: who,
      status: named?.status,
      diagnostic: named?.diagnostic,
      originalSubject: original.subject,
      kind: b.kind ?? 'bounce',
    };
  }
  return undefined;
}

/** The recipients whose blocklist lets the sender through; the others are recorded as blocked. */
async function checkBlocklist(run: InboundRun, summary: EmailSummary): Promise<string[]> {
  run.step = 'block-check';
  const senders = [...new Set([summary.from, summary.sender].filter((s): s is string => !!s))];
  if (run.fastPath) {
    // One lookup for the blocklist and the rules (applyRules uses those of the recipients not
    // blocked; rules that could not be read then are loaded on their own after delivery).
    ({ blocked: run.blocked, rules: run.rules } = await persist(
      run,
      { what: 'reading the blocklists (DynamoDB)', mail: true, atMaxAge: 'fail' },
      () =>
        dynamo(run).lookupRecipients.executeWithOptions(
          { summary: `blocklist and rules of ${summary.recipients.length} recipient(s)` },
          [{ senders, recipients: summary.recipients }],
        ),
    ));
  } else
    run.blocked = senders.length
      ? await dynamo(run).checkBlocklist.executeWithOptions(
          { summary: `blocklist of ${summary.recipients.length} recipient(s)` },
          [{ senders, recipients: summary.recipients }],
        )
      : [];
  return notBlocked(run, summary);
}

/** Batched path: the blocklist and rules fetchEmail read with the email (no step, no promise). */
function fetchedBlocklist(run: InboundRun, fetched: FetchedLookups, summary: EmailSummary): string[] {
  run.step = 'block-check';
  run.blocked = fetched.blocked;
  run.rules = fetched.rules;
  return notBlocked(run, summary);
}

/** Records the blocked recipients; returns the others. */
function notBlocked(run: InboundRun, summary: EmailSummary): string[] {
  run.result.recipients.push(...blockedResults(run.blocked));
  return notBlockedRecipients(summary.recipients, run.blocked);
}

/** Every recipient blocks the sender: tagged first (the audit trail), then deleted. */
async function finishBlocked(run: InboundRun): Promise<InboundResult> {
  const { ref, result } = run;
  result.reason = `every recipient blocks ${run.blocked[0].sender}`;
  await finish(run, 'blocked', blockedRecord(run));
  run.step = 'delete';
  await deleteEmail.executeWithOptions({ summary: 'delete blocked email (after tagging)' }, [
    { bucket: ref.bucket, key: ref.key },
  ]);
  run.step = 'done';
  return result;
}

/**
 * Delivers to `active` (deferral path): a recipient the server defers (4xx), or every pending
 * one when the server cannot be reached or the delivery log read, waits (wait()) and is tried
 * again, until DELIVERY_MAX_AGE; then it has failed with the last reason. A permanent answer
 * (5xx for a recipient or the whole message, the object gone) is final at once. `resumed`:
 * where a run that continued as new left off.
 */
async function deliverWithDeferral(
  run: InboundRun,
  summary: EmailSummary,
  active: string[],
  rewrite: BounceRewriteInfo | undefined,
  resumed?: NonNullable<DeferralState['delivery']>,
  tagWith?: DeliveryTagPlan,
): Promise<void> {
  const { ref, result } = run;
  run.step = 'deliver';
  const outcomes = new Map<string, RecipientResult>((resumed?.outcomes ?? []).map((o) => [o.recipient, o]));
  let pending = resumed?.pending ?? active;
  for (let round = 1; pending.length > 0; round++) {
    // The first try of an ordinary email is local; a try after a wait is a regular activity.
    const deliver =
      run.local && round === 1 && !resumed ? run.steps.localDeliver.deliverEmail : run.steps.deliver.deliverEmail;
    let answers: RecipientResult[];
    const what = `deliver to ${pending.length} recipient(s), try ${run.waits + 1}${rewrite ? ', bounce rewritten' : ''}`;
    try {
      if (tagWith && round === 1 && run.local && !resumed) {
        // The delivery that ends the email tags it too (TAG_WITH_DELIVERY_PATCH); fetchAndDeliver
        // made it already when the email needed nothing else (FETCH_AND_DELIVER_PATCH).
        const done =
          run.delivered ??
          (await run.steps.localDeliver.deliverAndTag.executeWithOptions(
            { summary: `${what}; tag S3 object if that ends the email` },
            [{ ...deliveryRequest(ref, summary, pending, rewrite), tag: tagWith }],
          ));
        run.delivered = undefined;
        answers = done.recipients;
        run.taggedAs = done.tagged;
      } else
        answers = await deliver.executeWithOptions({ summary: what }, [
          deliveryRequest(ref, summary, pending, rewrite),
        ]);
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const outcome = isTemporary(err) ? 'deferred' : 'failed';
      answers = pending.map((recipient) => ({ recipient, outcome, detail: describe(err) }));
    }
    for (const a of answers) outcomes.set(a.recipient, a);
    pending = answers.filter((a) => a.outcome === 'deferred').map((a) => a.recipient);
    if (pending.length === 0) break;
    const first = outcomes.get(pending[0])!;
    const reason = `delivering to ${pending.length} recipient(s): ${first.detail ?? `${first.code ?? ''} deferred`}`;
    if (pastMaxAge(run)) {
      run.lastReason = reason;
      run.gaveUp = gaveUpText(run);
      for (const r of pending) {
        const last = outcomes.get(r)!;
        outcomes.set(r, { ...last, outcome: 'failed', detail: `${run.gaveUp}: ${last.detail ?? 'deferred'}` });
      }
      break;
    }
    const waiting = pending;
    await wait(run, reason, {
      carry: () => ({
        summary,
        ...(rewrite ? { rewrite } : {}),
        active,
        outcomes: [...outcomes.values()],
        pending: waiting,
        result: run.result,
        blocked: run.blocked,
        ...(run.rules ? { rules: run.rules } : {}),
      }),
    });
  }
  result.recipients.push(...active.map((r) => outcomes.get(r)!), ...loopedResults(summary));
}

/**
 * Delivers to `active` in rounds: recipients the server defers (4xx) are tried again after
 * a growing wait, up to policy.rounds; what is still deferred then has failed. Runs from
 * before DEFERRAL_PATCH (deliverWithDeferral since).
 */
async function deliverInRounds(
  run: InboundRun,
  summary: EmailSummary,
  active: string[],
  rewrite: BounceRewriteInfo | undefined,
): Promise<void> {
  const { ref, policy, result } = run;
  run.step = 'deliver';
  const delivered = new Map<string, RecipientResult>();
  let pending = active;
  for (let round = 0; pending.length > 0 && round < policy.rounds; round++) {
    if (round > 0) await sleep(Math.min(policy.maxDelaySeconds, policy.firstDelaySeconds * 2 ** (round - 1)) * 1000);
    let outcomes: RecipientResult[];
    // The first round of an ordinary email is local; a round after a 4xx is a regular activity.
    const deliver = run.local && round === 0 ? local.deliver.deliverEmail : deliverEmail;
    try {
      outcomes = await deliver.executeWithOptions(
        {
          summary: `deliver to ${pending.length} recipient(s), round ${round + 1}${rewrite ? ', bounce rewritten' : ''}`,
        },
        [deliveryRequest(ref, summary, pending, rewrite)],
      );
    } catch (err) {
      // The server stayed unreachable through every retry: what is pending has failed.
      outcomes = pending.map((recipient) => ({ recipient, outcome: 'failed', detail: describe(err) }));
    }
    for (const o of outcomes) delivered.set(o.recipient, o);
    pending = outcomes.filter((o) => o.outcome === 'deferred').map((o) => o.recipient);
  }
  for (const r of pending) {
    const last = delivered.get(r)!;
    delivered.set(r, {
      ...last,
      outcome: 'failed',
      detail: `still deferred after ${policy.rounds} rounds: ${last.detail ?? ''}`.trim(),
    });
  }
  result.recipients.push(...active.map((r) => delivered.get(r)!));
  if (run.safety) result.recipients.push(...loopedResults(summary));
}

/**
 * Rules act after delivery (forwards, out-of-office replies); a failing forward or
 * auto-reply is reported but does not undo or change the delivery outcome. Bounces and
 * complaints run no rules.
 */
async function applyRules(run: InboundRun, summary: EmailSummary, active: string[]): Promise<void> {
  run.step = 'rules';
  if (summary.bounce) return;
  if (run.safety) await applyRulesEachOnItsOwn(run, summary, active);
  else await applyRulesBeforeSafety(run, summary, active);
}

/**
 * Whether applyRules has anything to do: false for a report, and on the safety path when the
 * rules read with the blocklist name none of the active recipients (no step, no promise).
 */
function hasRulesToApply(run: InboundRun, summary: EmailSummary, active: string[]): boolean {
  if (summary.bounce) return false;
  return !run.safety || rulesApply(run.rules, active);
}

/** Before MAIL_SAFETY_PATCH: the first failing rule ends the rules of the email. */
async function applyRulesBeforeSafety(run: InboundRun, summary: EmailSummary, active: string[]): Promise<void> {
  const { ref, result } = run;
  try {
    const rules = await dynamo(run).loadRules.executeWithOptions(
      { summary: `rules of ${active.length} recipient(s)` },
      [{ recipients: active }],
    );
    const ok = new Set(result.recipients.filter((r) => r.outcome === 'delivered').map((r) => r.recipient));
    for (const rule of rules) {
      for (const to of rule.forwards) {
        const { route } = await forwardEmail.executeWithOptions({ summary: 'forward per rule' }, [
          { bucket: ref.bucket, key: ref.key, recipient: rule.recipient, to },
        ]);
        result.forwards.push({ recipient: rule.recipient, to, route });
      }
      if (rule.outOfOffice && ok.has(rule.recipient)) {
        if ('to' in summary.autoReply) {
          const sent = await sendAutoReply.executeWithOptions({ summary: 'out-of-office reply (RFC 3834)' }, [
            {
              recipient: rule.recipient,
              to: summary.autoReply.to,
              originalSubject: summary.subject,
              originalMessageId: summary.messageId,
              message: rule.outOfOffice.message,
              contentType: rule.outOfOffice.contentType,
            },
          ]);
          result.autoReplies.push({ recipient: rule.recipient, to: summary.autoReply.to, ...sent });
        } else {
          result.autoReplies.push({
            recipient: rule.recipient,
            to: summary.sender ?? '',
            sent: false,
            reason: summary.autoReply.skip,
          });
        }
      }
    }
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    run.ruleErrors.push(`rules: ${describe(err)}`);
  }
}

/**
 * Each recipient's rules, each on its own (safety path): one failing forward or reply is
 * recorded and the others still run. Forwards leaving our domains obey the message's
 * outside-forward verdict; replies the per-recipient gate (lib/mail/rule-gates.ts).
 */
async function applyRulesEachOnItsOwn(run: InboundRun, summary: EmailSummary, active: string[]): Promise<void> {
  const { ref, result, ruleErrors } = run;
  const { forwardEmail, sendAutoReply } = run.local ? local.rules : regularRules;
  let rules: RecipientRules[];
  try {
    const activeSet = new Set(active.map((r) => r.toLowerCase()));
    // Deferral path: an unreadable rules table waits (a forward is mail too); the email itself
    // is delivered, so its status stays and the run does not continue as new meanwhile.
    rules = run.rules
      ? run.rules.filter((r) => activeSet.has(r.recipient))
      : await persist(run, { what: 'reading the rules (DynamoDB)', mail: false, atMaxAge: 'fail' }, () =>
          dynamo(run).loadRules.executeWithOptions({ summary: `rules of ${active.length} recipient(s)` }, [
            { recipients: active },
          ]),
        );
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    ruleErrors.push(`rules: ${describe(err)}`);
    return;
  }
  const ok = new Set(result.recipients.filter((r) => r.outcome === 'delivered').map((r) => r.recipient));
  for (const rule of rules) {
    for (const to of rule.forwards) {
      const route = rule.outside?.includes(to) ? 'outbound' : 'internal';
      try {
        // Deferral path: a forward whose server is unavailable waits like a delivery (until the age).
        const done = await persist(run, { what: `forwarding per rule (${route})`, mail: false, atMaxAge: 'fail' }, () =>
          forwardEmail.executeWithOptions({ summary: `forward per rule (${route})` }, [
            {
              bucket: ref.bucket,
              key: ref.key,
              recipient: rule.recipient,
              to,
              ...(summary.outsideForward ? { outside: summary.outsideForward } : {}),
              ...(summary.spam ? { spam: true } : {}),
              ...(ref.redeliver ? { redeliver: true } : {}),
            },
          ]),
        );
        result.forwards.push({
          recipient: rule.recipient,
          to,
          route: done.route,
          sent: !done.skipped,
          ...(done.skipped ? { reason: done.skipped } : {}),
        });
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        result.forwards.push({ recipient: rule.recipient, to, route, sent: false, reason: describe(err) });
        ruleErrors.push(`forward: ${describe(err)}`);
      }
    }
    if (!rule.outOfOffice || !ok.has(rule.recipient)) continue;
    const target = autoReplyTarget(summary, rule.recipient);
    if (!('to' in target)) {
      result.autoReplies.push({
        recipient: rule.recipient,
        to: summary.sender ?? '',
        sent: false,
        reason: target.skip,
      });
      continue;
    }
    const { outOfOffice } = rule;
    try {
      // Deferral path: a reply whose server is unavailable waits like a forward (until the age);
      // the claim names this run, so trying again after the wait is not a second reply.
      const sent = await persist(run, { what: 'sending the out-of-office reply', mail: false, atMaxAge: 'fail' }, () =>
        sendAutoReply.executeWithOptions({ summary: 'out-of-office reply (RFC 3834)' }, [
          {
            recipient: rule.recipient,
            to: target.to,
            originalSubject: summary.subject,
            originalMessageId: summary.messageId,
            message: outOfOffice.message,
            contentType: outOfOffice.contentType,
          },
        ]),
      );
      result.autoReplies.push({ recipient: rule.recipient, to: target.to, ...sent });
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      result.autoReplies.push({ recipient: rule.recipient, to: target.to, sent: false, reason: describe(err) });
      ruleErrors.push(`auto-reply: ${describe(err)}`);
    }
  }
}

/**
 * What deliverAndTag needs to tag as finish() would: the outcomes before the delivery's (the
 * blocked recipients) and after them (looped ones, as deliverWithDeferral appends them).
 */
function tagPlan(run: InboundRun, summary: EmailSummary): DeliveryTagPlan {
  return {
    before: [...run.result.recipients],
    after: loopedResults(summary),
    record: blockedRecord(run),
  };
}

/** The email's status from its recipients' outcomes, and the audit record to tag it with. */
function finalStatus(run: InboundRun, summary: EmailSummary): { status: EmailStatus; record: Partial<AuditRecord> } {
  const { result } = run;
  // Looped recipients (safety path) are in the results but no longer in summary.recipients.
  const expected = run.safety ? result.recipients.length : summary.recipients.length;
  const { status, reason, invalidInboxes, deliveredCount } = emailOutcome(result.recipients, expected, run.ruleErrors);
  if (reason) result.reason = reason;
  return { status, record: { invalidInboxes, deliveredCount, error: result.reason, ...blockedRecord(run) } };
}

/** An activity gave up (after its retries): the email is failed, or partial if some recipient has it. */
async function finishFailed(run: InboundRun, err: ActivityFailure): Promise<InboundResult> {
  const { ref, result } = run;
  result.reason = `${run.gaveUp ? `${run.gaveUp}: ` : ''}${describe(err)}`;
  log.error('email failed', { bucket: ref.bucket, key: ref.key, error: result.reason });
  const deliveredCount = result.recipients.filter((r) => r.outcome === 'delivered').length;
  return await finish(run, deliveredCount > 0 ? 'partial' : 'failed', {
    error: result.reason,
    deliveredCount,
    ...(result.verdicts ? { verdicts: result.verdicts } : {}),
  });
}

export async function processInboundEmail(input: ProcessInboundInput): Promise<InboundResult> {
  const run = startRun(input);
  let summary: EmailSummary;
  const resumed = input.resume?.delivery;
  try {
    if (resumed) {
      // Continued as new while delivery waited: go on where the last run left off.
      summary = resumed.summary;
      run.result = resumed.result;
      run.blocked = resumed.blocked;
      run.rules = resumed.rules;
      run.local = false;
      setCurrentDetails(
        `deferred since ${iso(run.arrival)}: ${run.lastReason?.slice(0, 300) ?? ''}; trying again (continued as new after ${run.waits} waits)`,
      );
      await deliverWithDeferral(run, summary, resumed.active, resumed.rewrite, resumed);
      await applyRules(run, summary, resumed.active);
    } else {
      const fetched = await fetchStep(run);
      if ('done' in fetched) return fetched.done;
      summary = fetched.summary;
      if (summary.loop) {
        run.result.reason = summary.loop;
        return await finish(run, 'loop', {
          error: summary.loop,
          ...(run.result.verdicts ? { verdicts: run.result.verdicts } : {}),
        });
      }
      // Steps with nothing to do are not called: each async call is promises the SDK's hook records.
      const rewrite = summary.bounce?.originalMessageIds.length ? await matchBounce(run, summary) : undefined;
      const active = run.fetched ? fetchedBlocklist(run, run.fetched, summary) : await checkBlocklist(run, summary);
      if (active.length === 0) return await finishBlocked(run);
      const rulesAfter = hasRulesToApply(run, summary, active);
      if (run.deferral)
        await deliverWithDeferral(
          run,
          summary,
          active,
          rewrite,
          undefined,
          run.tagWithDelivery && !rulesAfter ? tagPlan(run, summary) : undefined,
        );
      else await deliverInRounds(run, summary, active, rewrite);
      if (rulesAfter) await applyRules(run, summary, active);
    }
  } catch (err) {
    // Only activity failures become a 'failed' email; a bug in this code must fail the
    // workflow task instead (Temporal retries it once the code is fixed).
    if (!(err instanceof ActivityFailure)) throw err;
    return await finishFailed(run, err);
  }
  const { status, record } = finalStatus(run, summary);
  return await finish(run, status, record);
}
