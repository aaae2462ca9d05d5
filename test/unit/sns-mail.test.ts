import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHeaderBlock } from '../../lib/mail/headers';
import { isSnsMail, parseSesFeedback } from '../../lib/mail/sns-mail';

const bounce = {
  notificationType: 'Bounce',
  bounce: {
    bounceType: 'Permanent',
    bounceSubType: 'General',
    bouncedRecipients: [
      {
        emailAddress: 'Jane@far.example',
        status: '5.1.1',
        action: 'failed',
        diagnosticCode: 'smtp; 550 5.1.1 <jane@far.example>... User unknown',
      },
    ],
    timestamp: '2016-01-27T14:59:38.237Z',
    feedbackId: '00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000',
  },
  mail: {
    timestamp: '2016-01-27T14:59:38.237Z',
    source: 'john@example.com',
    messageId: '00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000',
    destination: ['jane@far.example'],
    commonHeaders: { subject: 'Hello' },
  },
};
const complaint = {
  eventType: 'Complaint',
  complaint: {
    complainedRecipients: [{ emailAddress: 'richard@far.example' }],
    complaintFeedbackType: 'abuse',
    timestamp: '2016-01-27T14:59:38.237Z',
  },
  mail: {
    messageId: '0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000',
    destination: ['richard@far.example'],
  },
};
const footer =
  '\n\n--\nIf you wish to stop receiving notifications from this topic, please click or visit the link below to unsubscribe:\nhttps://sns.us-east-1.amazonaws.com/unsubscribe.html?SubscriptionArn=arn:aws:sns:us-east-1:1:t:x\n';

test('the "email" protocol: SES JSON then SNS footer', () => {
  assert.deepEqual(parseSesFeedback(JSON.stringify(bounce, null, 2) + footer), {
    type: 'Bounce',
    messageId: '00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000',
    recipients: [
      {
        recipient: 'jane@far.example',
        action: 'failed',
        status: '5.1.1',
        diagnostic: 'smtp; 550 5.1.1 <jane@far.example>... User unknown',
      },
    ],
    subject: 'Hello',
    detail: 'Permanent/General',
  });
});

test('the "email-json" protocol: SNS envelope with the SES JSON in Message; event publishing names', () => {
  const envelope = JSON.stringify({
    Type: 'Notification',
    MessageId: 'x',
    TopicArn: 'arn',
    Message: JSON.stringify(complaint),
    Timestamp: 't',
  });
  assert.deepEqual(parseSesFeedback(envelope), {
    type: 'Complaint',
    messageId: complaint.mail.messageId,
    recipients: [{ recipient: 'richard@far.example', action: 'complained', diagnostic: 'abuse' }],
    subject: undefined,
    detail: 'abuse',
  });
  const delivery = {
    notificationType: 'Delivery',
    delivery: { recipients: ['a@far.example'] },
    mail: { messageId: 'm1' },
  };
  assert.equal(parseSesFeedback(`Some text {not json} ${JSON.stringify(delivery)}`)?.type, 'Delivery');
});

test('not a notification: no JSON, or JSON without a mail object', () => {
  assert.equal(parseSesFeedback('Hello, see you {tomorrow}.'), undefined);
  assert.equal(parseSesFeedback(JSON.stringify({ notificationType: 'Bounce' })), undefined);
  assert.equal(parseSesFeedback('{"unterminated": '), undefined);
});

test('only SNS itself is read as the sender of a notification', () => {
  assert.equal(isSnsMail(parseHeaderBlock('From: AWS Notifications <no-reply@sns.amazonaws.com>\r\n\r\n')), true);
  assert.equal(isSnsMail(parseHeaderBlock('From: no-reply@sns.amazonaws.com.evil.example\r\n\r\n')), false);
});
