// Submission of one built message through an account's own SMTP server (its login reused:
// AUTH PLAIN/LOGIN with the password, XOAUTH2 with the account's OAuth2 access token). One
// connection per submission, closed after it: sends are rare per account and each may run on
// another worker. The outcome per recipient comes from ./submit-outcome.ts.
import nodemailer from 'nodemailer';
import type { SmtpTls } from '../outbox/types';
import { outcomeOfError, outcomeOfSent, type SentInfo, type SubmitOutcome } from './submit-outcome';
import type { SmtpError } from './transports';

export interface SmtpEndpoint {
  host: string;
  port: number;
  tls: SmtpTls;
  user: string;
}

export type SmtpAuth = { password: string } | { accessToken: string };

export interface SmtpTimeouts {
  connectTimeoutMs: number;
  socketTimeoutMs: number;
}

export function describeSmtpEndpoint(e: SmtpEndpoint): string {
  return `${e.user}@${e.host}:${e.port} (${e.tls === 'implicit' ? 'TLS' : e.tls === 'starttls' ? 'STARTTLS' : 'no TLS'})`;
}

/** Submits `raw` to `to` (envelope) from `from`; never throws for what the server answers, only for programming errors. */
export async function submitRaw(
  endpoint: SmtpEndpoint,
  auth: SmtpAuth,
  envelope: { from: string; to: string[] },
  raw: Buffer,
  timeouts: SmtpTimeouts,
): Promise<SubmitOutcome> {
  const transport = nodemailer.createTransport({
    host: endpoint.host,
    port: endpoint.port,
    secure: endpoint.tls === 'implicit',
    requireTLS: endpoint.tls === 'starttls',
    ignoreTLS: endpoint.tls === 'none',
    auth:
      'accessToken' in auth
        ? { type: 'OAuth2', user: endpoint.user, accessToken: auth.accessToken }
        : { user: endpoint.user, pass: auth.password },
    connectionTimeout: timeouts.connectTimeoutMs,
    greetingTimeout: Math.min(timeouts.connectTimeoutMs, 30_000),
    socketTimeout: timeouts.socketTimeoutMs,
    // What the server says may quote the message; it is never logged.
    logger: false,
    debug: false,
  });
  try {
    const info = (await transport.sendMail({ envelope, raw })) as SentInfo;
    return outcomeOfSent(envelope.to, info);
  } catch (err) {
    return outcomeOfError(envelope.to, err as SmtpError);
  } finally {
    transport.close();
  }
}
