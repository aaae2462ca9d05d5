import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotSesNotificationError, parseSesNotification } from '../../lib/mail/ses-notification';
import { inboundWorkflowId } from '../../contracts/inbound';
import { inboundSummary } from '../../starters/start-inbound';

const ses = {
  notificationType: 'Received',
  mail: { messageId: 'o3vq1', source: 'alice@sender.example', destination: ['bob@example.com'] },
  receipt: {
    recipients: ['bob@example.com', 'hidden@example.com'],
    action: { type: 'S3', bucketName: 'example-com-emails', objectKeyPrefix: 'in/' },
  },
};

test('bare and SNS-wrapped notifications; the key defaults to prefix + message id', () => {
  for (const text of [JSON.stringify(ses), JSON.stringify({ Type: 'Notification', Message: JSON.stringify(ses) })]) {
    assert.deepEqual(parseSesNotification(text), {
      bucket: 'example-com-emails',
      key: 'in/o3vq1',
      recipients: ['bob@example.com', 'hidden@example.com'],
      messageId: 'o3vq1',
      source: 'alice@sender.example',
    });
  }
});

test('what is not a Received notification with an S3 action is refused with the reason', () => {
  assert.throws(() => parseSesNotification('not json'), NotSesNotificationError);
  assert.throws(
    () => parseSesNotification(JSON.stringify({ ...ses, notificationType: 'Bounce' })),
    /expected "Received"/,
  );
  assert.throws(
    () => parseSesNotification(JSON.stringify({ ...ses, receipt: { action: { type: 'Lambda' } } })),
    /not an S3 action/,
  );
});

test('workflow id and summary', () => {
  assert.equal(inboundWorkflowId('b', 'k/1'), 'inbound/b/k/1');
  assert.equal(
    inboundSummary(
      { domain: 'example.com', bucket: 'b', key: 'k', envelopeRecipients: ['a@example.com', 'c@example.com'] },
      { sender: 'x@y.example', size: 2048 },
    ),
    'Inbound email from x@y.example, to 2 recipient(s), 2 KB: s3://b/k',
  );
  assert.equal(
    inboundSummary({ domain: 'example.com', bucket: 'b', key: 'k', redrive: true }),
    'Re-drive of inbound email s3://b/k',
  );
});

test('receipt verdicts travel with the notification (they win over the stored header)', () => {
  const withVerdicts = {
    ...ses,
    receipt: {
      ...ses.receipt,
      spamVerdict: { status: 'PASS' },
      virusVerdict: { status: 'FAIL' },
      spfVerdict: { status: 'GRAY' },
      dkimVerdict: { status: 'PASS' },
      dmarcVerdict: { status: 'PROCESSING_FAILED' },
      dmarcPolicy: 'none',
    },
  };
  const n = parseSesNotification(JSON.stringify({ Type: 'Notification', Message: JSON.stringify(withVerdicts) }));
  assert.deepEqual(n.verdicts, {
    spam: 'PASS',
    virus: 'FAIL',
    spf: 'GRAY',
    dkim: 'PASS',
    dmarc: 'PROCESSING_FAILED',
    source: 'notification',
  });
  assert.equal(
    parseSesNotification(JSON.stringify({ ...ses, receipt: { ...ses.receipt, spamVerdict: { status: 'nonsense' } } }))
      .verdicts,
    undefined,
  );
});
