// SES "Received" notifications (optionally wrapped in an SNS envelope), as delivered to
// the per-domain SQS queues and as an operator may paste them into the one-object
// starter. They carry what an S3 object cannot: the envelope recipients (Bcc included),
// and SES's receipt verdicts (spam, virus, SPF, DKIM, DMARC).
import type { InboundRef } from '../../contracts/inbound';
import type { SesVerdicts } from '../../contracts/inbound';
import { z } from 'zod';
import { verdictsFromReceipt } from './ses-verdicts';

export type { InboundRef };

export class NotSesNotificationError extends Error {
  override name = 'NotSesNotificationError';
}

const list = z.array(z.string({ error: 'must be a list of address strings' }), {
  error: 'must be a list of address strings',
});

/**
 * The fields of a "Received" notification that mailroom reads, with the types SES sends. A
 * notification that deviates (`recipients` a string or an object, a numeric key) is refused
 * here with the path and reason, before any field is used: the bridge dead-letters it at once
 * instead of failing on it at every receive. Other fields (the verdicts, headers) pass through.
 */
const receivedNotification = z.looseObject({
  mail: z
    .looseObject({
      messageId: z.string().optional(),
      source: z.string().optional(),
      destination: list.optional(),
    })
    .optional(),
  receipt: z.looseObject(
    {
      recipients: list.optional(),
      action: z.looseObject(
        {
          type: z.literal('S3', { error: 'is not an S3 action' }),
          bucketName: z.string({ error: 'is not an S3 action with a bucketName' }).min(1, 'is empty'),
          objectKey: z.string().min(1, 'is empty').optional(),
          objectKeyPrefix: z.string().optional(),
        },
        { error: 'is not an S3 action with a bucketName' },
      ),
    },
    { error: 'is missing: not an S3 action with a bucketName' },
  ),
});

export function parseSesNotification(text: string): {
  bucket: string;
  key: string;
  recipients: string[];
  messageId?: string;
  source?: string;
  verdicts?: SesVerdicts;
} {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new NotSesNotificationError(`not JSON: ${(e as Error).message}`);
  }
  // SNS wraps the SES JSON as a string in "Message".
  const sns = doc as { Type?: string; Message?: unknown };
  if (sns && typeof sns === 'object' && typeof sns.Message === 'string') {
    try {
      doc = JSON.parse(sns.Message);
    } catch (e) {
      throw new NotSesNotificationError(`SNS Message is not JSON: ${(e as Error).message}`);
    }
  }
  const head = doc as { notificationType?: unknown; eventType?: unknown } | null;
  const kind = head?.notificationType ?? head?.eventType;
  if (kind !== 'Received')
    throw new NotSesNotificationError(`notificationType is ${JSON.stringify(kind ?? null)}, expected "Received"`);
  const parsed = receivedNotification.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new NotSesNotificationError(`${issue.path.join('.') || 'notification'}: ${issue.message}`);
  }
  const n = parsed.data;
  const action = n.receipt.action;
  // SES names the object by the message id under the rule's prefix when objectKey is absent.
  const key =
    action.objectKey ?? (n.mail?.messageId ? `${action.objectKeyPrefix ?? ''}${n.mail.messageId}` : undefined);
  if (!key) throw new NotSesNotificationError('no objectKey and no mail.messageId to derive it from');
  const recipients = n.receipt.recipients ?? n.mail?.destination ?? [];
  const verdicts = verdictsFromReceipt(n.receipt);
  return {
    bucket: action.bucketName,
    key,
    recipients,
    messageId: n.mail?.messageId,
    source: n.mail?.source,
    ...(verdicts ? { verdicts } : {}),
  };
}
