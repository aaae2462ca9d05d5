// Submits an outbox message through the account's SMTP server, exactly once per recipient as
// far as the protocol allows:
//   1. an attempt is recorded in PostgreSQL (submit_pending) before the SMTP transaction starts,
//      and its outcome (each recipient's reply) after the server answered;
//   2. a call that finds an attempt still open (the worker died, or the connection was lost
//      after DATA, before the reply) first looks for the Message-ID in the Sent folder(s): the
//      configured one and any folder the server marks \Sent. Found there: the server took it,
//      every pending recipient is recorded accepted and nothing is sent again. Not found, or
//      nowhere to look: it is submitted again (the residual window, docs/configuration.md);
//   3. only recipients without a final verdict are submitted: a 5xx refusal is final for its
//      recipient, a 4xx is tried again later, accepted ones are never sent again.
// The workflow decides when to try again (backoff, SEND_MAX_AGE); this activity returns the
// state instead of throwing for anything the server says, and throws only for what no retry
// fixes (no SMTP settings, login refused for good) or what its own retries fix (PostgreSQL down).
import { ApplicationFailure } from '@temporalio/activity';
import type pino from 'pino';
import { SEND_ERRORS } from '../../contracts/send';
import type { SendConfig } from '../../lib/config/send';
import { findByMessageId, sentFolders } from '../../lib/imap/sent';
import { redactAddresses } from '../../lib/mail/address';
import { pendingRecipients, type OutboxStore, type RecipientResult } from '../../lib/outbox';
import { describeSmtpEndpoint, submitRaw, type SmtpEndpoint } from '../../lib/smtp/submit';
import type { SubmitOutcome } from '../../lib/smtp/submit-outcome';
import type { AccountLogin } from '../sync/login';
import type { WithImap } from './imap';
import { missing, tally } from './state';
import type { SendActivityDeps, SendRef, SubmitResult } from './types';

