// The delivery step: the stored message to the internal mail server (pooled SMTP, or LMTP when
// LMTP_ENABLED) through lib/smtp/transports.ts. Results are per recipient: a 5xx for one user
// never fails the others, and a 4xx is reported as deferred so the workflow retries only
// those recipients.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { INBOUND_ERRORS, type DeliveryRequest, type RecipientResult } from '../../contracts/inbound';
import { readRawEmail } from '../../lib/aws/s3';
import type { Config } from '../../lib/config';
import { normalizeAddress } from '../../lib/mail/address';
import { rewriteBounce } from '../../lib/mail/bounce';
import { internalCopy } from '../../lib/mail/forward';
import { componentLogger } from '../../lib/observability/logger';
import { recipientDeliveries } from '../../lib/observability/metrics';
import type { SmtpError, Transports } from '../../lib/smtp/transports';
import { heartbeat } from '../../lib/temporal/heartbeat';
import { deliveredBefore, objectRef, recordDelivered, runRef } from '../../lib/storage/delivery-log';

const log = componentLogger('delivery');

const TRANSIENT_CODES = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPROTOCOL',
  // A TLS handshake or a login that fails is the server's setup, not this message: deferred
  // (as Postfix defers), whatever the reply code.
  'ETLS',
  'EAUTH',
]);

/**
 * 5xx at RCPT TO means the mailbox does not exist (an invalid inbox, never retried);
 * 5xx after DATA means this message was refused for the recipient (too large, quota):
 * permanent too, but not a wrong address. 4xx anywhere is deferred.
 */
function outcomeFor(refusal: SmtpError): RecipientResult['outcome'] {
  if (refusal.responseCode === undefined || refusal.responseCode < 500) return 'deferred';
  return refusal.code === 'EMESSAGE' ? 'failed' : 'invalid';
}

export interface DeliverDeps {
  s3: S3Client;
  dynamo: DynamoDBClient;
  config: Config;
  transports: Transports;
}

export function createDeliverActivities({ s3, dynamo, config, transports }: DeliverDeps) {
  const protocol = config.lmtp.enabled ? 'lmtp' : 'smtp';
  return {
    /**
     * Delivers the stored message to `recipients` in one transaction. Returns one result
     * per recipient; throws DeliveryUnavailable (temporary: retried, then the workflow defers)
     * when the server could not be reached or broke off, or the delivery log cannot be read,
     * in which case no recipient has the message; DeliveryRefused (permanent) for a 5xx to
     * the whole message.
     */
    async deliverEmail(input: DeliveryRequest): Promise<RecipientResult[]> {
      const { info } = Context.current();
      const run = info.workflowExecution; // absent outside a workflow (standalone calls)
      const object = objectRef(input.bucket, input.key);
      // Any earlier run or attempt may have delivered already (a lost completion, a second
      // trigger under another id, a re-drive): the log is per object and recipient. A
      // redeliver run delivers over earlier runs' entries but skips its own (its fast-path
      // steps run again within the run after a worker died).
      const writer = run ? runRef(run) : undefined;
      const legacy = writer && info.attempt > 1 ? writer : undefined;
      // One normal form for the list, the envelope, the log and the results (lib/mail/address.ts).
      const canonical = (a: string) => normalizeAddress(a) ?? a.trim().toLowerCase();
      let already: Set<string>;
      try {
        already =
          input.redeliver && !writer
            ? new Set<string>()
            : await deliveredBefore(dynamo, config.tables.delivery, object, input.recipients.map(canonical), {
                legacyRunKey: legacy,
                onlyRun: input.redeliver ? writer : undefined,
              });
      } catch (err) {
        // Temporary: the workflow defers these recipients and tries again once DynamoDB answers.
        throw ApplicationFailure.retryable(
          `cannot deliver s3://${input.bucket}/${input.key} yet: ${(err as Error).message}`,
          INBOUND_ERRORS.DeliveryUnavailable,
        );
      }
      const todo = [...new Set(input.recipients.map(canonical))].filter((r) => !already.has(r));
      if (todo.length === 0) {
        log.info(
          { bucket: input.bucket, key: input.key, attempt: info.attempt },
          'every recipient already has this email',
        );
        return input.recipients.map((recipient) => ({ recipient, outcome: 'delivered', detail: 'delivered earlier' }));
      }
      const stored = await readRawEmail(s3, input.bucket, input.key);
      // Valid CRLF line endings and our edits; otherwise the stored bytes (lib/mail/outgoing.ts).
      const raw = input.rewrite
        ? rewriteBounce(stored, input.rewrite, config.workerName)
        : internalCopy(stored, { spam: input.spam });
      heartbeat();
      const where = `s3://${input.bucket}/${input.key}`;
      let accepted: string[] = [];
      let rejected: SmtpError[] = [];
      try {
        const sent = await transports.mailbox.sendMail({ envelope: { from: input.envelopeFrom ?? '', to: todo }, raw });
        // The server's answers are normalised like our list (lib/mail/address.ts), so they match it.
        accepted = (sent.accepted as string[]).map((a) => canonical(String(a)));
        rejected = ((sent as unknown as { rejectedErrors?: SmtpError[] }).rejectedErrors ?? []) as SmtpError[];
        const mine = new Set(accepted);
        const done = todo.filter((r) => mine.has(r));
        if (done.length) await recordDelivered(dynamo, config.tables.delivery, object, done, writer);
      } catch (e) {
        const err = e as SmtpError;
        if (err.rejectedErrors?.length) {
          rejected = err.rejectedErrors; // every recipient refused at RCPT TO
        } else if (err.responseCode !== undefined && err.code === 'EMESSAGE') {
          // The server refused the message itself (DATA): same answer for every recipient.
          rejected = todo.map((r) =>
            Object.assign(new Error(err.message), {
              recipient: r,
              code: 'EMESSAGE',
              responseCode: err.responseCode,
              response: err.response,
            }),
          );
        } else if (err.responseCode !== undefined && err.responseCode >= 500 && !TRANSIENT_CODES.has(err.code ?? '')) {
          throw ApplicationFailure.nonRetryable(
            `${protocol.toUpperCase()} server refused ${where}: ${err.response ?? err.message}`,
            INBOUND_ERRORS.DeliveryRefused,
          );
        } else {
          throw ApplicationFailure.retryable(
            `cannot deliver ${where} over ${protocol.toUpperCase()} to ${config.lmtp.enabled ? config.lmtp.host : config.smtp.host}: ${err.message}`,
            INBOUND_ERRORS.DeliveryUnavailable,
          );
        }
      }
      const results: RecipientResult[] = input.recipients.map((recipient) => {
        const r = canonical(recipient);
        const refusal = rejected.find((x) => x.recipient !== undefined && canonical(x.recipient) === r);
        if (already.has(r)) return { recipient, outcome: 'delivered', detail: 'delivered earlier' };
        if (refusal)
          return {
            recipient,
            outcome: outcomeFor(refusal),
            code: refusal.responseCode,
            detail: (refusal.response ?? refusal.message).slice(0, 200),
          };
        if (accepted.includes(r)) return { recipient, outcome: 'delivered' };
        return { recipient, outcome: 'deferred', detail: 'server gave no answer for this recipient' };
      });
      for (const r of results) recipientDeliveries.inc({ domain: input.domain, outcome: r.outcome, protocol });
      log.info(
        {
          bucket: input.bucket,
          key: input.key,
          results: results.map((r) => `${r.recipient}:${r.outcome}${r.code ? `:${r.code}` : ''}`),
        },
        'delivery attempt',
      );
      return results;
    },
  };
}
