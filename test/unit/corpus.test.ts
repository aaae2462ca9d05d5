// Real mail from many servers, broken parts included: every message gets a verdict
// (never a crash), every DSN is seen as a bounce, and no bounce or automatic reply is
// ever answered with an out-of-office reply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { summarizeEmail } from '../../lib/summarize';
import { corpusFiles } from '../support/corpus';

const ref = (key: string) => ({ domain: 'example.com', bucket: 'example-com-emails', key, envelopeRecipients: ['user@example.com'] });

// The few messages in bounces/ that are ordinary (spam) mail, not automatic replies.
const HUMAN = new Set(['bounces/spam-bogus-email-in-report.msg', 'bounces/spam-lots-of-bogus-addresses.msg', 'bounces/spam-with-badly-parsed-email.msg', 'bounces/spam-with-image.msg']);
// Automatic replies that are not DSNs.
const AUTO_NOT_DSN = new Set(['bounces/aol-vacation.msg', 'bounces/autoreply.msg', 'bounces/bluebottle.msg', 'bounces/polish-autoreply.msg', 'bounces/warning-5.msg', 'bounces/warning-6.msg']);

test('every corpus message gets a verdict, never a crash', async () => {
  const files = corpusFiles();
  assert.ok(files.length >= 200, `expected the ~230-message corpus, found ${files.length}`);
  for (const f of files) {
    const r = await summarizeEmail(readFileSync(f.path), ref(f.name));
    if (r.kind === 'terminal') assert.ok(r.reason.length > 0, f.name);
    else assert.deepEqual(r.summary.recipients, ['user@example.com'], f.name);
  }
});

test('every DSN in the corpus is recognised as a bounce', async () => {
  const dsns = [...corpusFiles('bounces').filter((f) => !HUMAN.has(f.name) && !AUTO_NOT_DSN.has(f.name)), ...corpusFiles('mail-gem/multipart_report_emails')];
  assert.ok(dsns.length > 100);
  const missed: string[] = [];
  for (const f of dsns) {
    const r = await summarizeEmail(readFileSync(f.path), ref(f.name));
    if (r.kind !== 'email' || !r.summary.bounce) missed.push(f.name);
  }
  assert.deepEqual(missed, []);
});

test('no bounce or automatic reply ever gets an out-of-office reply', async () => {
  const automatic = [...corpusFiles('bounces').filter((f) => !HUMAN.has(f.name)), ...corpusFiles('mail-gem/multipart_report_emails')];
  const answered: string[] = [];
  for (const f of automatic) {
    const r = await summarizeEmail(readFileSync(f.path), ref(f.name));
    if (r.kind === 'email' && 'to' in r.summary.autoReply) answered.push(`${f.name} -> ${r.summary.autoReply.to}`);
  }
  assert.deepEqual(answered, []);
});

test('RFC 3464 reports name the failed recipients', async () => {
  const r = await summarizeEmail(readFileSync(corpusFiles('mail-gem/multipart_report_emails').find((f) => f.name.endsWith('multi_address_bounce1.eml'))!.path), ref('x'));
  assert.equal(r.kind, 'email');
  if (r.kind === 'email') assert.ok(r.summary.bounce!.recipients.length >= 2, JSON.stringify(r.summary.bounce));
});
