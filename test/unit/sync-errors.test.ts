// Pure decisions of account sync: which errors are per message, retried or waiting for a new
// credential; token freshness; OAuth2 presets; the TLS hint of the login check.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tlsHint } from '../../lib/imap/probe';
import { OAuth2GrantError, tokenStillValid } from '../../lib/imap/oauth2';
import { OAUTH2_PRESETS, presetTokenUrl } from '../../lib/imap/oauth2-presets';
import {
  announcedSize,
  classifySyncError,
  formatBytes,
  isPostgresDataError,
  SyncStalledError,
} from '../../lib/imap/sync-errors';

describe('sync error classification', () => {
  it('data errors are per message, limits and stalls are the server, credentials wait', () => {
    assert.equal(
      classifySyncError(Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' })),
      'data',
    );
    assert.equal(
      classifySyncError(
        Object.assign(new Error('index row size 3000 exceeds btree version 4 maximum 2704'), { code: '54000' }),
      ),
      'data',
    );
    assert.ok(!isPostgresDataError({ code: '23505' }), 'a unique violation is not a data error');
    assert.ok(!isPostgresDataError({ code: 'ECONNRESET' }));
    const lie = Object.assign(new Error('Literal size 67108864 exceeds maximum allowed size of 1048576 bytes'), {
      code: 'LiteralTooLarge',
      literalSize: 67108864,
    });
    assert.equal(classifySyncError(lie), 'limit');
    assert.equal(announcedSize(lie), 67108864);
    assert.equal(classifySyncError(new SyncStalledError('no progress', 'stall')), 'stalled');
    assert.equal(
      classifySyncError(
        Object.assign(new Error('Command failed'), {
          authenticationFailed: true,
          serverResponseCode: 'AUTHENTICATIONFAILED',
        }),
      ),
      'authentication',
    );
    assert.equal(classifySyncError(new OAuth2GrantError('revoked', 'invalid_grant')), 'authentication');
    assert.equal(
      classifySyncError(Object.assign(new Error('Connection not available'), { code: 'NoConnection' })),
      'connection',
    );
    assert.equal(formatBytes(64 * 1024 * 1024), '64 MiB');
    assert.equal(formatBytes(100), '100 bytes');
  });

  it('a cached access token is used only while it outlives the margin', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(tokenStillValid(new Date(now + 301_000), 300_000, now), true);
    assert.equal(tokenStillValid(new Date(now + 299_000), 300_000, now), false);
    assert.equal(tokenStillValid(null, 0, now), false);
  });

  it("presets name the providers' endpoints and scopes; Microsoft's tenant goes into the URL", () => {
    assert.equal(presetTokenUrl('google'), 'https://oauth2.googleapis.com/token');
    assert.equal(
      presetTokenUrl('microsoft', 'contoso.com'),
      'https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token',
    );
    assert.equal(presetTokenUrl('microsoft'), 'https://login.microsoftonline.com/common/oauth2/v2.0/token');
    assert.throws(() => presetTokenUrl('microsoft', 'a/b'), /tenant/);
    assert.match(OAUTH2_PRESETS.microsoft.scopes, /offline_access/);
    assert.equal(OAUTH2_PRESETS.google.scopes, 'https://mail.google.com/');
  });

  it('names a TLS mismatch with the option that fixes it', () => {
    const wrongVersion = Object.assign(
      new Error('1C0A0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number'),
      { code: 'ERR_SSL_WRONG_VERSION_NUMBER' },
    );
    assert.match(tlsHint({ host: 'h', port: 143, tls: true }, wrongVersion) ?? '', /does not speak TLS.*--no-tls/);
    assert.match(
      tlsHint(
        { host: 'h', port: 993, tls: false },
        Object.assign(new Error('timeout'), { code: 'GREETING_TIMEOUT' }),
      ) ?? '',
      /drop --no-tls/,
    );
    assert.equal(
      tlsHint({ host: 'h', port: 143, tls: false }, Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })),
      null,
    );
  });
});
