// One inbound email = one run of this workflow (id `inbound/<bucket>/<key>`).
// Deterministic code only: every decision that needs I/O is an activity, and the raw
// message never passes through here, only its S3 key and the facts fetchEmail found.
import {
  ActivityFailure,
  ApplicationFailure,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { InboundActivities } from '../activities';
import {
  type BounceRewriteInfo,
  type DeliveryPolicy,
  type EmailSummary,
  INBOUND_ERRORS,
  type InboundRef,
  type InboundResult,
  type ProcessInboundInput,
  progressQuery,
  type RecipientResult,
} from '../contracts/inbound';
import type { EmailStatus } from '../contracts/email-status';
import { MAIL_DOMAIN, MAIL_STATUS } from '../contracts/search-attributes';
import type { AuditRecord } from '../lib/mail/metadata';
import { autoReplyTarget, reportedRecipient } from '../lib/mail/rule-gates';
import { compactVerdicts } from '../lib/mail/ses-verdicts';

// The contract lives in contracts/inbound.ts; re-exported for code that imported it from here.
export type { DeliveryPolicy, ProcessInboundInput };
export { progressQuery };

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = { rounds: 6, firstDelaySeconds: 60, maxDelaySeconds: 1800 };

// Reading S3 and parsing: a few seconds normally; retried on S3 errors.
// Every activity heartbeats while it runs (lib/temporal/heartbeat.ts): a worker that dies
// mid-activity is noticed after HEARTBEAT, and the activity retried on another worker.
const HEARTBEAT = '20 seconds';
const { fetchEmail } = proxyActivities<InboundActivities>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: HEARTBEAT,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
});
// Short DynamoDB lookups. Since LOCAL_LOOKUPS_PATCH they run as local activities: no task
// queue round trip and one marker event instead of three events each (the benchmark's
// figures are in docs/benchmarks.md). Histories from before the patch replay with the old path.
const lookupOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
} as const;
const remoteLookups = proxyActivities<InboundActivities>(lookupOptions);
// Backoffs longer than this become a workflow timer, so an outage does not hold the task.
const localLookups = proxyLocalActivities<InboundActivities>({ ...lookupOptions, localRetryThreshold: '10 seconds' });
export const LOCAL_LOOKUPS_PATCH = 'local-dynamodb-lookups';
// Since this patch a run that finds no object fails (status missing) instead of completing.
export const MISSING_FAILS_PATCH = 'missing-object-fails-run';
// Issue 11 (inbound mail safety): verdicts in details and metadata, bounce and complaint
// matching that a forged report cannot steer, each rule on its own, the per-recipient
// auto-reply gate, outside-forward gate, looped recipients. Decided once per run, at its
// start, so histories from before take the old path throughout.
export const MAIL_SAFETY_PATCH = 'inbound-mail-safety';
// Delivery: a 40 MB message over SMTP can take a while; connection errors retry with backoff.
const { deliverEmail } = proxyActivities<InboundActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: HEARTBEAT,
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 8, nonRetryableErrorTypes: [INBOUND_ERRORS.DeliveryRefused, INBOUND_ERRORS.EmailMissing] },
});
const { forwardEmail, sendAutoReply } = proxyActivities<InboundActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: HEARTBEAT,
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 8, nonRetryableErrorTypes: [INBOUND_ERRORS.ForwardRefused, INBOUND_ERRORS.AutoReplyRefused, INBOUND_ERRORS.EmailMissing] },
});
// Tagging is the audit trail: keep trying for hours rather than leave an email untagged.
const { tagEmail, deleteEmail } = proxyActivities<InboundActivities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: HEARTBEAT,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 60 },
});

function describe(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return `${err.activityType}: ${err.cause.message}`;
  return err instanceof Error ? err.message : String(err);
}

