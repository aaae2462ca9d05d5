// Checks an IMAP login before a starter stores a credential (add-account, update-password,
// set-token), and turns what goes wrong into advice: the most common mistake, TLS against a
// plaintext port or the reverse, otherwise shows up as a raw OpenSSL error or a timeout.
import { ImapFlow } from 'imapflow';
import { serverText } from './server-text';

export interface ProbeTarget {
  host: string;
  port: number;
  tls: boolean;
  user: string;
}

export type ProbeAuth = { password: string } | { accessToken: string };

/** The server's words, as one printable line: the starters print it (lib/imap/server-text.ts). */
function errorText(err: unknown): string {
  const e = err as { responseText?: string; serverResponseCode?: string; message?: string; code?: string } | null;
  const text = (e?.responseText || e?.message || String(err)).trim().replace(/\.$/, '');
  const code = e?.serverResponseCode && !text.includes(e.serverResponseCode) ? `[${e.serverResponseCode}] ` : '';
  return serverText(`${code}${text}${e?.code && !text.includes(e.code) ? ` (${e.code})` : ''}`, 1000);
}

/** What to try instead, when the error says TLS and the port disagree; null otherwise. */
export function tlsHint(target: Pick<ProbeTarget, 'host' | 'port' | 'tls'>, err: unknown): string | null {
  const e = err as { code?: string; message?: string; library?: string; reason?: string } | null;
  const text = `${e?.code ?? ''} ${e?.message ?? ''} ${e?.reason ?? ''}`;
  if (
    target.tls &&
    /WRONG_VERSION_NUMBER|wrong version number|packet length too long|unknown protocol|ECONNRESET.*TLS|before secure TLS connection/i.test(
      text,
    )
  ) {
    return `${target.host}:${target.port} does not speak TLS (a plaintext IMAP port, usually 143): add --no-tls, or use the server's TLS port (usually 993)`;
  }
  if (
    !target.tls &&
    (target.port === 993 || /GREETING_TIMEOUT|ClosedAfterConnectText|Unexpected greeting/i.test(text))
  ) {
    return `${target.host}:${target.port} sent no plaintext IMAP greeting${target.port === 993 ? ' (993 is the IMAP-over-TLS port)' : ''}: drop --no-tls, or use the plaintext port (usually 143)`;
  }
  return null;
}

export class LoginProbeError extends Error {
  override name = 'LoginProbeError';
  constructor(
    message: string,
    /** The server refused the credential (as opposed to: unreachable, TLS mismatch, timeout). */
    readonly credentialRefused: boolean,
  ) {
    super(message);
  }
}

/** Logs in and out; throws a LoginProbeError that says what failed and what to try. */
export async function probeImapLogin(
  target: ProbeTarget,
  auth: ProbeAuth,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const timeout = options.timeoutMs ?? 20_000;
  const client = new ImapFlow({
    host: target.host,
    port: target.port,
    secure: target.tls,
    auth:
      'accessToken' in auth
        ? { user: target.user, accessToken: auth.accessToken }
        : { user: target.user, pass: auth.password },
    logger: false,
    verifyOnly: true,
    connectionTimeout: timeout,
    greetingTimeout: Math.min(timeout, 10_000),
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    const refused =
      (err as { authenticationFailed?: boolean }).authenticationFailed === true ||
      (err as { serverResponseCode?: string }).serverResponseCode === 'AUTHENTICATIONFAILED';
    const hint = refused ? null : tlsHint(target, err);
    const how = 'accessToken' in auth ? 'with the OAuth2 access token' : 'with the password';
    throw new LoginProbeError(
      `IMAP login to ${target.host}:${target.port}${target.tls ? ' (TLS)' : ''} as ${target.user} ${how} failed: ${errorText(err)}${hint ? `. ${hint}` : ''}`,
      refused,
    );
  } finally {
    client.close();
  }
}
