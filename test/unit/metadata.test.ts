import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMetadata, fitList, S3_METADATA_LIMIT } from '../../lib/metadata';

const size = (m: Record<string, string>) => Object.entries(m).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);

test('writes the existing worker schema and keeps unrelated metadata', () => {
  const m = buildMetadata({ 'x-custom': 'keep me', status: 'old' }, { status: 'partial', processedAt: 1706000000.7, processedBy: 'worker-a', invalidInboxes: ['nobody@example.com'], deliveredCount: 1 });
  assert.deepEqual(m, {
    'x-custom': 'keep me',
    processed: 'true',
    processed_at: '1706000000',
    processed_by: 'worker-a',
    status: 'partial',
    delivered_count: '1',
    invalid_inboxes: 'nobody@example.com',
  });
});

test('blocked mail records sender and recipients', () => {
  const m = buildMetadata({}, { status: 'blocked', processedAt: 1, processedBy: 'w', blockedSender: 'spam@bad.com', blockedRecipients: ['a@example.com', 'b@example.com'] });
  assert.equal(m.blocked_sender, 'spam@bad.com');
  assert.equal(m.blocked_recipients, 'a@example.com,b@example.com');
});

test('long lists are cut with a count and the whole stays within 2 KB', () => {
  const many = Array.from({ length: 300 }, (_, i) => `user${i}@example.com`);
  const m = buildMetadata({ 'x-existing': 'v'.repeat(200) }, { status: 'partial', processedAt: 1, processedBy: 'w', invalidInboxes: many, blockedRecipients: many, blockedSender: 's@x.org', error: 'e'.repeat(3000) });
  assert.ok(size(m) <= S3_METADATA_LIMIT, `size ${size(m)}`);
  assert.match(m.invalid_inboxes, /^user0@example\.com,.*\.\.\.\(\+\d+ more\)$/);
  assert.match(m.blocked_recipients, /\(\+\d+ more\)$/);
  const kept = m.invalid_inboxes.split(',').filter((x) => x.includes('@')).length;
  const more = Number(m.invalid_inboxes.match(/\+(\d+) more/)![1]);
  assert.equal(kept + more, 300);
  assert.equal(m['x-existing'], 'v'.repeat(200));
});

test('values are ASCII so they survive as HTTP headers', () => {
  const m = buildMetadata({}, { status: 'failed', processedAt: 1, processedBy: 'wörker', error: 'Zustellung fehlgeschlagen: Empfänger ☃' });
  assert.ok(Object.values(m).every((v) => /^[\x20-\x7e]*$/.test(v)));
});

test('fitList', () => {
  assert.equal(fitList(['a', 'b', 'c'], 100), 'a,b,c');
  assert.equal(fitList(['aaaa', 'bbbb', 'cccc', 'dddd', 'eeee'], 18), 'aaaa,...(+4 more)');
});

test('fitList with no room left keeps only the count', () => {
  assert.equal(fitList(['aaaa', 'bbbb', 'cccc'], 12), '...(+3 more)');
});
