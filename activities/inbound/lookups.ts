// The lookup steps: the recipients' blocklists and the outbound message a bounce refers to,
// each one batch call for all recipients (lib/aws/dynamodb.ts).
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Config } from '../../lib/config';
import { batchGetAll, stringList } from '../../lib/aws/dynamodb';
import { sesMessageIdCandidates } from '../../lib/mail/bounce';
import { findBlockingPattern } from '../../lib/mail/blocklist';
import type { OutboundMatch, RecipientRules } from '../../contracts/inbound';

export interface LookupDeps {
  dynamo: DynamoDBClient;
  config: Config;
}

export function createLookupActivities({ dynamo, config }: LookupDeps) {
  return {
    /** Which recipients block the sender (From or envelope sender), and by which pattern. */
    async checkBlocklist(input: {
      senders: string[];
      recipients: string[];
    }): Promise<{ recipient: string; pattern: string; sender: string }[]> {
      const items = await batchGetAll(
        dynamo,
        config.tables.blocked,
        'email_address',
        input.recipients.map((r) => r.toLowerCase()),
      );
      const byRecipient = new Map(
        items.map((it) => [String(it.email_address).toLowerCase(), stringList(it.blocked_patterns)]),
      );
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
    async findOutboundMessage(input: { messageIds: string[] }): Promise<OutboundMatch | null> {
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

type Blocked = { recipient: string; pattern: string; sender: string }[];

/**
 * The fast path's one lookup per email: the blocklist and the rules of every recipient, the two
 * batch reads at once (one local activity, one marker in history, instead of two), built from
 * the lookup and rules steps' own activities. A blocklist that cannot be read fails it (and is
 * retried); rules that cannot be read are left out with the reason, and the workflow loads them
 * on their own after delivery (as before), so a broken rules table never holds up delivery.
 */
export function createRecipientLookupActivities(steps: {
  checkBlocklist(input: { senders: string[]; recipients: string[] }): Promise<Blocked>;
  loadRules(input: { recipients: string[] }): Promise<RecipientRules[]>;
}) {
  return {
    async lookupRecipients(input: {
      senders: string[];
      recipients: string[];
    }): Promise<{ blocked: Blocked; rules?: RecipientRules[]; rulesError?: string }> {
      // Both settle before anything is thrown: no read left running after the activity ended.
      const [blocked, rules] = await Promise.allSettled([
        input.senders.length ? steps.checkBlocklist(input) : [],
        steps.loadRules({ recipients: input.recipients }),
      ]);
      if (blocked.status === 'rejected') throw blocked.reason;
      return rules.status === 'rejected'
        ? { blocked: blocked.value, rulesError: (rules.reason as Error).message }
        : { blocked: blocked.value, rules: rules.value };
    },
  };
}
