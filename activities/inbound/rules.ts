// Out-of-office replies (RFC 3834). A reply goes out at most once per sender per
// recipient per AUTOREPLY_INTERVAL_HOURS, remembered in DynamoDB so that every worker,
// and every retry, sees the same memory: the claim is a conditional write made before
// sending, and released again if sending fails.
import { ConditionalCheckFailedException, DeleteItemCommand, type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ApplicationFailure } from '@temporalio/activity';
import MailComposer from 'nodemailer/lib/mail-composer';
import { autoReplySubject } from '../lib/autoreply';
import type { Config } from '../lib/config';
import { domainOf, normalizeAddress } from '../lib/address';
import { componentLogger } from '../lib/logger';
import { autoRepliesSent, dynamodbRequests } from '../lib/metrics';
import { LOOP_HEADER } from '../lib/status';
import type { Transports } from './delivery';

const log = componentLogger('rules');

export interface RulesDeps {
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

export function createRulesActivities({ dynamo, config, transports }: RulesDeps) {
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
      try {
        dynamodbRequests.inc({ table, operation: 'PutItem' });
        await dynamo.send(
          new PutItemCommand({
            TableName: table,
            Item: { pk: { S: pk }, sent_at: { N: String(now) }, expires_at: { N: String(now + intervalSeconds) } },
            ConditionExpression: 'attribute_not_exists(pk) OR sent_at < :cutoff',
            ExpressionAttributeValues: { ':cutoff': { N: String(now - intervalSeconds) } },
          }),
        );
      } catch (err) {
        if (err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException') {
          autoRepliesSent.inc({ result: 'duplicate' });
          return { sent: false, reason: `already replied to ${input.to} within ${config.autoreplyIntervalHours}h` };
        }
        throw err;
      }
      const raw = await new MailComposer({
        from: input.recipient,
        to,
        subject: autoReplySubject(input.originalSubject),
        inReplyTo: input.originalMessageId,
        references: input.originalMessageId,
        [input.contentType]: input.message,
        headers: { 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'All', Precedence: 'auto_reply', [LOOP_HEADER]: config.workerName },
      })
        .compile()
        .build();
      try {
        // A reply to someone in our own domains stays internal (never out through SES).
        if (config.domains.includes(domainOf(to))) await transports.internal.sendMail({ envelope: { from: '', to: [to] }, raw });
        else await transports.outbound.send(input.recipient, [to], raw);
      } catch (err) {
        dynamodbRequests.inc({ table, operation: 'DeleteItem' });
        await dynamo.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk } } })).catch(() => undefined);
        const code = (err as { responseCode?: number }).responseCode;
        const msg = `auto-reply from ${input.recipient} to ${input.to} failed: ${(err as Error).message}`;
        if (code !== undefined && code >= 500) throw ApplicationFailure.nonRetryable(msg, 'AutoReplyRefused');
        throw ApplicationFailure.retryable(msg, 'AutoReplyUnavailable');
      }
      autoRepliesSent.inc({ result: 'sent' });
      log.info({ recipient: input.recipient, to: input.to }, 'auto-reply sent');
      return { sent: true };
    },
  };
}
