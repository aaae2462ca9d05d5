// Raw messages for the demo and the end-to-end tests, written as SES stores them in S3
// (Return-Path and Received added by SES on top of the sender's headers).
export interface DemoMail {
  from: string;
  to: string[];
  cc?: string[];
  subject: string;
  body?: string;
  headers?: Record<string, string>;
  messageId?: string;
}

let counter = 0;

export function rawMail(m: DemoMail): Buffer {
  const id = m.messageId ?? `<demo-${Date.now()}-${++counter}@${m.from.split('@')[1]}>`;
  const lines = [
    `Return-Path: <${m.from}>`,
    `Received: from mail.${m.from.split('@')[1]} by inbound-smtp.us-east-1.amazonaws.com with SMTP id ${counter}${Date.now()}; ${new Date().toUTCString()}`,
    `From: ${m.from}`,
    `To: ${m.to.join(', ')}`,
    ...(m.cc?.length ? [`Cc: ${m.cc.join(', ')}`] : []),
    `Subject: ${m.subject}`,
    `Message-ID: ${id}`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...Object.entries(m.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    '',
    m.body ?? `Hello,\r\nthis is "${m.subject}".\r\n`,
  ];
  return Buffer.from(lines.join('\r\n'));
}

/**
 * A bounce as SES sends it back for mail we sent: an RFC 3464 report from
 * MAILER-DAEMON@amazonses.com whose returned headers carry the rewritten Message-ID
 * `<sesId@us-east-1.amazonses.com>`.
 */
export function sesBounce(opts: {
  to: string;
  sesMessageId: string;
  bouncedRecipient: string;
  originalSubject: string;
  region?: string;
}): Buffer {
  const region = opts.region ?? 'us-east-1';
  const b = 'bounce-boundary-1';
  return Buffer.from(
    [
      'Return-Path: <>',
      `Received: from a8-1.smtp-out.amazonses.com by inbound-smtp.${region}.amazonaws.com with SMTP id x1; ${new Date().toUTCString()}`,
      `From: MAILER-DAEMON@amazonses.com`,
      `To: ${opts.to}`,
      'Subject: Delivery Status Notification (Failure)',
      `Message-ID: <bounce-${opts.sesMessageId}@${region}.amazonses.com>`,
      `Date: ${new Date().toUTCString()}`,
      'MIME-Version: 1.0',
      `Content-Type: multipart/report; report-type=delivery-status; boundary="${b}"`,
      '',
      `--${b}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      'An error occurred while trying to deliver the mail to the following recipients:',
      opts.bouncedRecipient,
      '',
      `--${b}`,
      'Content-Type: message/delivery-status',
      '',
      `Reporting-MTA: dns; a8-1.smtp-out.amazonses.com`,
      '',
      `Final-Recipient: rfc822; ${opts.bouncedRecipient}`,
      'Action: failed',
      'Status: 5.1.1',
      `Diagnostic-Code: smtp; 550 5.1.1 <${opts.bouncedRecipient}>: Recipient address rejected: User unknown`,
      '',
      `--${b}`,
      'Content-Type: text/rfc822-headers',
      '',
      `From: ${opts.to}`,
      `To: ${opts.bouncedRecipient}`,
      `Subject: ${opts.originalSubject}`,
      `Message-ID: <${opts.sesMessageId}@${region}.amazonses.com>`,
      '',
      `--${b}--`,
      '',
    ].join('\r\n'),
  );
}

/**
 * A message as SES stores it when it received it: SES's own block on top (Return-Path, its
 * Received line, the X-SES verdicts, Received-SPF, Authentication-Results: amazonses.com).
 */
export function sesStored(
  m: DemoMail,
  v: { spam?: string; virus?: string; spf?: string; dkim?: string; dmarc?: string } = {},
): Buffer {
  const own = rawMail(m).toString('utf8').split('\r\n').slice(2); // without rawMail's Return-Path and Received
  const domain = m.from.split('@')[1];
  const auth = [
    v.spf &&
      `spf=${v.spf} (spfCheck: domain of ${domain} designates 192.0.2.10 as permitted sender) client-ip=192.0.2.10; envelope-from=${m.from}; helo=mail.${domain};`,
    v.dkim && ` dkim=${v.dkim} header.i=@${domain};`,
    v.dmarc && ` dmarc=${v.dmarc} header.from=${domain};`,
  ].filter(Boolean);
  return Buffer.from(
    [
      `Return-Path: <${m.from}>`,
      `Received: from mail.${domain} (mail.${domain} [192.0.2.10])`,
      ` by inbound-smtp.us-east-1.amazonaws.com with SMTP id ses${++counter}`,
      ` for ${m.to[0]}; ${new Date().toUTCString()}`,
      ...(v.spam ? [`X-SES-Spam-Verdict: ${v.spam}`] : []),
      ...(v.virus ? [`X-SES-Virus-Verdict: ${v.virus}`] : []),
      ...(v.spf
        ? [
            `Received-SPF: ${v.spf.toLowerCase()} (spfCheck: domain of ${domain} designates 192.0.2.10 as permitted sender) client-ip=192.0.2.10;`,
          ]
        : []),
      ...(auth.length ? ['Authentication-Results: amazonses.com;', ...auth.map((a) => ` ${a!.trim()}`)] : []),
      'X-SES-RECEIPT: AEFBQUFBQUFBQUFBQUFBQUFBQUFB',
      ...own,
    ].join('\r\n'),
  );
}

/**
 * An SES Bounce, Complaint or Delivery notification as an SNS email subscription delivers
 * it: from no-reply@sns.amazonaws.com, the SES JSON as the body, then SNS's footer.
 */
export function snsNotificationMail(opts: {
  to: string;
  type: 'Bounce' | 'Complaint' | 'Delivery';
  sesMessageId: string;
  recipients: string[];
  originalSubject?: string;
  jsonEnvelope?: boolean;
}): Buffer {
  const mail = {
    timestamp: new Date().toISOString(),
    source: opts.to,
    messageId: opts.sesMessageId,
    destination: opts.recipients,
    ...(opts.originalSubject
      ? { commonHeaders: { subject: opts.originalSubject, from: [opts.to], to: opts.recipients } }
      : {}),
  };
  const event =
    opts.type === 'Bounce'
      ? {
          notificationType: 'Bounce',
          bounce: {
            bounceType: 'Permanent',
            bounceSubType: 'General',
            bouncedRecipients: opts.recipients.map((r) => ({
              emailAddress: r,
              action: 'failed',
              status: '5.1.1',
              diagnosticCode: `smtp; 550 5.1.1 <${r}>: user unknown`,
            })),
            timestamp: mail.timestamp,
            feedbackId: 'fb-1',
          },
          mail,
        }
      : opts.type === 'Complaint'
        ? {
            notificationType: 'Complaint',
            complaint: {
              complainedRecipients: opts.recipients.map((r) => ({ emailAddress: r })),
              complaintFeedbackType: 'abuse',
              timestamp: mail.timestamp,
              feedbackId: 'fb-2',
            },
            mail,
          }
        : {
            notificationType: 'Delivery',
            delivery: { timestamp: mail.timestamp, recipients: opts.recipients, smtpResponse: '250 ok' },
            mail,
          };
  const json = opts.jsonEnvelope
    ? JSON.stringify({
        Type: 'Notification',
        MessageId: `sns-${++counter}`,
        TopicArn: 'arn:aws:sns:us-east-1:123456789012:ses-feedback',
        Message: JSON.stringify(event),
        Timestamp: mail.timestamp,
      })
    : JSON.stringify(event);
  return Buffer.from(
    [
      'Return-Path: <0100018c00000000-00000000-0000-0000-0000-000000000000-000000@amazonses.com>',
      `Received: from a8-30.smtp-out.amazonses.com by inbound-smtp.us-east-1.amazonaws.com with SMTP id sns${counter}; ${new Date().toUTCString()}`,
      'From: AWS Notifications <no-reply@sns.amazonaws.com>',
      `To: ${opts.to}`,
      'Subject: AWS Notification Message',
      `Message-ID: <sns-${Date.now()}-${++counter}@email.amazonses.com>`,
      `Date: ${new Date().toUTCString()}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=UTF-8',
      'Content-Transfer-Encoding: 7bit',
      '',
      json,
      '',
      '--',
      'If you wish to stop receiving notifications from this topic, please click or visit the link below to unsubscribe:',
      'https://sns.us-east-1.amazonaws.com/unsubscribe.html?SubscriptionArn=arn:aws:sns:us-east-1:123456789012:ses-feedback:x',
      '',
    ].join('\r\n'),
  );
}

/** A complaint as SES forwards it by email: an RFC 5965 feedback report with the original attached. */
export function sesComplaint(opts: {
  to: string;
  sesMessageId: string;
  complainedRecipient?: string;
  originalSubject: string;
  region?: string;
}): Buffer {
  const b = 'arf-boundary-1';
  const id = `<${opts.sesMessageId}@${opts.region ?? 'email'}.amazonses.com>`;
  return Buffer.from(
    [
      'Return-Path: <>',
      `Received: from a8-31.smtp-out.amazonses.com by inbound-smtp.us-east-1.amazonaws.com with SMTP id arf${++counter}; ${new Date().toUTCString()}`,
      'From: complaints@email-abuse.amazonses.com',
      `To: ${opts.to}`,
      'Subject: Complaint about your message',
      `Message-ID: <complaint-${Date.now()}-${counter}@email-abuse.amazonses.com>`,
      `Date: ${new Date().toUTCString()}`,
      'MIME-Version: 1.0',
      `Content-Type: multipart/report; report-type=feedback-report; boundary="${b}"`,
      '',
      `--${b}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      'This is an email abuse report for an email message received from your account.',
      '',
      `--${b}`,
      'Content-Type: message/feedback-report',
      '',
      'Feedback-Type: abuse',
      'User-Agent: Amazon SES Feedback Loop',
      'Version: 1',
      ...(opts.complainedRecipient ? [`Original-Rcpt-To: ${opts.complainedRecipient}`] : []),
      `Arrival-Date: ${new Date().toUTCString()}`,
      '',
      `--${b}`,
      'Content-Type: message/rfc822',
      '',
      `From: ${opts.to}`,
      `To: ${opts.complainedRecipient ?? 'undisclosed-recipients:;'}`,
      `Subject: ${opts.originalSubject}`,
      `Message-ID: ${id}`,
      '',
      'Our offer.',
      '',
      `--${b}--`,
      '',
    ].join('\r\n'),
  );
}
