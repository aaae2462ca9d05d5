// The options that let an account send (account:add, account:set): its SMTP submission server,
// TLS mode, the folder a copy of each sent message is appended to, and the From address. The
// login is the account's own (password or OAuth2 token); lib/outbox/store.ts stores the settings.
import { oneOf, tcpPort, UsageError, type OptionValues } from '../lib/cli';
import { normalizeAddress } from '../lib/mail/address';
import { createOutboxStore, type SmtpSettings, type SmtpTls } from '../lib/outbox';
import type { AccountDb } from './account-common';

export const SMTP_TLS_MODES: readonly SmtpTls[] = ['starttls', 'implicit', 'none'];

export const SMTP_OPTIONS = {
  'smtp-host': {
    type: 'string',
    value: '<host>',
    description: 'SMTP submission server the account sends through (with its own login); unset: it cannot send',
  },
  'smtp-port': {
    type: 'string',
    value: '<port>',
    description: 'SMTP port (default 587, or 465 with --smtp-tls implicit)',
  },
  'smtp-tls': {
    type: 'string',
    value: '<starttls|implicit|none>',
    description: 'starttls (587), implicit TLS (465), or none (a server on a trusted network only) (default starttls)',
  },
  'sent-folder': {
    type: 'string',
    value: '<folder>',
    description:
      'IMAP folder a copy of each sent message is appended to, e.g. Sent (default none: Gmail and others keep their own)',
  },
  'from-address': {
    type: 'string',
    value: '<email>',
    description: 'From address of mail sent from the account (default: the login, when it is an address)',
  },
} as const;

type SmtpValues = OptionValues<typeof SMTP_OPTIONS> & { 'no-sent-folder'?: boolean };

/** The settings the options change (undefined: none given), checked before anything connects. */
export function smtpSettingsFromOptions(v: SmtpValues): Partial<SmtpSettings> | undefined {
  const out: Partial<SmtpSettings> = {};
  if (v['smtp-host'] !== undefined) {
    const host = v['smtp-host'].trim();
    if (/[\s/]/.test(host)) throw new UsageError(`--smtp-host ${v['smtp-host']} is not a host name`);
    out.host = host;
  }
  if (v['smtp-tls'] !== undefined) out.tls = oneOf('smtp-tls', v['smtp-tls'], SMTP_TLS_MODES);
  if (v['smtp-port'] !== undefined) out.port = tcpPort('smtp-port', v['smtp-port']);
  // A new host without a port gets its TLS mode's usual one.
  else if (out.host !== undefined) out.port = out.tls === 'implicit' ? 465 : 587;
  if (v['sent-folder'] !== undefined && v['no-sent-folder'])
    throw new UsageError('give --sent-folder or --no-sent-folder, not both');
  if (v['sent-folder'] !== undefined) out.sentFolder = v['sent-folder'];
  if (v['no-sent-folder']) out.sentFolder = null;
  if (v['from-address'] !== undefined) {
    const from = normalizeAddress(v['from-address']);
    if (!from) throw new UsageError(`--from-address ${v['from-address']} is not an email address`);
    out.fromAddress = from;
  }
  return Object.keys(out).length ? out : undefined;
}

export async function storeSmtpSettings(
  db: AccountDb,
  userId: string,
  accountId: string,
  settings: Partial<SmtpSettings>,
): Promise<SmtpSettings> {
  const saved = await createOutboxStore(db.pool).updateSmtpSettings(userId, accountId, settings);
  if (!saved) throw new Error(`account ${accountId} is gone; nothing was stored`);
  return saved;
}

export function describeSmtp(s: SmtpSettings): string {
  if (!s.host) return 'no SMTP server (the account cannot send; set one with --smtp-host)';
  return `${s.host}:${s.port ?? 587} (${s.tls === 'none' ? 'no TLS' : s.tls === 'implicit' ? 'implicit TLS' : 'STARTTLS'}), Sent copy ${s.sentFolder ? `in ${s.sentFolder}` : 'not kept'}${s.fromAddress ? `, From ${s.fromAddress}` : ''}`;
}
