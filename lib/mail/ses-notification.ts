// SES "Received" notifications (optionally wrapped in an SNS envelope), as delivered to
// the per-domain SQS queues and as an operator may paste them into the one-object
// starter. They carry what an S3 object cannot: the envelope recipients (Bcc included),
// and SES's receipt verdicts (spam, virus, SPF, DKIM, DMARC).
import type { InboundRef } from '../../contracts/inbound';
import type { SesVerdicts } from '../../contracts/inbound';
import { verdictsFromReceipt } from './ses-verdicts';

export type { InboundRef };

export class NotSesNotificationError extends Error {
  override name = 'NotSesNotificationError';
}

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
  const n = doc as {
    notificationType?: string;
    eventType?: string;
    mail?: { messageId?: string; destination?: string[]; source?: string };
    receipt?: {
      recipients?: string[];
      action?: { type?: string; bucketName?: string; objectKey?: string; objectKeyPrefix?: string };
    };
  };
  const kind = n?.notificationType ?? n?.eventType;
  if (kind !== 'Received')
    throw new NotSesNotificationError(`notificationType is ${JSON.stringify(kind ?? null)}, expected "Received"`);
  const action = n.receipt?.action;
  if (action?.type !== 'S3' || !action.bucketName)
    throw new NotSesNotificationError('receipt.action is not an S3 action with a bucketName');
  // SES names the object by the message id under the rule's prefix when objectKey is absent.
  const key =
    action.objectKey ?? (n.mail?.messageId ? `${action.objectKeyPrefix ?? ''}${n.mail.messageId}` : undefined);
  if (!key) throw new NotSesNotificationError('no objectKey and no mail.messageId to derive it from');
  const recipients = (n.receipt?.recipients ?? n.mail?.destination ?? []).filter(
    (r): r is string => typeof r === 'string',
  );
  const verdicts = verdictsFromReceipt(n.receipt);
  return {
    bucket: action.bucketName,
    key,
    recipients,
    messageId: n.mail?.messageId,
    source: typeof n.mail?.source === 'string' ? n.mail.source : undefined,
    ...(verdicts ? { verdicts } : {}),
  };
}
