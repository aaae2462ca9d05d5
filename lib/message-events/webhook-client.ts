// Sends one signed webhook POST (lib/message-events/signature.ts) and says what the answer
// means. One attempt: retries with backoff are the delivery workflow's (workflows/messageWebhook.ts).
import { serverText } from '../imap/server-text';
import type { MessageEvent } from '../../contracts/message-events';
import {
  EVENT_ID_HEADER,
  EVENT_TYPE_HEADER,
  SIGNATURE_HEADER,
  signWebhook,
  webhookAnswer,
  webhookBody,
} from './signature';

export interface WebhookAttempt {
  outcome: 'delivered' | 'retry' | 'refused';
  /** HTTP status, or null when no answer came (network error, timeout). */
  status: number | null;
  /** One printable line for the record (message_events.webhook_error): the URL without its query, the receiver's answer. */
  detail: string;
  /** The same, short and without the URL or the receiver's words: for errors that enter workflow history. */
  summary: string;
}

/** The URL as it may appear in records and logs: scheme, host, port and path, no credentials or query. */
export function webhookUrlLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(an invalid URL)';
  }
}

export async function postWebhook(
  url: string,
  secrets: readonly string[],
  event: MessageEvent,
  options: { timeoutMs: number; now?: () => number; fetchImpl?: typeof fetch },
): Promise<WebhookAttempt> {
  const body = webhookBody(event);
  const timestamp = Math.floor((options.now?.() ?? Date.now()) / 1000);
  const where = webhookUrlLabel(url);
  let res: Response;
  try {
    res = await (options.fetchImpl ?? fetch)(url, {
      method: 'POST',
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'mailroom-webhook/1',
        [SIGNATURE_HEADER]: signWebhook(secrets, body, timestamp),
        [EVENT_ID_HEADER]: String(event.eventId),
        [EVENT_TYPE_HEADER]: event.type,
      },
    });
  } catch (err) {
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    const timeout = e.name === 'TimeoutError';
    const why = timeout
      ? `no answer within ${options.timeoutMs} ms`
      : [e.cause?.message ?? e.message ?? String(err), e.cause?.code ? `(${e.cause.code})` : '']
          .filter(Boolean)
          .join(' ');
    // The network error's own message names the address; its code does not.
    const code = /^[A-Z][A-Z0-9_]{1,40}$/.test(e.cause?.code ?? '') ? e.cause!.code! : 'network error';
    return {
      outcome: 'retry',
      status: null,
      detail: `POST ${where} failed: ${serverText(why, 300)}`,
      summary: timeout ? why : `no answer (${code})`,
    };
  }
  // A short excerpt of what the receiver said, for the record; the rest is not read.
  let said = '';
  try {
    said = serverText((await res.text()).slice(0, 200), 200);
  } catch {
    /* the answer's status is what counts */
  }
  const outcome = webhookAnswer(res.status);
  const redirect =
    outcome === 'refused' && res.status >= 300 && res.status < 400
      ? ' (redirects are not followed: configure the final URL)'
      : '';
  return {
    outcome,
    status: res.status,
    detail: `POST ${where} answered HTTP ${res.status}${redirect}${said ? `: ${said}` : ''}`,
    summary: `HTTP ${res.status}${redirect}`,
  };
}