export async function processInboundEmail(input: ProcessInboundInput): Promise<InboundResult> {
  const policy: DeliveryPolicy = { ...DEFAULT_DELIVERY_POLICY, ...input.delivery };
  const ref: InboundRef = {
    domain: input.domain.toLowerCase(),
    bucket: input.bucket,
    key: input.key,
    envelopeRecipients: input.envelopeRecipients,
    redrive: input.redrive,
    ...(input.redeliver ? { redeliver: true } : {}),
    ...(input.verdicts ? { verdicts: input.verdicts } : {}),
  };
  const result: InboundResult = { status: 'failed', bucket: ref.bucket, key: ref.key, recipients: [], autoReplies: [], forwards: [] };
  let step = 'fetch';
  setHandler(progressQuery, () => ({ step, recipients: result.recipients }));
  const safety = patched(MAIL_SAFETY_PATCH);
  upsertSearchAttributes([{ key: MAIL_DOMAIN, value: ref.domain }]);

  const finish = async (status: EmailStatus, record: Partial<Omit<AuditRecord, 'status' | 'processedAt' | 'processedBy'>> = {}, tag = true): Promise<InboundResult> => {
    result.status = status;
    step = 'tag';
    if (tag) await tagEmail.executeWithOptions({ summary: `tag S3 object: status=${status}` }, [{ domain: ref.domain, bucket: ref.bucket, key: ref.key, record: { status, ...record } }]);
    upsertSearchAttributes([{ key: MAIL_STATUS, value: status }]);
    const counts = ['delivered', 'invalid', 'blocked', 'failed'].map((o) => [o, result.recipients.filter((r) => r.outcome === o).length] as const).filter(([, n]) => n > 0);
    setCurrentDetails(`${status}${counts.length ? ': ' + counts.map(([o, n]) => `${n} ${o}`).join(', ') : ''}${result.reason ? ` (${result.reason.slice(0, 200)})` : ''}${result.verdicts ? `; SES verdicts: ${result.verdicts}` : ''}`);
    step = 'done';
    log.info('email finished', { status, bucket: ref.bucket, key: ref.key, reason: result.reason });
    return result;
  };

  // Decided once, at the first lookup, so one run never mixes the two.
  let lookups: typeof remoteLookups | undefined;
  const dynamo = () => (lookups ??= patched(LOCAL_LOOKUPS_PATCH) ? localLookups : remoteLookups);
  let summary: EmailSummary;
  const ruleErrors: string[] = [];
  let blocked: { recipient: string; pattern: string; sender: string }[] = [];
  const blockedRecord = (): Partial<AuditRecord> => ({
    ...(blocked.length ? { blockedSender: blocked[0].sender, blockedRecipients: blocked.map((b) => b.recipient) } : {}),
    ...(result.verdicts ? { verdicts: result.verdicts } : {}),
  });
  /**
   * Each recipient's rules, each on its own (safety path): one failing forward or reply is
   * recorded and the others still run. Forwards leaving our domains obey the message's
   * outside-forward verdict; replies the per-recipient gate (lib/mail/rule-gates.ts).
   */
  const runRules = async (summary: EmailSummary, active: string[]): Promise<void> => {
    let rules;
    try {
      rules = await dynamo().loadRules.executeWithOptions({ summary: `rules of ${active.length} recipient(s)` }, [{ recipients: active }]);
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
          const done = await forwardEmail.executeWithOptions({ summary: `forward per rule (${route})` }, [
            { bucket: ref.bucket, key: ref.key, recipient: rule.recipient, to, ...(summary.outsideForward ? { outside: summary.outsideForward } : {}), ...(summary.spam ? { spam: true } : {}) },
          ]);
          result.forwards.push({ recipient: rule.recipient, to, route: done.route, sent: !done.skipped, ...(done.skipped ? { reason: done.skipped } : {}) });
        } catch (err) {
          if (!(err instanceof ActivityFailure)) throw err;
          result.forwards.push({ recipient: rule.recipient, to, route, sent: false, reason: describe(err) });
          ruleErrors.push(`forward: ${describe(err)}`);
        }
      }
      if (!rule.outOfOffice || !ok.has(rule.recipient)) continue;
      const target = autoReplyTarget(summary, rule.recipient);
      if (!('to' in target)) {
        result.autoReplies.push({ recipient: rule.recipient, to: summary.sender ?? '', sent: false, reason: target.skip });
        continue;
      }
      try {
        const sent = await sendAutoReply.executeWithOptions({ summary: 'out-of-office reply (RFC 3834)' }, [
          { recipient: rule.recipient, to: target.to, originalSubject: summary.subject, originalMessageId: summary.messageId, message: rule.outOfOffice.message, contentType: rule.outOfOffice.contentType },
        ]);
        result.autoReplies.push({ recipient: rule.recipient, to: target.to, ...sent });
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        result.autoReplies.push({ recipient: rule.recipient, to: target.to, sent: false, reason: describe(err) });
        ruleErrors.push(`auto-reply: ${describe(err)}`);
      }
    }
  };

  try {
    const fetched = await fetchEmail.executeWithOptions({ summary: 'read the object from S3 and parse its headers' }, [ref]);
    if (fetched.kind === 'terminal') {
      result.reason = fetched.reason;
      const verdicts = safety ? compactVerdicts(fetched.verdicts) : undefined;
      if (verdicts) result.verdicts = verdicts;
      // Nothing to tag when the object is gone; an earlier run's tags stay as they are.
      const tag = fetched.status !== 'missing' && fetched.status !== 'already_processed';
      const done = await finish(fetched.status, { error: fetched.reason, ...(result.verdicts ? { verdicts: result.verdicts } : {}) }, tag);
      if (fetched.status === 'missing' && patched(MISSING_FAILS_PATCH)) {
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
      return done;
    }
    summary = fetched.summary;
    result.messageId = summary.messageId;
    const verdicts = safety ? compactVerdicts(summary.verdicts) : undefined;
    if (verdicts) result.verdicts = verdicts;
    // Shown in the Web UI while the workflow runs; read through a query, so the payload
    // codec protects the address like any other payload.
    const kind = summary.bounce ? `, ${summary.bounce.kind ?? 'bounce'}` : safety && summary.automatic ? `, automatic (${summary.automatic.rule})` : '';
    setCurrentDetails(`from ${summary.from ?? '(none)'} to ${summary.recipients.length} recipient(s), ${Math.ceil(summary.size / 1024)} KB${kind}${result.verdicts ? `; SES verdicts: ${result.verdicts}` : ''}`);

    if (summary.loop) {
      result.reason = summary.loop;
      return await finish('loop', { error: summary.loop, ...(result.verdicts ? { verdicts: result.verdicts } : {}) });
    }

    step = 'bounce';
    let rewrite: BounceRewriteInfo | undefined;
    if (summary.bounce && summary.bounce.originalMessageIds.length > 0) {
      const b = summary.bounce;
      const original = await dynamo().findOutboundMessage.executeWithOptions({ summary: `match the ${b.kind ?? 'bounce'} to our outbound message` }, [{ messageIds: b.originalMessageIds }]);
      if (!safety) {
        const failed = b.recipients.find((r) => r.action === 'failed') ?? b.recipients[0];
        result.bounce = { matched: original !== null, bouncedRecipient: failed?.recipient };
        if (original && failed) {
          rewrite = { bouncedRecipient: failed.recipient, status: failed.status, diagnostic: failed.diagnostic, originalSubject: original.subject };
        }
      } else {
        // The recipient our message went to, as the report names it; a report whose sender
        // failed authentication is delivered as received (it must not choose our From).
        const who = reportedRecipient(b, original?.destinations);
        const named = b.recipients.find((r) => r.recipient === who);
        result.bounce = { matched: original !== null, bouncedRecipient: who, kind: b.kind ?? 'bounce', rewritten: false };
        if (original && who && b.untrusted) result.bounce.reason = b.untrusted;
        else if (original && who) {
          rewrite = { bouncedRecipient: who, status: named?.status, diagnostic: named?.diagnostic, originalSubject: original.subject, kind: b.kind ?? 'bounce' };
          result.bounce.rewritten = true;
        }
      }
    }

    step = 'block-check';
    const senders = [...new Set([summary.from, summary.sender].filter((s): s is string => !!s))];
    blocked = senders.length ? await dynamo().checkBlocklist.executeWithOptions({ summary: `blocklist of ${summary.recipients.length} recipient(s)` }, [{ senders, recipients: summary.recipients }]) : [];
    for (const b of blocked) result.recipients.push({ recipient: b.recipient, outcome: 'blocked', detail: `${b.sender} matches ${b.pattern}` });
    const blockedSet = new Set(blocked.map((b) => b.recipient));
    const active = summary.recipients.filter((r) => !blockedSet.has(r));
    if (active.length === 0) {
      result.reason = `every recipient blocks ${blocked[0].sender}`;
      await finish('blocked', blockedRecord());
      step = 'delete';
      await deleteEmail.executeWithOptions({ summary: 'delete blocked email (after tagging)' }, [{ bucket: ref.bucket, key: ref.key }]);
      step = 'done';
      return result;
    }

    step = 'deliver';
    const delivered = new Map<string, RecipientResult>();
    let pending = active;
    for (let round = 0; pending.length > 0 && round < policy.rounds; round++) {
      if (round > 0) await sleep(Math.min(policy.maxDelaySeconds, policy.firstDelaySeconds * 2 ** (round - 1)) * 1000);
      let outcomes: RecipientResult[];
      try {
        outcomes = await deliverEmail.executeWithOptions({ summary: `deliver to ${pending.length} recipient(s), round ${round + 1}${rewrite ? ', bounce rewritten' : ''}` }, [
          {
            domain: ref.domain,
            bucket: ref.bucket,
            key: ref.key,
            recipients: pending,
            envelopeFrom: summary.bounce ? '' : summary.sender,
            rewrite,
            ...(summary.spam ? { spam: true } : {}),
            ...(ref.redeliver ? { redeliver: true } : {}),
          },
        ]);
      } catch (err) {
        // The server stayed unreachable through every retry: what is pending has failed.
        outcomes = pending.map((recipient) => ({ recipient, outcome: 'failed', detail: describe(err) }));
      }
      for (const o of outcomes) delivered.set(o.recipient, o);
      pending = outcomes.filter((o) => o.outcome === 'deferred').map((o) => o.recipient);
    }
    for (const r of pending) {
      const last = delivered.get(r)!;
      delivered.set(r, { ...last, outcome: 'failed', detail: `still deferred after ${policy.rounds} rounds: ${last.detail ?? ''}`.trim() });
    }
    result.recipients.push(...active.map((r) => delivered.get(r)!));
    if (safety) for (const l of summary.looped ?? []) result.recipients.push({ recipient: l.recipient, outcome: 'failed', detail: l.detail });

    step = 'rules';
    // Rules act after delivery; a failing forward or auto-reply is reported but does
    // not undo or change the delivery outcome.
    if (!summary.bounce && !safety) try {
      const rules = await dynamo().loadRules.executeWithOptions({ summary: `rules of ${active.length} recipient(s)` }, [{ recipients: active }]);
      const ok = new Set(result.recipients.filter((r) => r.outcome === 'delivered').map((r) => r.recipient));
      for (const rule of rules) {
        for (const to of rule.forwards) {
          const { route } = await forwardEmail.executeWithOptions({ summary: 'forward per rule' }, [{ bucket: ref.bucket, key: ref.key, recipient: rule.recipient, to }]);
          result.forwards.push({ recipient: rule.recipient, to, route });
        }
        if (rule.outOfOffice && ok.has(rule.recipient)) {
          if ('to' in summary.autoReply) {
            const sent = await sendAutoReply.executeWithOptions({ summary: 'out-of-office reply (RFC 3834)' }, [{
              recipient: rule.recipient,
              to: summary.autoReply.to,
              originalSubject: summary.subject,
              originalMessageId: summary.messageId,
              message: rule.outOfOffice.message,
              contentType: rule.outOfOffice.contentType,
            }]);
            result.autoReplies.push({ recipient: rule.recipient, to: summary.autoReply.to, ...sent });
          } else {
            result.autoReplies.push({ recipient: rule.recipient, to: summary.sender ?? '', sent: false, reason: summary.autoReply.skip });
          }
        }
      }
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      ruleErrors.push(`rules: ${describe(err)}`);
    }
    if (!summary.bounce && safety) await runRules(summary, active);
  } catch (err) {
    // Only activity failures become a 'failed' email; a bug in this code must fail the
    // workflow task instead (Temporal retries it once the code is fixed).
    if (!(err instanceof ActivityFailure)) throw err;
    result.reason = describe(err);
    log.error('email failed', { bucket: ref.bucket, key: ref.key, error: result.reason });
    const anyDelivered = result.recipients.some((r) => r.outcome === 'delivered');
    return await finish(anyDelivered ? 'partial' : 'failed', { error: result.reason, deliveredCount: result.recipients.filter((r) => r.outcome === 'delivered').length, ...(result.verdicts ? { verdicts: result.verdicts } : {}) });
  }

  const count = (o: RecipientResult['outcome']) => result.recipients.filter((r) => r.outcome === o).length;
  const deliveredCount = count('delivered');
  const invalid = result.recipients.filter((r) => r.outcome === 'invalid').map((r) => r.recipient);
  const failures = result.recipients.filter((r) => r.outcome === 'failed');
  // Looped recipients (safety path) are in the results but no longer in summary.recipients.
  const expected = safety ? result.recipients.length : summary.recipients.length;
  let status: EmailStatus;
  if (deliveredCount === expected) status = 'delivered';
  else if (deliveredCount > 0) status = 'partial';
  else if (invalid.length > 0 && failures.length === 0) status = 'rejected';
  else status = 'failed';
  const problems = [...failures.map((f) => `${f.recipient}: ${f.detail ?? 'failed'}`), ...ruleErrors];
  if (problems.length) result.reason = problems.join('; ');
  return await finish(status, { invalidInboxes: invalid, deliveredCount, error: result.reason, ...blockedRecord() });
}
