// lib/imap/oauth2.ts rules that need no server: the token lifetime a provider claims is clamped
// to a sane range, and a refresh token is only ever sent to an https:// endpoint (loopback
// http:// excepted, for the local stack), checked before any request is made.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_TOKEN_LIFETIME_SECONDS,
  MAX_TOKEN_LIFETIME_SECONDS,
  MIN_TOKEN_LIFETIME_SECONDS,
  OAuth2ConfigError,
  refreshAccessToken,
  tokenLifetimeSeconds,
  tokenUrlProblem,
} from '../../lib/imap/oauth2';
import { storableDate } from '../../lib/sync-store/storable';

describe('OAuth2 token rules', () => {
  it('clamps expires_in to at least a second and at most a year; anything not a number is the default', () => {
    assert.equal(MAX_TOKEN_LIFETIME_SECONDS, 365 * 24 * 3600);
    assert.equal(tokenLifetimeSeconds(3599), 3599);
    assert.equal(tokenLifetimeSeconds('3600'), 3600, 'a numeric string, as some providers send');
    assert.equal(tokenLifetimeSeconds(' 120 '), 120);
    assert.equal(tokenLifetimeSeconds(1e13), MAX_TOKEN_LIFETIME_SECONDS, 'the value that made an Invalid Date');
    assert.equal(tokenLifetimeSeconds('1e13'), MAX_TOKEN_LIFETIME_SECONDS);
    assert.equal(tokenLifetimeSeconds(Infinity), MAX_TOKEN_LIFETIME_SECONDS);
    assert.equal(tokenLifetimeSeconds(Number.MAX_VALUE), MAX_TOKEN_LIFETIME_SECONDS);
    assert.equal(tokenLifetimeSeconds(0), MIN_TOKEN_LIFETIME_SECONDS);
    assert.equal(tokenLifetimeSeconds(-5), MIN_TOKEN_LIFETIME_SECONDS);
    assert.equal(MIN_TOKEN_LIFETIME_SECONDS, 1);
    assert.equal(
      tokenLifetimeSeconds(2),
      2,
      'a short lifetime is never lengthened: the cache must not outlive the token',
    );
    assert.equal(tokenLifetimeSeconds(2.9), 2);
    for (const v of [undefined, null, 'soon', '', '12abc', {}, [], true, NaN, '0x10'])
      assert.equal(tokenLifetimeSeconds(v), DEFAULT_TOKEN_LIFETIME_SECONDS, JSON.stringify(v));
    // Whatever the provider says, the expiry is a date PostgreSQL can store.
    for (const v of [1e13, -1e300, 'x', 1e308]) {
      const at = new Date(Date.now() + tokenLifetimeSeconds(v) * 1000);
      assert.ok(storableDate(at), `expires_in ${v} gives a storable date`);
    }
  });

  it('accepts https:// token endpoints, and http:// on loopback only', () => {
    for (const ok of [
      'https://oauth2.googleapis.com/token',
      'https://login.microsoftonline.com/common/oauth2/v2.0/token',
      'http://127.0.0.1:8080/token',
      'http://localhost:9000/token',
      'http://[::1]:9000/token',
      'HTTPS://Example.COM/token',
    ])
      assert.equal(tokenUrlProblem(ok), null, ok);
    assert.match(tokenUrlProblem('http://oauth.example.com/token') ?? '', /plain http.*https:\/\/ token endpoint/);
    for (const bad of [
      'http://127.0.0.2/token',
      'http://localhost.example.com/token',
      'http://10.0.0.1/token',
      'http://[::2]/token',
      'ftp://example.com/token',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'example.com/token',
      '',
    ])
      assert.ok(tokenUrlProblem(bad), `${bad} is refused`);
    assert.ok(
      !(tokenUrlProblem('http://oauth.example.com/token?secret=s3cr3t') ?? '').includes('s3cr3t'),
      'the query is not echoed',
    );
  });

  it('never sends the refresh token to a refused endpoint', async () => {
    let requests = 0;
    const spy = (async () => {
      requests++;
      return new Response('{}');
    }) as unknown as typeof fetch;
    await assert.rejects(
      refreshAccessToken({ tokenUrl: 'http://oauth.example.com/token', clientId: 'c' }, 'refresh-secret', {
        fetch: spy,
      }),
      (err: Error) => err instanceof OAuth2ConfigError && !err.message.includes('refresh-secret'),
    );
    assert.equal(requests, 0);
  });

  it('turns a provider answer with an absurd expires_in into a valid expiry', async () => {
    const now = Date.UTC(2026, 0, 1);
    const answer = (body: unknown) =>
      (async () =>
        new Response(JSON.stringify(body), {
          headers: { 'content-type': 'application/json' },
        })) as unknown as typeof fetch;
    const t = await refreshAccessToken({ tokenUrl: 'https://oauth.example.com/token', clientId: 'c' }, 'r', {
      now: () => now,
      fetch: answer({ access_token: 'a', expires_in: 1e13, refresh_token: 'r2' }),
    });
    assert.equal(t.expiresAt.getTime(), now + MAX_TOKEN_LIFETIME_SECONDS * 1000);
    assert.equal(t.refreshToken, 'r2');
    const odd = await refreshAccessToken({ tokenUrl: 'https://oauth.example.com/token', clientId: 'c' }, 'r', {
      now: () => now,
      fetch: answer({ access_token: 'a', expires_in: { days: 1 } }),
    });
    assert.equal(odd.expiresAt.getTime(), now + DEFAULT_TOKEN_LIFETIME_SECONDS * 1000);
  });
});
