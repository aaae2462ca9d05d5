// The send configuration (lib/config/send.ts): defaults, durations, and a bad value named.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSendConfig, SendConfigError } from '../../lib/config/send';

test('defaults: 24 h of retries, 30 sends per minute, 25 MiB per attachment, the mailroom-send queue', () => {
  const c = loadSendConfig({});
  assert.equal(c.taskQueue, 'mailroom-send');
  assert.equal(c.maxAgeSeconds, 86_400);
  assert.equal(c.maxRetryIntervalSeconds, 1800);
  assert.equal(c.ratePerMinute, 30);
  assert.equal(c.maxAttachmentBytes, 25 * 1024 * 1024);
  assert.equal(c.maxRecipients, 100);
  assert.equal(c.attachmentDir, null);
});

test('durations and numbers from the environment', () => {
  const c = loadSendConfig({ SEND_MAX_AGE: '2d', SEND_MAX_RETRY_INTERVAL: '90s', SEND_RATE_PER_MINUTE: '0' });
  assert.equal(c.maxAgeSeconds, 172_800);
  assert.equal(c.maxRetryIntervalSeconds, 90);
  assert.equal(c.ratePerMinute, 0);
});

test('a bad value stops the process naming the variable', () => {
  assert.throws(
    () => loadSendConfig({ SEND_MAX_AGE: 'soon', SEND_MAX_ATTACHMENT_BYTES: '-1' }),
    (e: unknown) =>
      e instanceof SendConfigError && /SEND_MAX_AGE/.test(e.message) && /SEND_MAX_ATTACHMENT_BYTES/.test(e.message),
  );
  assert.throws(() => loadSendConfig({ SEND_MAX_AGE: '0' }), /SEND_MAX_AGE/);
});
