// Recipients of a message a user sends (the outbox, lib/outbox/): checked before anything is
// queued, with lib/mail/address.ts's one parser (nodemailer's, the one that builds the SMTP
// envelope), so what is checked is exactly what is sent. Each problem names the entry and the
// field it was in, so the sender can fix it.

import { mailboxList } from './address';

export interface Mailbox {
  /** Normal form (lib/mail/address.ts normalizeAddress). */
  address: string;
  /** Display name, when one was given. */
  name?: string;
}

export type RecipientField = 'to' | 'cc' | 'bcc';

/** Each field: one address-list string ("A <a@x.org>, b@y.org") or several. */
export type RecipientInput = Partial<Record<RecipientField, string | string[] | undefined>>;

export interface RecipientLimits {
  /** Most recipients of one message, To, Cc and Bcc together (after duplicates are removed). */
  maxRecipients: number;
}

export const DEFAULT_RECIPIENT_LIMITS: RecipientLimits = { maxRecipients: 100 };

export type RecipientCheck =
  { ok: true; to: Mailbox[]; cc: Mailbox[]; bcc: Mailbox[]; count: number } | { ok: false; problems: string[] };

const FIELDS: RecipientField[] = ['to', 'cc', 'bcc'];
// A display name goes into a header: no line breaks or other control characters in it.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Validates and normalises the recipients. An address listed twice is kept once, in the
 * first field it appears in (To before Cc before Bcc), so nobody gets two copies and a Bcc
 * recipient who is also in To is not hidden by mistake from the others.
 */
export function validateRecipients(
  input: RecipientInput,
  limits: RecipientLimits = DEFAULT_RECIPIENT_LIMITS,
): RecipientCheck {
  const problems: string[] = [];
  const seen = new Set<string>();
  const out: Record<RecipientField, Mailbox[]> = { to: [], cc: [], bcc: [] };
  for (const field of FIELDS) {
    const value = input[field];
    const parts = value === undefined ? [] : Array.isArray(value) ? value : [value];
    for (const part of parts) {
      if (typeof part !== 'string' || !part.trim()) continue;
      const entries = mailboxList(part);
      if (!entries) {
        problems.push(`${field}: cannot read "${part}" as an address list`);
        continue;
      }
      for (const e of entries) {
        if (!e.address) {
          problems.push(
            `${field}: "${e.input}" is not a deliverable address (expected name@example.com, without spaces or quotes)`,
          );
          continue;
        }
        if (CONTROL.test(e.name)) {
          problems.push(`${field}: the name given for ${e.address} contains control characters (line breaks?)`);
          continue;
        }
        if (seen.has(e.address)) continue;
        seen.add(e.address);
        out[field].push(e.name.trim() ? { address: e.address, name: e.name.trim() } : { address: e.address });
      }
    }
  }
  if (problems.length === 0 && seen.size === 0) problems.push('no recipient: give at least one To, Cc or Bcc address');
  if (seen.size > limits.maxRecipients)
    problems.push(
      `${seen.size} recipients, more than the limit of ${limits.maxRecipients} per message (SEND_MAX_RECIPIENTS); split the message`,
    );
  if (problems.length) return { ok: false, problems };
  return { ok: true, ...out, count: seen.size };
}