export function createSubmitActivities(deps: {
  outbox: OutboxStore;
  login: AccountLogin;
  withImap: WithImap;
  config: SendActivityDeps['config'] & Partial<Pick<SendConfig, 'ratePerMinute'>>;
  log: pino.Logger;
}) {
  const { outbox, login, withImap, config, log } = deps;

  return {
    async submitMessage(ref: SendRef): Promise<SubmitResult> {
      let m = await outbox.get(ref.userId, ref.outboxId);
      if (!m || m.accountId !== ref.accountId) missing(ref);
      // Results go into history: server replies without the addresses they quote.
      const result = (over: Partial<SubmitResult> = {}): SubmitResult => ({
        ...tally(m!),
        retryAfterMs: null,
        recovery: null,
        acceptedNow: false,
        ...over,
        retryReason: over.retryReason ? redactAddresses(over.retryReason) : null,
      });
      if (m.status !== 'sending') return result();
      const pending = pendingRecipients(m);
      if (!pending.length) return result();
      const raw = await outbox.getRaw(ref.userId, ref.outboxId);
      if (!raw)
        throw ApplicationFailure.nonRetryable(
          `Outbox message ${ref.outboxId}: the message was not built before submission`,
          SEND_ERRORS.NotSendable,
        );
      const settings = await outbox.getSmtpSettings(ref.userId, ref.accountId);
      if (!settings?.host || !settings.port)
        throw ApplicationFailure.nonRetryable(
          `Account ${ref.accountId} has no SMTP server set (smtp_host, smtp_port), so outbox message ${ref.outboxId} cannot be sent; set them and send it again.`,
          SEND_ERRORS.NotSendable,
        );
      const now = () => new Date().toISOString();

      // 2. An attempt left open: did the server take it? Only before any acceptance: once one
      // recipient accepted it, the Sent folder holds it whatever happened to the others.
      let recovery: SubmitResult['recovery'] = null;
      if (m.submitPending) {
        if (!m.submittedAt) {
          const found = await withImap(ref, 'look for an unconfirmed submission in the Sent folder', async (c) =>
            findByMessageId(c, await sentFolders(c, settings.sentFolder), m!.messageId),
          );
          if (found) {
            const reply = `found in folder "${found}" after an attempt whose reply was never recorded: the server had accepted it`;
            m =
              (await outbox.recordSubmitted(ref.userId, ref.outboxId, {
                results: Object.fromEntries(
                  pending.map((a) => [a, { status: 'accepted', code: null, reply, at: now() }]),
                ),
                recovery: 'found_in_sent',
              })) ?? missing(ref);
            log.info(
              { outboxId: ref.outboxId, accountId: ref.accountId },
              'unconfirmed submission found in Sent; not sent again',
            );
            return result({ recovery: 'found_in_sent', acceptedNow: true });
          }
        }
        recovery = 'resubmitted';
      }

      // The login first: a refused credential opens no attempt.
      const cred = await login.credential(ref);
      const endpoint: SmtpEndpoint = {
        host: settings.host,
        port: settings.port,
        tls: settings.tls,
        user: cred.account.imapUser,
      };

      // 1. The attempt is on record before the first byte goes out (or the rate says wait).
      const attempt = await outbox.recordSubmitAttempt(ref.userId, ref.outboxId, {
        perMinute: config.ratePerMinute,
      });
      if (!attempt) missing(ref);
      if (!attempt.started)
        return result({
          retryAfterMs: attempt.retryAfterMs,
          retryReason: `account ${ref.accountId} reached its send rate (${config.ratePerMinute} per minute, SEND_RATE_PER_MINUTE)`,
        });

      const timeouts = { connectTimeoutMs: config.smtpConnectTimeoutMs, socketTimeoutMs: config.smtpSocketTimeoutMs };
      const envelope = { from: m.from.address, to: pending };
      let outcome: SubmitOutcome = await submitRaw(endpoint, cred.auth, envelope, raw.raw, timeouts);
      // A cached OAuth2 token refused: one fresh token decides (as the IMAP login does).
      if (outcome.kind === 'auth' && !outcome.temporary && cred.renew)
        outcome = await submitRaw(endpoint, await cred.renew(), envelope, raw.raw, timeouts);

      if (outcome.kind === 'unknown') {
        // The attempt stays open: the next call looks in the Sent folder before sending again.
        log.warn(
          { outboxId: ref.outboxId, accountId: ref.accountId, reply: outcome.reply },
          'SMTP submission ended without a reply',
        );
        return result({
          recovery,
          retryReason: `no reply from SMTP server ${describeSmtpEndpoint(endpoint)}: ${outcome.reply}`,
        });
      }
      if (outcome.kind === 'auth') {
        // Nothing was sent: the attempt is closed with no verdict.
        await outbox.recordSubmitted(ref.userId, ref.outboxId, { results: {}, recovery });
        const what = `SMTP server ${describeSmtpEndpoint(endpoint)} refused the login of account ${ref.accountId} (${cred.account.authMethod}): ${outcome.reply}`;
        if (outcome.temporary) return result({ recovery, retryReason: what });
        // Not marked needs_attention: the same credential may still work for IMAP (SMTP AUTH
        // can be disabled per mailbox, e.g. Microsoft 365's SmtpClientAuthentication).
        throw ApplicationFailure.nonRetryable(
          `${redactAddresses(what)}. Check that the account may submit mail with this login (SMTP AUTH enabled, the OAuth2 scopes include sending), then send the message again.`,
          SEND_ERRORS.AuthRefused,
        );
      }
      const at = now();
      const results: Record<string, RecipientResult> = Object.fromEntries(
        outcome.recipients.map((r) => [r.address, { status: r.status, code: r.code, reply: r.reply, at }]),
      );
      m =
        (await outbox.recordSubmitted(ref.userId, ref.outboxId, {
          results,
          response: outcome.response,
          recovery,
        })) ?? missing(ref);
      const deferred = outcome.recipients.filter((r) => r.status === 'deferred');
      return result({
        recovery,
        acceptedNow: outcome.recipients.some((r) => r.status === 'accepted'),
        retryReason: deferred.length
          ? `${deferred.length} recipient(s) deferred by ${describeSmtpEndpoint(endpoint)}: ${deferred[0].reply}`
          : null,
      });
    },
  };
}
