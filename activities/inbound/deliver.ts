// Delivery to the internal mail server (pooled SMTP, or LMTP when LMTP_ENABLED) and
// outbound sending (auto-replies, forwards outside our domains) through SES or an SMTP
// relay. Results are per recipient: a 5xx for one user never fails the others, and a
// 4xx is reported as deferred so the workflow retries only those recipients.
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import nodemailer, { type Transporter } from 'nodemailer';
import { domainOf, normalizeAddress } from '../lib/address';
import { rewriteBounce } from '../lib/bounce';
import type { Config } from '../lib/config';
import { internalCopy, outsideForward } from '../lib/forward';
import type { BounceRewriteInfo, RecipientResult } from '../lib/inbound-types';
import { componentLogger } from '../lib/logger';
import { recipientDeliveries } from '../lib/metrics';
import { deliveredBefore, objectRef, recordDelivered } from './delivery-log';
import { readRawEmail } from './s3';

const log = componentLogger('delivery');

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
}

export interface Transports {
  /** Inbound delivery to users' mailboxes (SMTP_HOST:SMTP_PORT, or LMTP). */
  mailbox: Transporter;
  /** Forwards to addresses in our own domains (SMTP_HOST:INTERNAL_SMTP_PORT). */
  internal: Transporter;
  /** Everything leaving our domains. */
  outbound: { send(from: string, to: string[], raw: Buffer): Promise<void> };
  close(): void;
}

export function createTransports(config: Config): Transports {
  const auth = config.smtp.user ? { user: config.smtp.user, pass: config.smtp.pass ?? '' } : undefined;
  const pooled = (host: string, port: number, lmtp = false) =>
    nodemailer.createTransport({
      pool: true,
      host,
      port,
      lmtp,
      secure: config.smtp.secure,
      auth,
      maxConnections: config.smtp.poolSize,
      maxMessages: 100,
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 120_000,
    });
  const mailbox = config.lmtp.enabled ? pooled(config.lmtp.host, config.lmtp.port, true) : pooled(config.smtp.host, config.smtp.port);
  const internal = pooled(config.smtp.host, config.internalSmtpPort);
  let outbound: Transports['outbound'];
  let relay: Transporter | undefined;
  if (config.outbound.transport === 'ses') {
    const ses = new SESv2Client({ region: config.awsRegion, endpoint: config.sesEndpoint });
    outbound = {
      async send(from, to, raw) {
        await ses.send(new SendEmailCommand({ FromEmailAddress: from, Destination: { ToAddresses: to }, Content: { Raw: { Data: raw } } }));
      },
    };
  } else {
    // The relay gets its own credentials: the internal server's never leave our network.
    const relayAuth = config.outbound.user ? { user: config.outbound.user, pass: config.outbound.pass ?? '' } : undefined;
    relay = nodemailer.createTransport({ pool: true, host: config.outbound.host, port: config.outbound.port, maxConnections: 2, auth: relayAuth, requireTLS: config.outbound.requireTls });
    outbound = {
      async send(from, to, raw) {
        await relay!.sendMail({ envelope: { from, to }, raw });
      },
    };
  }
  return {
    mailbox,
    internal,
    outbound,
    close() {
      mailbox.close();
      internal.close();
      relay?.close();
    },
  };
}

const TRANSIENT_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNREFUSED', 'ECONNRESET', 'EPROTOCOL']);

/**
 * 5xx at RCPT TO means the mailbox does not exist (an invalid inbox, never retried);
 * 5xx after DATA means this message was refused for the recipient (too large, quota):
 * permanent too, but not a wrong address. 4xx anywhere is deferred.
 */
function outcomeFor(refusal: SmtpError): RecipientResult['outcome'] {
  if (refusal.responseCode === undefined || refusal.responseCode < 500) return 'deferred';
  return refusal.code === 'EMESSAGE' ? 'failed' : 'invalid';
}

export interface DeliveryDeps {
  s3: S3Client;
  dynamo: DynamoDBClient;
  config: Config;
  transports: Transports;
}

