// The mail transports of a worker, built once from the validated config and injected into the
// activities: delivery to users' mailboxes (pooled SMTP, or LMTP when LMTP_ENABLED), forwards
// inside our domains, and outbound sending (auto-replies, forwards outside our domains)
// through SES or an SMTP relay.
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Config } from '../config';

/** What nodemailer's errors carry: the SMTP/LMTP reply and, per recipient, the refusals. */
export interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
}

export interface Transports {
  /** Inbound delivery to users' mailboxes (SMTP_HOST:SMTP_PORT, or LMTP). */
  mailbox: Transporter;
  /** Forwards to addresses in our own domains (SMTP_HOST:INTERNAL_SMTP_PORT). */
  internal: Transporter;
  /** Everything leaving our domains. */
  outbound: { send(from: string, to: string[], raw: Buffer): Promise<void> };
  close(): void;
}

export function createTransports(config: Config): Transports {
  const auth = config.smtp.user ? { user: config.smtp.user, pass: config.smtp.pass ?? '' } : undefined;
  const pooled = (host: string, port: number, lmtp = false) =>
    nodemailer.createTransport({
      pool: true,
      host,
      port,
      lmtp,
      secure: config.smtp.secure,
      auth,
      maxConnections: config.smtp.poolSize,
      maxMessages: 100,
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 120_000,
    });
  const mailbox = config.lmtp.enabled
    ? pooled(config.lmtp.host, config.lmtp.port, true)
    : pooled(config.smtp.host, config.smtp.port);
  const internal = pooled(config.smtp.host, config.internalSmtpPort);
  let outbound: Transports['outbound'];
  let relay: Transporter | undefined;
  if (config.outbound.transport === 'ses') {
    const ses = new SESv2Client({ region: config.awsRegion, endpoint: config.sesEndpoint });
    outbound = {
      async send(from, to, raw) {
        await ses.send(
          new SendEmailCommand({
            FromEmailAddress: from,
            Destination: { ToAddresses: to },
            Content: { Raw: { Data: raw } },
          }),
        );
      },
    };
  } else {
    // The relay gets its own credentials: the internal server's never leave our network.
    const relayAuth = config.outbound.user
      ? { user: config.outbound.user, pass: config.outbound.pass ?? '' }
      : undefined;
    relay = nodemailer.createTransport({
      pool: true,
      host: config.outbound.host,
      port: config.outbound.port,
      maxConnections: 2,
      auth: relayAuth,
      requireTLS: config.outbound.requireTls,
    });
    outbound = {
      async send(from, to, raw) {
        await relay!.sendMail({ envelope: { from, to }, raw });
      },
    };
  }
  return {
    mailbox,
    internal,
    outbound,
    close() {
      mailbox.close();
      internal.close();
      relay?.close();
    },
  };
}
