// An IMAP session on the sending account, for the Sent folder (the duplicate check and the
// copy): the account's login (activities/sync/login.ts), a renewed OAuth2 token when the cached
// one is refused, and failures named with the account.
import { ApplicationFailure } from '@temporalio/activity';
import type { ImapFlow } from 'imapflow';
import {
  closeImap,
  connectImap,
  describeEndpoint,
  imapErrorText,
  isAuthenticationFailure,
  isTransientImapError,
  type ImapAuth,
} from '../../lib/imap/client';
import type { AccountLogin } from '../sync/login';
import type { SendActivityDeps, SendRef } from './types';

export function createSendImap(login: AccountLogin, cfg: SendActivityDeps['config']) {
  return async function withImap<T>(ref: SendRef, what: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
    const { account, endpoint, auth, renew } = await login.credential(ref);
    const timeouts = {
      connectTimeoutMs: cfg.imapConnectTimeoutMs ?? 30_000,
      socketTimeoutMs: cfg.imapSocketTimeoutMs ?? 120_000,
    };
    const connect = (a: ImapAuth) => connectImap(endpoint, a, timeouts);
    let client: ImapFlow;
    try {
      try {
        client = await connect(auth);
      } catch (err) {
        if (!renew || !isAuthenticationFailure(err)) throw err;
        client = await connect(await renew());
      }
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      if (isAuthenticationFailure(err))
        return login.refused(ref, account, `IMAP server ${account.imapHost}`, imapErrorText(err));
      throw ApplicationFailure.retryable(
        `Cannot connect to the IMAP server of account ${account.id} (${describeEndpoint(endpoint)}) to ${what}: ${imapErrorText(err)}${isTransientImapError(err) ? ' (network error or timeout)' : ''}; will retry with backoff.`,
        'ImapConnectionError',
      );
    }
    try {
      return await fn(client);
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      throw ApplicationFailure.retryable(
        `IMAP error on account ${account.id} (${describeEndpoint(endpoint)}) while trying to ${what}: ${imapErrorText(err)}; will retry with backoff.`,
        'ImapError',
      );
    } finally {
      await closeImap(client);
    }
  };
}

export type WithImap = ReturnType<typeof createSendImap>;
