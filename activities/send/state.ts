// The outbox row's life as the sendMessage workflow drives it: read it at start, cancel or
// reschedule it on a signal, move it to `sending` when the timer fires, and record the final
// status. Each is one conditional statement in lib/outbox/store.ts, safe to run twice.
import { ApplicationFailure } from '@temporalio/activity';
import { SEND_ERRORS, type OutboxStatus } from '../../contracts/send';
import {
  allRecipients,
  pendingRecipients,
  type OutboxMessage,
  type OutboxStore,
  type RecipientResult,
} from '../../lib/outbox';
import { redactAddresses } from '../../lib/mail/address';
import type { SendLimits, SendRef, SendState } from './types';

export function missing(ref: SendRef): never {
  throw ApplicationFailure.nonRetryable(
    `Outbox message ${ref.outboxId} of account ${ref.accountId} does not exist for user ${ref.userId} (the account was removed?); nothing to send.`,
    SEND_ERRORS.NotFound,
  );
}

export function stateOf(m: OutboxMessage): SendState {
  return {
    status: m.status,
    sendAt: m.sendAt ? m.sendAt.getTime() : null,
    recipients: allRecipients(m).length,
    // Server replies quote addresses; the row keeps them, results (history) do not.
    reason: m.statusReason === null ? null : redactAddresses(m.statusReason),
  };
}

/** Counts of a row's recipients by verdict. */
export function tally(m: OutboxMessage): { accepted: number; failed: number; pending: number } {
  const all = allRecipients(m);
  const count = (s: RecipientResult['status']) => all.filter((a) => m.recipientResults[a]?.status === s).length;
  return { accepted: count('accepted'), failed: count('failed'), pending: pendingRecipients(m).length };
}

/** The status line of a finished send: counts and the first refusal's reply (server words, no address). */
export function finalReason(m: OutboxMessage): string | null {
  const t = tally(m);
  const total = allRecipients(m).length;
  if (t.failed === 0) return null;
  const firstRefusal = Object.values(m.recipientResults).find((r) => r.status === 'failed');
  return `${t.accepted} of ${total} recipient(s) accepted, ${t.failed} refused${firstRefusal ? ` (first refusal: ${firstRefusal.reply})` : ''}`;
}

export function createSendStateActivities({ outbox, limits }: { outbox: OutboxStore; limits: SendLimits }) {
  const load = async (ref: SendRef) => (await outbox.get(ref.userId, ref.outboxId)) ?? missing(ref);
  const own = (ref: SendRef, m: OutboxMessage) => (m.accountId === ref.accountId ? m : missing(ref));

  return {
    /** The row's status and send time, and the worker's retry limits, for the workflow's start. */
    async beginSend(ref: SendRef): Promise<SendState & { limits: SendLimits }> {
      return { ...stateOf(own(ref, await load(ref))), limits };
    },

    /** Undo send. `cancelled: false` when it was too late (sending began, or done). */
    async cancelSend(ref: SendRef, reason: string | null): Promise<SendState & { cancelled: boolean }> {
      own(ref, await load(ref));
      const done = await outbox.cancel(ref.userId, ref.outboxId, reason ?? 'cancelled before it was sent (undo send)');
      if (done) return { ...stateOf(done), cancelled: true };
      return { ...stateOf(await load(ref)), cancelled: false };
    },

    /** Moves the send time; the state says whether it moved (only a scheduled message moves). */
    async rescheduleSend(ref: SendRef, sendAt: number): Promise<SendState & { rescheduled: boolean }> {
      own(ref, await load(ref));
      const moved = await outbox.reschedule(ref.userId, ref.outboxId, new Date(sendAt));
      if (moved) return { ...stateOf(moved), rescheduled: true };
      return { ...stateOf(await load(ref)), rescheduled: false };
    },

    /** The timer fired: scheduled -> sending, unless a cancel got there first (then the state says cancelled). */
    async startSending(ref: SendRef): Promise<SendState> {
      own(ref, await load(ref));
      return stateOf((await outbox.markSending(ref.userId, ref.outboxId)) ?? missing(ref));
    },

    /**
     * Records the final status from the recipients' verdicts: sent (all accepted), partial
     * (some accepted), failed (none). Recipients still pending are recorded as failed with
     * `giveUp` (the retries ran out, or the message could not be sent at all).
     */
    async finishSend(
      ref: SendRef,
      giveUp: string | null,
    ): Promise<SendState & { accepted: number; failed: number; sentFolder: string | null }> {
      let m = own(ref, await load(ref));
      if (m.status === 'cancelled' || m.status === 'draft' || m.status === 'scheduled')
        return { ...stateOf(m), ...tally(m), sentFolder: m.sentCopyFolder };
      const pending = pendingRecipients(m);
      if (pending.length) {
        const at = new Date().toISOString();
        const reply = giveUp ?? 'not sent';
        m =
          (await outbox.recordSubmitted(ref.userId, ref.outboxId, {
            results: Object.fromEntries(
              pending.map((a) => [
                a,
                {
                  status: 'failed',
                  code: m.recipientResults[a]?.code ?? null,
                  reply: `${reply}${m.recipientResults[a] ? ` (last reply: ${m.recipientResults[a].reply})` : ''}`,
                  at,
                },
              ]),
            ),
          })) ?? missing(ref);
      }
      const t = tally(m);
      const status: Extract<OutboxStatus, 'sent' | 'partial' | 'failed'> =
        t.failed === 0 ? 'sent' : t.accepted > 0 ? 'partial' : 'failed';
      const reason = status === 'failed' && giveUp ? giveUp : finalReason(m);
      const done = (await outbox.recordResult(ref.userId, ref.outboxId, status, reason)) ?? (await load(ref));
      return { ...stateOf(done), ...tally(done), sentFolder: done.sentCopyFolder };
    },
  };
}
