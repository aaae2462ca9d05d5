// The lookup steps: the recipients' blocklists and the outbound message a bounce refers to,
// each one batch call for all recipients (lib/aws/dynamodb.ts).
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Config } from '../../lib/config';
import { batchGetAll, stringList } from '../../lib/aws/dynamodb';
import { sesMessageIdCandidates } from '../../lib/mail/bounce';
import { findBlockingPattern } from '../../lib/mail/blocklist';

export interface LookupDeps {
  dynamo: DynamoDBClient;
  config: Config;
}

export function createLookupActivities({ dynamo, config }: LookupDeps) {
  return {
    /** Which recipients block the sender (From or envelope sender), and by which pattern. */
    async checkBlocklist(input: { senders: string[]; recipients: string[] }): Promise<{ recipient: string; pattern: string; sender: string }[]> {
      const items = await batchGetAll(dynamo, config.tables.blocked, 'email_address', input.recipients.map((r) => r.toLowerCase()));
      const byRecipient = new Map(items.map((it) => [String(it.email_address).toLowerCase(), stringList(it.blocked_patterns)]));
      const blocked: { recipient: string; pattern: string; sender: string }[] = [];
      for (const recipient of input.recipients) {
        const patterns = byRecipient.get(recipient.toLowerCase()) ?? [];
        for (const sender of input.senders) {
          const pattern = findBlockingPattern(sender, patterns);
          if (pattern) {
            blocked.push({ recipient, pattern, sender });
            break;
          }
        }
      }
      return blocked;
    },

    /** The original outbound message a bounce refers to, matched by either Message-ID form. */
    async findOutboundMessage(input: { messageIds: string[] }): Promise<{ messageId: string; source?: string; subject?: string; destinations: string[] } | null> {
      const candidates = input.messageIds.flatMap(sesMessageIdCandidates);
      if (candidates.length === 0) return null;
      const items = await batchGetAll(dynamo, config.tables.messages, 'MessageId', candidates);
      // Prefer the candidate order (the bare SES id first).
      for (const c of candidates) {
        const it = items.find((i) => i.MessageId === c);
        if (it) {
          return {
            messageId: c,
            source: typeof it.source === 'string' ? it.source : undefined,
            subject: typeof it.subject === 'string' ? it.subject : undefined,
            destinations: stringList(it.destinations),
          };
        }
      }
      return null;
    },
  };
}
