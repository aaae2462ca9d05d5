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
export function sesBounce(opts: { to: string; sesMessageId: string; bouncedRecipient: string; originalSubject: string; region?: string }): Buffer {
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