export function createDeliveryActivities({ s3, dynamo, config, transports }: DeliveryDeps) {
  const protocol = config.lmtp.enabled ? 'lmtp' : 'smtp';
  return {
    /**
     * Delivers the stored message to `recipients` in one transaction. Returns one result
     * per recipient; throws (and Temporal retries) only when the server could not be
     * reached or broke off, in which case no recipient has the message.
     */
    async deliverEmail(input: {
      domain: string;
      bucket: string;
      key: string;
      recipients: string[];
      envelopeFrom?: string;
      rewrite?: BounceRewriteInfo;
      /** SES spam verdict FAIL: deliver marked X-Mailroom-Spam: yes. */
      spam?: boolean;
      /** Deliver even to recipients the delivery log says already have it (an operator's explicit re-delivery). */
      redeliver?: boolean;
    }): Promise<RecipientResult[]> {
      const { info } = Context.current();
      const run = info.workflowExecution; // absent outside a workflow (standalone calls)
      const object = objectRef(input.bucket, input.key);
      // Any earlier run or attempt may have delivered already (a lost completion, a second
      // trigger under another id, a re-drive): the log is per object and recipient.
      const legacy = run && info.attempt > 1 ? `${run.workflowId}|${run.runId}` : undefined;
      // One normal form for the list, the envelope, the log and the results (lib/address.ts).
      const canonical = (a: string) => normalizeAddress(a) ?? a.trim().toLowerCase();
      const already = input.redeliver ? new Set<string>() : await deliveredBefore(dynamo, config.tables.delivery, object, input.recipients.map(canonical), legacy);
      const todo = [...new Set(input.recipients.map(canonical))].filter((r) => !already.has(r));
      if (todo.length === 0) {
        log.info({ bucket: input.bucket, key: input.key, attempt: info.attempt }, 'every recipient already has this email');
        return input.recipients.map((recipient) => ({ recipient, outcome: 'delivered', detail: 'delivered earlier' }));
      }
      const stored = await readRawEmail(s3, input.bucket, input.key);
      // Valid CRLF line endings and our edits; otherwise the stored bytes (lib/outgoing.ts).
      const raw = input.rewrite ? rewriteBounce(stored, input.rewrite, config.workerName) : internalCopy(stored, { spam: input.spam });
      Context.current().heartbeat();
      const where = `s3://${input.bucket}/${input.key}`;
      let accepted: string[] = [];
      let rejected: SmtpError[] = [];
      try {
        const sent = await transports.mailbox.sendMail({ envelope: { from: input.envelopeFrom ?? '', to: todo }, raw });
        // The server's answers are normalised like our list (lib/address.ts), so they match it.
        accepted = (sent.accepted as string[]).map((a) => canonical(String(a)));
        rejected = ((sent as unknown as { rejectedErrors?: SmtpError[] }).rejectedErrors ?? []) as SmtpError[];
        const mine = new Set(accepted);
        const done = todo.filter((r) => mine.has(r));
        if (done.length) await recordDelivered(dynamo, config.tables.delivery, object, done);
      } catch (e) {
        const err = e as SmtpError;
        if (err.rejectedErrors?.length) {
          rejected = err.rejectedErrors; // every recipient refused at RCPT TO
        } else if (err.responseCode !== undefined && err.code === 'EMESSAGE') {
          // The server refused the message itself (DATA): same answer for every recipient.
          rejected = todo.map((r) => Object.assign(new Error(err.message), { recipient: r, code: 'EMESSAGE', responseCode: err.responseCode, response: err.response }));
        } else if (err.responseCode !== undefined && err.responseCode >= 500 && !TRANSIENT_CODES.has(err.code ?? '')) {
          throw ApplicationFailure.nonRetryable(`${protocol.toUpperCase()} server refused ${where}: ${err.response ?? err.message}`, 'DeliveryRefused');
        } else {
          throw ApplicationFailure.retryable(`cannot deliver ${where} over ${protocol.toUpperCase()} to ${config.lmtp.enabled ? config.lmtp.host : config.smtp.host}: ${err.message}`, 'DeliveryUnavailable');
        }
      }
      const results: RecipientResult[] = input.recipients.map((recipient) => {
        const r = canonical(recipient);
        const refusal = rejected.find((x) => x.recipient !== undefined && canonical(x.recipient) === r);
        if (already.has(r)) return { recipient, outcome: 'delivered', detail: 'delivered earlier' };
        if (refusal) return { recipient, outcome: outcomeFor(refusal), code: refusal.responseCode, detail: (refusal.response ?? refusal.message).slice(0, 200) };
        if (accepted.includes(r)) return { recipient, outcome: 'delivered' };
        return { recipient, outcome: 'deferred', detail: 'server gave no answer for this recipient' };
      });
      for (const r of results) recipientDeliveries.inc({ domain: input.domain, outcome: r.outcome, protocol });
      log.info({ bucket: input.bucket, key: input.key, results: results.map((r) => `${r.recipient}:${r.outcome}${r.code ? `:${r.code}` : ''}`) }, 'delivery attempt');
      return results;
    },

    /**
     * Forwards the stored message. Our own domains go to the internal port (never out
     * through SES and back into S3) with our marker added; outside addresses get the copy
     * in the forwarding recipient's name (lib/forward.ts), unless `outside` says why not.
     */
    async forwardEmail(input: {
      bucket: string;
      key: string;
      recipient: string;
      to: string;
      /** Set when the message must not leave our domains (lib/autoreply.ts outsideForwardDecision). */
      outside?: { skip: string };
      spam?: boolean;
    }): Promise<{ route: 'internal' | 'outbound'; skipped?: string }> {
      const route = config.domains.includes(domainOf(input.to)) ? 'internal' : 'outbound';
      if (route === 'outbound' && input.outside) return { route, skipped: input.outside.skip };
      const stored = await readRawEmail(s3, input.bucket, input.key);
      const marker = `${config.workerName}; forwarded-for=${input.recipient}`;
      const raw = route === 'internal' ? internalCopy(stored, { marker, spam: input.spam }) : outsideForward(stored, { recipient: input.recipient, marker: config.workerName, spam: input.spam });
      try {
        if (route === 'internal') await transports.internal.sendMail({ envelope: { from: input.recipient, to: [input.to] }, raw });
        else await transports.outbound.send(input.recipient, [input.to], raw);
      } catch (e) {
        const err = e as SmtpError;
        const code = err.responseCode ?? err.rejectedErrors?.[0]?.responseCode;
        const msg = `forward of s3://${input.bucket}/${input.key} from ${input.recipient} to ${input.to} (${route}) failed: ${err.response ?? err.rejectedErrors?.[0]?.response ?? err.message}`;
        if (code !== undefined && code >= 500) throw ApplicationFailure.nonRetryable(msg, 'ForwardRefused');
        throw ApplicationFailure.retryable(msg, 'ForwardUnavailable');
      }
      return { route };
    },
  };
}
