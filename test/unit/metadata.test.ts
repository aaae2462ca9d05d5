import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMetadata, fitList, isProcessed, S3_METADATA_LIMIT } from '../../lib/mail/metadata';

const size = (m: Record<string, string>) =>
  Object.entries(m).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);

test('writes the existing worker schema and keeps unrelated metadata', () => {
  const m = buildMetadata(
    { 'x-custom': 'keep me', status: 'old' },
    {
      status: 'partial',
      processedAt: 1706000000.7,
      processedBy: 'worker-a',
      invalidInboxes: ['nobody@example.com'],
      deliveredCount: 1,
    },
  );
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
  const m = buildMetadata(
    {},
    {
      status: 'blocked',
      processedAt: 1,
      processedBy: 'w',
      blockedSender: 'spam@bad.com',
      blockedRecipients: ['a@example.com', 'b@example.com'],
    },
  );
  assert.equal(m.blocked_sender, 'spam@bad.com');
  assert.equal(m.blocked_recipients, 'a@example.com,b@example.com');
});

test('long lists are cut with a count and the whole stays within 2 KB', () => {
  const many = Array.from({ length: 300 }, (_, i) => `user${i}@example.com`);
  const m = buildMetadata(
    { 'x-existing': 'v'.repeat(200) },
    {
      status: 'partial',
      processedAt: 1,
      processedBy: 'w',
      invalidInboxes: many,
      blockedRecipients: many,
      blockedSender: 's@x.org',
      error: 'e'.repeat(3000),
    },
  );
  assert.ok(size(m) <= S3_METADATA_LIMIT, `size ${size(m)}`);
  assert.match(m.invalid_inboxes, /^user0@example\.com,.*\.\.\.\(\+\d+ more\)$/);
  assert.match(m.blocked_recipients, /\(\+\d+ more\)$/);
  const kept = m.invalid_inboxes.split(',').filter((x) => x.includes('@')).length;
  const more = Number(m.invalid_inboxes.match(/\+(\d+) more/)![1]);
  assert.equal(kept + more, 300);
  assert.equal(m['x-existing'], 'v'.repeat(200));
});

test('values are ASCII so they survive as HTTP headers', () => {
  const m = buildMetadata(
    {},
    { status: 'failed', processedAt: 1, processedBy: 'wörker', error: 'Zustellung fehlgeschlagen: Empfänger ☃' },
  );
  assert.ok(Object.values(m).every((v) => /^[\x20-\x7e]*$/.test(v)));
});

test('fitList', () => {
  assert.equal(fitList(['a', 'b', 'c'], 100), 'a,b,c');
  assert.equal(fitList(['aaaa', 'bbbb', 'cccc', 'dddd', 'eeee'], 18), 'aaaa,...(+4 more)');
});

test('fitList with no room left keeps only the count', () => {
  assert.equal(fitList(['aaaa', 'bbbb', 'cccc'], 12), '...(+3 more)');
});

test('2,000 bytes of existing metadata plus ours still fit: the largest other entry is dropped and named (the issue 11 case)', () => {
  const existing = { 'x-archive-note': 'n'.repeat(1500), 'x-small': 'keep', 'x-mid': 'm'.repeat(470) };
  assert.ok(size(existing) >= 2000);
  const m = buildMetadata(existing, {
    status: 'partial',
    processedAt: 1,
    processedBy: 'mailroom-worker-1',
    invalidInboxes: ['a@example.com', 'b@example.com'],
    deliveredCount: 1,
    error: 'b@example.com: still deferred',
    verdicts: 'spam=PASS virus=PASS spf=PASS dkim=PASS dmarc=PASS',
  });
  assert.ok(size(m) <= S3_METADATA_LIMIT, `size ${size(m)}`);
  assert.equal(m['x-archive-note'], undefined);
  assert.equal(m.metadata_dropped, 'x-archive-note');
  assert.equal(m['x-small'], 'keep');
  assert.equal(m['x-mid'], 'm'.repeat(470));
  assert.equal(m.status, 'partial');
  assert.equal(m.ses_verdicts, 'spam=PASS virus=PASS spf=PASS dkim=PASS dmarc=PASS');
  assert.equal(m.invalid_inboxes, 'a@example.com,b@example.com');
});

test('whatever fills the object, ours always fits: lists keep at least their count', () => {
  const existing = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-k${i}`, 'v'.repeat(60)]));
  const many = Array.from({ length: 500 }, (_, i) => `user${i}@example.com`);
  const m = buildMetadata(existing, {
    status: 'blocked',
    processedAt: 1,
    processedBy: 'w'.repeat(300),
    blockedSender: 's'.repeat(400) + '@x.org',
    blockedRecipients: many,
    invalidInboxes: many,
    error: 'e'.repeat(5000),
  });
  assert.ok(size(m) <= S3_METADATA_LIMIT, `size ${size(m)}`);
  assert.match(m.blocked_recipients, /\(\+\d+ more\)$/);
  assert.match(m.metadata_dropped, /^x-k/);
  assert.equal(m.processed_by.length, 64);
});

test('fitList stays linear: 10,000 items', () => {
  // Quadratic re-joining took 11.6 s here and blocked the event loop past the heartbeat timeout.
  const items = Array.from({ length: 10_000 }, (_, i) => `user${i}@example.com`);
  const out = fitList(items, 1000);
  assert.ok(out.length <= 1000);
  const kept = out.split(',').filter((x) => x.includes('@')).length;
  assert.equal(kept + Number(/\+(\d+) more/.exec(out)![1]), 10_000);
  assert.ok(fitList(items, 1000 + 40).split(',').length >= kept, 'more room never keeps fewer');
});

test('processed_run names the run that tagged, is ours (replaced, never kept from before) and survives full metadata', () => {
  const record = {
    status: 'delivered' as const,
    processedAt: 1,
    processedBy: 'w',
    processedRun: '01a22c85-f789-7258-baac-cd3d99f33853',
  };
  assert.equal(
    buildMetadata({ processed_run: 'an-earlier-run' }, record).processed_run,
    '01a22c85-f789-7258-baac-cd3d99f33853',
  );
  assert.equal(
    buildMetadata({ processed_run: 'an-earlier-run' }, { ...record, processedRun: undefined }).processed_run,
    undefined,
    'a tag written outside a run names none',
  );
  const full = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-k${i}`, 'v'.repeat(60)]));
  const m = buildMetadata(full, record);
  assert.ok(size(m) <= S3_METADATA_LIMIT);
  assert.equal(m.processed_run, record.processedRun);
});

test('a deferred tag is not processed: processed=false, the arrival kept; the final tag replaces it', () => {
  const deferred = buildMetadata(
    { 'x-amz-meta-source': 'ses' },
    {
      status: 'deferred',
      processedAt: 1_700_000_100,
      processedBy: 'w',
      error: 'delivering to 1 recipient(s): 451 try later',
      arrivedAt: 1_700_000_000,
    },
  );
  assert.equal(deferred.processed, 'false');
  assert.equal(deferred.status, 'deferred');
  assert.equal(deferred.arrived_at, '1700000000');
  assert.equal(isProcessed(deferred), false);
  // Even a deferred status with processed=true (another writer) is not taken for processed.
  assert.equal(isProcessed({ ...deferred, processed: 'true' }), false);
  const final = buildMetadata(deferred, { status: 'delivered', processedAt: 1_700_000_200, processedBy: 'w' });
  assert.equal(final.processed, 'true');
  assert.equal(final.arrived_at, undefined, 'ours, so replaced, not kept as other metadata');
  assert.equal(isProcessed(final), true);
  assert.equal(isProcessed(undefined), false);
});
