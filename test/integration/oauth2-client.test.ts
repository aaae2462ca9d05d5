// lib/imap/oauth2.ts against the local OAuth2 server (scripts/stack/oauth2.ts, oauth2-mock-server):
// a refresh, a rotated refresh token, the provider's refusals as OAuth2GrantError (the account
// must wait for a new token) and an unreachable or broken endpoint as OAuth2EndpointError
// (retry later). No error message carries a token.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  MAX_TOKEN_LIFETIME_SECONDS,
  OAuth2ConfigError,
  OAuth2EndpointError,
  OAuth2GrantError,
  refreshAccessToken,
} from '../../lib/imap/oauth2';
import { freePort } from '../../scripts/stack/ports';
import { startLocalOAuth2Server, type LocalOAuth2Server } from '../../scripts/stack/oauth2';

const CLIENT = { clientId: 'client-a', clientSecret: 'secret-a' };

describe('OAuth2 token client', () => {
  let oauth: LocalOAuth2Server;
  before(async () => {
    oauth = await startLocalOAuth2Server({ clients: [CLIENT, { clientId: 'public-b' }], accessTokenSeconds: 120 });
  });
  after(async () => {
    await oauth?.stop();
  });

  it('trades a refresh token for an access token and hands on a rotated refresh token', async () => {
    const refresh = oauth.grant('u@example.test', CLIENT.clientId);
    const t0 = Date.now();
    const t = await refreshAccessToken(
      { tokenUrl: oauth.tokenUrl, clientId: CLIENT.clientId, clientSecret: CLIENT.clientSecret, scopes: 'imap' },
      refresh,
    );
    assert.ok(t.accessToken.length > 20);
    assert.ok(Math.abs(t.expiresAt.getTime() - (t0 + 120_000)) < 5000);
    assert.ok(t.refreshToken && t.refreshToken !== refresh);
    // A public client has no secret.
    const pub = await refreshAccessToken(
      { tokenUrl: oauth.tokenUrl, clientId: 'public-b' },
      oauth.grant('u@example.test', 'public-b'),
    );
    assert.ok(pub.accessToken);
  });

  it('clamps an absurd expires_in to a year, and never sends a refresh token to a plain-http endpoint off this machine', async () => {
    oauth.accessTokenSeconds = 1e13;
    try {
      const t0 = Date.now();
      const t = await refreshAccessToken(
        { tokenUrl: oauth.tokenUrl, clientId: CLIENT.clientId, clientSecret: CLIENT.clientSecret },
        oauth.grant('x@example.test', CLIENT.clientId),
      );
      assert.ok(!Number.isNaN(t.expiresAt.getTime()), 'a valid date');
      assert.ok(Math.abs(t.expiresAt.getTime() - (t0 + MAX_TOKEN_LIFETIME_SECONDS * 1000)) < 5000);
    } finally {
      oauth.accessTokenSeconds = 120;
    }
    // The same server by a name that is not loopback: refused before any request is made.
    const before = oauth.stats.refreshes + oauth.stats.refused;
    const offMachine = oauth.tokenUrl.replace('127.0.0.1', '127.0.0.1.nip.io');
    await assert.rejects(
      refreshAccessToken({ tokenUrl: offMachine, clientId: CLIENT.clientId }, oauth.grant('x@example.test')),
      (err: Error) => err instanceof OAuth2ConfigError && /plain http/.test(err.message),
    );
    assert.equal(oauth.stats.refreshes + oauth.stats.refused, before, 'no request reached the endpoint');
  });

  it('a revoked token or a wrong client is a grant error, and says so without the token', async () => {
    const refresh = oauth.grant('v@example.test', CLIENT.clientId);
    oauth.revoke('v@example.test');
    await assert.rejects(
      refreshAccessToken(
        { tokenUrl: oauth.tokenUrl, clientId: CLIENT.clientId, clientSecret: CLIENT.clientSecret },
        refresh,
      ),
      (err: Error) => {
        assert.ok(err instanceof OAuth2GrantError);
        assert.equal(err.error, 'invalid_grant');
        assert.match(
          err.message,
          /refused the refresh token for client client-a \(invalid_grant: Token has been expired or revoked\.\)/,
        );
        assert.ok(!err.message.includes(refresh));
        return true;
      },
    );
    await assert.rejects(
      refreshAccessToken(
        { tokenUrl: oauth.tokenUrl, clientId: CLIENT.clientId, clientSecret: 'wrong' },
        oauth.grant('w@example.test', CLIENT.clientId),
      ),
      (err: Error) => {
        assert.ok(err instanceof OAuth2GrantError);
        assert.equal(err.error, 'invalid_client');
        return true;
      },
    );
  });

  it('an unreachable endpoint, a timeout or an answer that is not a token is an endpoint error (retry later)', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/token`;
    await assert.rejects(
      refreshAccessToken({ tokenUrl: closed, clientId: 'x' }, 'r'),
      (err: Error) => err instanceof OAuth2EndpointError && /could not be reached: ECONNREFUSED/.test(err.message),
    );
    const broken = createServer((req, res) => {
      if (req.url === '/slow') return; // never answers
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>');
    });
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', () => r()));
    const port = (broken.address() as AddressInfo).port;
    try {
      await assert.rejects(
        refreshAccessToken({ tokenUrl: `http://127.0.0.1:${port}/token`, clientId: 'x' }, 'r'),
        (err: Error) => err instanceof OAuth2EndpointError && /HTTP 502, not JSON/.test(err.message),
      );
      await assert.rejects(
        refreshAccessToken({ tokenUrl: `http://127.0.0.1:${port}/slow`, clientId: 'x' }, 'r', { timeoutMs: 300 }),
        (err: Error) => err instanceof OAuth2EndpointError && /no answer within/.test(err.message),
      );
    } finally {
      broken.closeAllConnections();
      broken.close();
    }
  });
});
