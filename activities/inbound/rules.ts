// The rules step: the recipients' rules (one batch lookup), forwards, and out-of-office
// replies (RFC 3834). A reply goes out at most once per sender per recipient per
// AUTOREPLY_INTERVAL_HOURS, remembered in DynamoDB so that every worker, and every retry,
// sees the same memory: the claim is a conditional write made before sending, and released
// again if sending fails. The claim names the workflow run that made it and is marked
// `replied` once the reply is out, so a fast-path step run again within that run (its worker
// died before the workflow task completed) reports the reply it sent instead of sending a
// second one or calling it a duplicate. Forwards are logged per object, recipient and address
// (lib/storage/delivery-log.ts) for the same reason.
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import MailComposer from 'nodemailer/lib/mail-composer';
import { INBOUND_ERRORS, type RecipientRules } from '../../contracts/inbound';
import { batchGetAll, stringList } from '../../lib/aws/dynamodb';
import { readRawEmail } from '../../lib/aws/s3';
import { autoReplySubject } from '../../lib/mail/autoreply';
import type { Config } from '../../lib/config';
import { domainOf, normalizeAddress } from '../../lib/mail/address';
import { internalCopy, outsideForward } from '../../lib/mail/forward';
import { componentLogger } from '../../lib/observability/logger';
import { autoRepliesSent, dynamodbRequests } from '../../lib/observability/metrics';
import { LOOP_HEADER } from '../../contracts/email-status';
import type { SmtpError, Transports } from '../../lib/smtp/transports';
import { forwardedBefore, forwardKey, objectRef, recordForwarded, runRef } from '../../lib/storage/delivery-log';
import { activityContext } from '../../lib/temporal/heartbeat';

const log = componentLogger('rules');

export interface RulesDeps {
  s3: S3Client;
  dynamo: DynamoDBClient;
  config: Config;
  transports: Transports;
}

export interface AutoReplyInput {
  recipient: string;
  to: string;
  originalSubject?: string;
  originalMessageId?: string;
  message: string;
  contentType: 'text' | 'html';
}

