// lib/imap/client.ts helpers: error classification, UID sets, RFC 5092 pointers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imapErrorText, imapUrl, isAuthenticationFailure, isTransientImapError, uidSet } from '../../lib/imap/client';

describe('imap helpers', () => {
  it('tells a rejected login from a network problem', () => {
    const auth = Object.assign(new Error('Command failed'), {
      authenticationFailed: true,
      serverResponseCode: 'AUTHENTICATIONFAILED',
      responseText: 'Authentication failed.',
    });
    assert.ok(isAuthenticationFailure(auth));
    assert.ok(!isTransientImapError(auth));
    assert.equal(imapErrorText(auth), '[AUTHENTICATIONFAILED] Authentication failed');
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'NoConnection',
      'CONNECT_TIMEOUT',
      'GREETING_TIMEOUT',
      'ETIMEOUT',
    ]) {
      const err = Object.assign(new Error('x'), { code });
      assert.ok(isTransientImapError(err), code);
      assert.ok(!isAuthenticationFailure(err), code);
    }
    assert.ok(isTransientImapError({ serverResponseCode: 'UNAVAILABLE' }));
    assert.equal(
      imapErrorText(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })),
      'connect ECONNREFUSED 127.0.0.1:1',
    );
  });

  it('builds compact UID sets', () => {
    assert.equal(uidSet([5, 1, 2, 3, 9, 10, 3]), '1:3,5,9:10');
    assert.equal(uidSet([42]), '42');
  });

  it('points at a message with an RFC 5092 IMAP URL', () => {
    assert.equal(
      imapUrl({ host: 'imap.example.com', port: 993, tls: true, user: 'a@b.c' }, 'Archive/2024', 77, 5),
      'imap://a%40b.c@imap.example.com/Archive/2024;UIDVALIDITY=77/;UID=5',
    );
    assert.equal(
      imapUrl({ host: 'h', port: 1143, tls: false, user: 'u' }, 'INBOX', 1, 2),
      'imap://u@h:1143/INBOX;UIDVALIDITY=1/;UID=2',
    );
  });
});
