// What one SMTP submission meant for each recipient, decided from nodemailer's answer: a pure
// function, so every reply shape (accepted, refused at RCPT TO, refused after DATA, login
// refused, no reply at all) is unit-tested. 5xx is final for the recipients it covers, 4xx is
// worth another attempt later, and an error without any reply from the server (connection
// lost, timeout) is `unknown`: the server may have accepted the message before the client
// heard back, so the attempt is left open and the next one looks in the Sent folder first.
import { serverText } from '../imap/server-text';
import type { SmtpError } from './transports';

export type RecipientVerdict = 'accepted' | 'failed' | 'deferred';

export interface RecipientReply {
  address: string;
  status: RecipientVerdict;
  code: number | null;
  reply: string;
}

export type SubmitOutcome =
  /** The server answered: a verdict per recipient submitted. */
  | { kind: 'replied'; recipients: RecipientReply[]; response: string | null }
  /** The server refused the login. `temporary`: a 4xx (454: try later), else 5xx (535...). */
  | { kind: 'auth'; temporary: boolean; code: number | null; reply: string }
  /** No definite reply: the message may or may not have been accepted. */
  | { kind: 'unknown'; reply: string };

/** What nodemailer resolves sendMail with (SMTPTransport.SentMessageInfo, the parts used). */
export interface SentInfo {
  accepted?: (string | { address: string })[];
  rejected?: (string | { address: string })[];
  rejectedErrors?: SmtpError[];
  response?: string;
}

const addr = (a: string | { address: string }) => (typeof a === 'string' ? a : a.address).toLowerCase();
const codeOf = (text: string | undefined): number | null => {
  const m = /^([245]\d\d)[\s-]/.exec(text ?? '');
  return m ? Number(m[1]) : null;
};
const verdict = (code: number | null): RecipientVerdict => (code !== null && code >= 500 ? 'failed' : 'deferred');
const text = (e: SmtpError | undefined) => serverText(e?.response ?? e?.message ?? 'no reply', 1000);

/** The outcome of a sendMail that resolved: accepted recipients, and those refused at RCPT TO. */
export function outcomeOfSent(submitted: string[], info: SentInfo): SubmitOutcome {
  const response = info.response ? serverText(info.response, 1000) : null;
  const accepted = new Set((info.accepted ?? []).map(addr));
  const refusals = new Map<string, SmtpError>();
  for (const e of info.rejectedErrors ?? []) if (e.recipient) refusals.set(e.recipient.toLowerCase(), e);
  const recipients = submitted.map((address): RecipientReply => {
    const key = address.toLowerCase();
    if (accepted.has(key)) return { address, status: 'accepted', code: codeOf(response ?? ''), reply: response ?? '' };
    const e = refusals.get(key);
    const code = e?.responseCode ?? codeOf(e?.response);
    // Listed as neither: the server said nothing about it (should not happen); try again.
    return {
      address,
      status: e ? verdict(code) : 'deferred',
      code,
      reply: e ? text(e) : 'no reply for this recipient',
    };
  });
  return { kind: 'replied', recipients, response };
}

/** The outcome of a sendMail that failed. */
export function outcomeOfError(submitted: string[], err: SmtpError): SubmitOutcome {
  const code = err.responseCode ?? codeOf(err.response);
  if (err.code === 'EAUTH' && code !== null) return { kind: 'auth', temporary: code < 500, code, reply: text(err) };
  if (code === null) {
    // A login refused without a code, a lost connection, a timeout, a TLS failure: no reply
    // about the message itself.
    if (err.code === 'EAUTH') return { kind: 'auth', temporary: false, code: null, reply: text(err) };
    return { kind: 'unknown', reply: serverText(`${err.message}${err.code ? ` (${err.code})` : ''}`, 1000) };
  }
  // Every recipient refused at RCPT TO: each with its own reply.
  if (err.rejectedErrors?.length) {
    const refusals = new Map(err.rejectedErrors.map((e) => [(e.recipient ?? '').toLowerCase(), e]));
    return {
      kind: 'replied',
      response: null,
      recipients: submitted.map((address) => {
        const e = refusals.get(address.toLowerCase());
        const c = e ? (e.responseCode ?? codeOf(e.response)) : code;
        return { address, status: verdict(c), code: c, reply: e ? text(e) : text(err) };
      }),
    };
  }
  // The sender (MAIL FROM), the message (after DATA) or the session refused: every recipient
  // of this submission shares the reply.
  return {
    kind: 'replied',
    response: text(err),
    recipients: submitted.map((address) => ({ address, status: verdict(code), code, reply: text(err) })),
  };
}