export function createRulesActivities({ s3, dynamo, config, transports }: RulesDeps) {
  const table = config.tables.autoreply;
  return {
    async sendAutoReply(input: AutoReplyInput): Promise<{ sent: boolean; reason?: string }> {
      // The workflow decided from fetchEmail's verdict; this is the last line: only ever one
      // deliverable address, never the recipient itself.
      const to = normalizeAddress(input.to);
      if (!to || to === normalizeAddress(input.recipient)) {
        autoRepliesSent.inc({ result: 'suppressed' });
        return { sent: false, reason: 'reply address is not one deliverable address other than the recipient' };
      }
      const now = Math.floor(Date.now() / 1000);
      const intervalSeconds = config.autoreplyIntervalHours * 3600;
      const pk = `${input.recipient.toLowerCase()}|${to}`;
      const run = activityContext()?.info.workflowExecution;
      const owner = run ? `${run.workflowId}|${run.runId}` : undefined;
      try {
        dynamodbRequests.inc({ table, operation: 'PutItem' });
        await dynamo.send(
          new PutItemCommand({
            TableName: table,
            Item: {
              pk: { S: pk },
              sent_at: { N: String(now) },
              expires_at: { N: String(now + intervalSeconds) },
              ...(owner ? { claimed_by: { S: owner } } : {}),
            },
            ConditionExpression: 'attribute_not_exists(pk) OR sent_at < :cutoff',
            ExpressionAttributeValues: { ':cutoff': { N: String(now - intervalSeconds) } },
          }),
        );
      } catch (err) {
        if (!(
          err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException'
        ))
          throw err;
        dynamodbRequests.inc({ table, operation: 'GetItem' });
        const prior = owner
          ? (await dynamo.send(new GetItemCommand({ TableName: table, Key: { pk: { S: pk } }, ConsistentRead: true })))
              .Item
          : undefined;
        if (!owner || prior?.claimed_by?.S !== owner) {
          autoRepliesSent.inc({ result: 'duplicate' });
          return { sent: false, reason: `already replied to ${input.to} within ${config.autoreplyIntervalHours}h` };
        }
        // This run's own claim: its reply went out, or its worker died between claim and send
        // (then it is sent now; a death after the server took it is the RFC 1047 window).
        if (prior.replied?.BOOL) {
          log.info({ recipient: input.recipient }, 'auto-reply sent earlier in this run; not sent again');
          return { sent: true };
        }
      }
      const raw = await new MailComposer({
        from: input.recipient,
        to,
        subject: autoReplySubject(input.originalSubject),
        inReplyTo: input.originalMessageId,
        references: input.originalMessageId,
        [input.contentType]: input.message,
        headers: {
          'Auto-Submitted': 'auto-replied',
          'X-Auto-Response-Suppress': 'All',
          Precedence: 'auto_reply',
          [LOOP_HEADER]: config.workerName,
        },
      })
        .compile()
        .build();
      try {
        // A reply to someone in our own domains stays internal (never out through SES).
        if (config.domains.includes(domainOf(to)))
          await transports.internal.sendMail({ envelope: { from: '', to: [to] }, raw });
        else await transports.outbound.send(input.recipient, [to], raw);
      } catch (err) {
        dynamodbRequests.inc({ table, operation: 'DeleteItem' });
        await dynamo.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk } } })).catch(() => undefined);
        const code = (err as { responseCode?: number }).responseCode;
        const msg = `auto-reply from ${input.recipient} to ${input.to} failed: ${(err as Error).message}`;
        if (code !== undefined && code >= 500)
          throw ApplicationFailure.nonRetryable(msg, INBOUND_ERRORS.AutoReplyRefused);
        throw ApplicationFailure.retryable(msg, INBOUND_ERRORS.AutoReplyUnavailable);
      }
      try {
        dynamodbRequests.inc({ table, operation: 'UpdateItem' });
        await dynamo.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { pk: { S: pk } },
            UpdateExpression: 'SET replied = :t',
            ExpressionAttributeValues: { ':t': { BOOL: true } },
          }),
        );
      } catch (err) {
        log.warn(
          { table, err: (err as Error).message },
          'auto-reply sent but not marked: if this step runs again in this run, the reply is sent again',
        );
      }
      autoRepliesSent.inc({ result: 'sent' });
      log.info({ recipient: input.recipient, to: input.to }, 'auto-reply sent');
      return { sent: true };
    },

    /** Out-of-office and forwarding rules of the recipients, in one batch call. */
    async loadRules(input: { recipients: string[] }): Promise<RecipientRules[]> {
      const items = await batchGetAll(
        dynamo,
        config.tables.rules,
        'email_address',
        input.recipients.map((r) => r.toLowerCase()),
      );
      const out: RecipientRules[] = [];
      for (const it of items) {
        const recipient = String(it.email_address).toLowerCase();
        const ooo = it.ooo_active === true || it.ooo_active === 'true';
        // Normalised like every address (lib/mail/address.ts); what is not an address is no forward.
        const forwards = [
          ...new Set(
            stringList(it.forwards)
              .map((f) => normalizeAddress(f))
              .filter((f): f is string => !!f && f !== recipient),
          ),
        ];
        if (!ooo && forwards.length === 0) continue;
        out.push({
          recipient,
          outOfOffice: ooo
            ? {
                message:
                  typeof it.ooo_message === 'string' && it.ooo_message ? it.ooo_message : 'I am out of the office.',
                contentType: it.ooo_content_type === 'html' ? 'html' : 'text',
              }
            : undefined,
          forwards,
          outside: forwards.filter((f) => !config.domains.includes(domainOf(f))),
        });
      }
      return out;
    },

    /**
     * Forwards the stored message. Our own domains go to the internal port (never out
     * through SES and back into S3) with our marker added; outside addresses get the copy
     * in the forwarding recipient's name (lib/mail/forward.ts), unless `outside` says why not.
     */
    async forwardEmail(input: {
      bucket: string;
      key: string;
      recipient: string;
      to: string;
      /** Set when the message must not leave our domains (lib/mail/autoreply.ts outsideForwardDecision). */
      outside?: { skip: string };
      spam?: boolean;
      /** Forward even if the forward log says an earlier run sent it (an operator's explicit re-delivery). */
      redeliver?: boolean;
    }): Promise<{ route: 'internal' | 'outbound'; skipped?: string }> {
      const route = config.domains.includes(domainOf(input.to)) ? 'internal' : 'outbound';
      if (route === 'outbound' && input.outside) return { route, skipped: input.outside.skip };
      // Sent before for this object (this step run again, or a lost completion): not again. A
      // redeliver run forwards over earlier runs' entries, never twice itself.
      const logged = forwardKey(objectRef(input.bucket, input.key), input.recipient, input.to);
      const run = activityContext()?.info.workflowExecution;
      const writer = run ? runRef(run) : undefined;
      // Outside a workflow a redeliver call has no run to recognise its own entries by: it forwards.
      const readLog = !input.redeliver || writer !== undefined;
      if (
        readLog &&
        (await forwardedBefore(dynamo, config.tables.delivery, logged, input.redeliver ? writer : undefined))
      ) {
        log.info({ bucket: input.bucket, key: input.key, route }, 'forward sent before; not sent again');
        return { route };
      }
      const stored = await readRawEmail(s3, input.bucket, input.key);
      const marker = `${config.workerName}; forwarded-for=${input.recipient}`;
      const raw =
        route === 'internal'
          ? internalCopy(stored, { marker, spam: input.spam })
          : outsideForward(stored, { recipient: input.recipient, marker: config.workerName, spam: input.spam });
      try {
        if (route === 'internal')
          await transports.internal.sendMail({ envelope: { from: input.recipient, to: [input.to] }, raw });
        else await transports.outbound.send(input.recipient, [input.to], raw);
      } catch (e) {
        const err = e as SmtpError;
        const code = err.responseCode ?? err.rejectedErrors?.[0]?.responseCode;
        const msg = `forward of s3://${input.bucket}/${input.key} from ${input.recipient} to ${input.to} (${route}) failed: ${err.response ?? err.rejectedErrors?.[0]?.response ?? err.message}`;
        if (code !== undefined && code >= 500)
          throw ApplicationFailure.nonRetryable(msg, INBOUND_ERRORS.ForwardRefused);
        throw ApplicationFailure.retryable(msg, INBOUND_ERRORS.ForwardUnavailable);
      }
      await recordForwarded(dynamo, config.tables.delivery, logged, writer);
      return { route };
    },
  };
}
