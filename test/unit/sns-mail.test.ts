import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseHeaderBlock } from '../../lib/mail/headers';
import { summarizeEmail } from '../../lib/mail/summarize';
import { LINE_ENDINGS, withLineEndings } from '../support/line-endings';
import { SNS_FIXTURES, snsFixture } from '../support/ses-notification-fixtures';
import { isSnsMail, namesSesNotification, parseSesFeedback } from '../../lib/mail/sns-mail';

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

// --- As such mail really arrives: long lines broken by relays, escaped envelopes, QP ---------

/** sendmail: a line over 990 characters is cut after 989, "!" appended, the rest on a line starting with a space. */
const sendmail = (at: number) => (s: string, eol: string) => `${s.slice(0, at)}!${eol} ${s.slice(at)}`;
/** Postfix (smtp_line_length_limit): a line break and a space inserted. */
const postfix = (at: number) => (s: string, eol: string) => `${s.slice(0, at)}${eol} ${s.slice(at)}`;
/** A relay that hard-breaks with a bare line break. */
const hard = (at: number) => (s: string, eol: string) => `${s.slice(0, at)}${eol}${s.slice(at)}`;

/** Quoted-printable as an encoder writes it: =XX for "=" and 8-bit bytes, soft breaks keeping lines at 76. */
function quotedPrintable(text: string): string {
  let out = '';
  let line = 0;
  for (const byte of Buffer.from(text, 'utf8')) {
    const enc =
      byte === 0x3d || byte > 0x7e ? `=${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
    if (line + enc.length > 75) {
      out += '=\r\n';
      line = 0;
    }
    out += enc;
    line += enc.length;
  }
  return out;
}

const richBounce = {
  ...bounce,
  mail: {
    ...bounce.mail,
    commonHeaders: { subject: 'Offer = "50% off" \\ ünïcode — ok', from: ['"Doe, John" <john@example.com>'] },
  },
};
const expected = parseSesFeedback(JSON.stringify(richBounce))!;

test('a fold at any position of the JSON, in any relay style and line ending, reads as the unbroken JSON', () => {
  const plain = JSON.stringify(richBounce);
  const envelope = JSON.stringify({ Type: 'Notification', MessageId: 'm', TopicArn: 'arn', Message: plain });
  for (const json of [plain, envelope]) {
    for (let at = 1; at < json.length; at++) {
      for (const [name, fold] of [
        ['sendmail', sendmail(at)],
        ['postfix', postfix(at)],
        ['hard', hard(at)],
      ] as const) {
        // A bare break just before a space the text holds reads as Postfix's break + space:
        // that space is lost (a display string's, never in an id or an address), so not compared.
        if (name === 'hard' && json[at] === ' ') continue;
        for (const eol of ['\r\n', '\n', '\r']) {
          const text = fold(json, eol) + footer;
          assert.deepEqual(parseSesFeedback(text), expected, `${name} fold at ${at} (${JSON.stringify(eol)})`);
        }
      }
    }
  }
});

test('many folds: a long envelope broken every 990 characters by sendmail, or every 998 by Postfix', () => {
  const long = {
    ...richBounce,
    mail: {
      ...richBounce.mail,
      headers: Array.from({ length: 60 }, (_, i) => ({ name: `X-Header-${i}`, value: `value "${i}" `.repeat(8) })),
    },
  };
  const envelope = JSON.stringify({
    Type: 'Notification',
    MessageId: 'm',
    TopicArn: 'arn',
    Message: JSON.stringify(long),
  });
  assert.ok(envelope.length > 8000);
  const sendmailed = envelope.match(/.{1,989}/g)!.join('!\r\n ');
  const postfixed = envelope.match(/.{1,998}/g)!.join('\r\n ');
  assert.deepEqual(parseSesFeedback(sendmailed + footer), expected);
  assert.deepEqual(parseSesFeedback(postfixed + footer), expected);
});

test('quoted-printable nobody decoded (soft breaks, =3D and 8-bit escapes) is decoded and read', () => {
  const envelope = JSON.stringify({
    Type: 'Notification',
    Message: JSON.stringify(richBounce),
    UnsubscribeURL: 'https://x/?a=b',
  });
  const qp = quotedPrintable(envelope + footer);
  assert.match(qp, /=\r\n/);
  assert.match(qp, /=3D/);
  assert.deepEqual(parseSesFeedback(qp), expected);
});

test('the one ambiguity: a Postfix break right after a "!" in a string reads as sendmail\'s marker, the "!" dropped', () => {
  const json = JSON.stringify({ ...bounce, mail: { ...bounce.mail, commonHeaders: { subject: 'Hello!' } } });
  const at = json.indexOf('!') + 1;
  assert.equal(parseSesFeedback(postfix(at)(json, '\r\n'))?.subject, 'Hello');
  assert.equal(parseSesFeedback(sendmail(at)(json, '\r\n'))?.subject, 'Hello!');
});

test('a body names an SES notification plainly, escaped in an envelope, or with a break inside the name', () => {
  assert.equal(namesSesNotification('{"notificationType":"Bounce"}'), true);
  assert.equal(namesSesNotification('{"Type":"Notification","Message":"{\\"eventType\\":\\"Complaint\\"}"}'), true);
  assert.equal(namesSesNotification('{"notificationTy!\r\n pe":"Bounce"}'), true);
  assert.equal(namesSesNotification('{"notificationTy=\r\npe":"Bounce"}'), true);
  assert.equal(namesSesNotification('{\\"ev=\r\nentType\\":\\"Bounce\\"}'), true);
  assert.equal(namesSesNotification('{"n\r\n otificationType":"Bounce"}'), true);
  assert.equal(namesSesNotification('We changed the notificationType of your account.'), false);
});

// --- The fixtures: SNS mail written from the SES documentation's examples ---------------------

test('the fixtures are mail as relays deliver it: lines broken, or quoted-printable', () => {
  for (const f of SNS_FIXTURES) {
    const raw = readFileSync(snsFixture(f.file), 'utf8');
    const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    assert.ok(
      body.split('\r\n').some((l) => l.length >= 989) || /=\r\n/.test(body),
      `${f.file}: broken at a relay's limit, or quoted-printable`,
    );
    assert.ok(
      body.split('\r\n').every((l) => l.length <= 998),
      `${f.file}: no line over 998`,
    );
    // The raw body read directly (quoted-printable decoded when nobody else did).
    const feedback = parseSesFeedback(body);
    assert.deepEqual(
      feedback && { ...feedback, recipients: feedback.recipients.map((r) => r.recipient) },
      { type: f.type, messageId: f.messageId, recipients: f.recipients, subject: f.subject, detail: f.detail },
      f.file,
    );
  }
});

test('each fixture, in every line-ending style, is an SES report naming our message and who bounced or complained', async () => {
  for (const f of SNS_FIXTURES) {
    for (const style of LINE_ENDINGS) {
      const raw = withLineEndings(readFileSync(snsFixture(f.file)), style, 7);
      const r = await summarizeEmail(raw, { domain: 'example.com', bucket: 'b', key: f.file });
      assert.equal(r.kind, 'email', `${f.file} (${style})`);
      if (r.kind !== 'email') continue;
      const b = r.summary.bounce;
      assert.deepEqual(
        b && { ...b, recipients: b.recipients.map((x) => x.recipient) },
        {
          fromSes: true,
          recipients: f.recipients,
          originalMessageIds: [f.messageId],
          kind: f.type === 'Complaint' ? 'complaint' : 'bounce',
          sns: true,
        },
        `${f.file} (${style})`,
      );
      assert.equal(r.summary.automatic?.rule, 'ses-notification', `${f.file} (${style})`);
      assert.deepEqual(r.summary.recipients, ['alice@example.com']);
    }
  }
});
