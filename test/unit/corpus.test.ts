// Real mail from many servers, broken parts included, each rewritten with CRLF, LF, bare-CR
// and mixed line endings: every message gets a verdict (never a crash) and the same
// decisions in every style; every DSN is seen as a bounce, and no bounce or automatic reply
// is ever answered with an out-of-office reply or forwarded outside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readHeaderBlock } from '../../lib/mail/headers';
import type { FetchResult } from '../../contracts/inbound';
import { summarizeEmail } from '../../lib/mail/summarize';
import { corpusFiles } from '../support/corpus';
import { LINE_ENDINGS, type LineEnding, withLineEndings } from '../support/line-endings';

const ref = (key: string) => ({
  domain: 'example.com',
  bucket: 'example-com-emails',
  key,
  envelopeRecipients: ['user@example.com'],
});

// The few messages in bounces/ that are ordinary (spam) mail, not automatic replies.
const HUMAN = new Set([
  'bounces/spam-bogus-email-in-report.msg',
  'bounces/spam-lots-of-bogus-addresses.msg',
  'bounces/spam-with-badly-parsed-email.msg',
  'bounces/spam-with-image.msg',
]);
// Automatic replies that are not DSNs.
const AUTO_NOT_DSN = new Set([
  'bounces/aol-vacation.msg',
  'bounces/autoreply.msg',
  'bounces/bluebottle.msg',
  'bounces/polish-autoreply.msg',
  'bounces/warning-5.msg',
  'bounces/warning-6.msg',
]);

const files = corpusFiles();
const variants = new Map<string, Map<LineEnding, Buffer>>(
  files.map((f) => {
    const raw = readFileSync(f.path);
    return [f.name, new Map(LINE_ENDINGS.map((style) => [style, withLineEndings(raw, style, f.name.length)]))];
  }),
);
const automatic = [
  ...files.filter((f) => f.name.startsWith('bounces/') && !HUMAN.has(f.name)),
  ...corpusFiles('mail-gem/multipart_report_emails'),
];

/** The decisions that must not depend on line endings (size does, naturally). */
function decisions(r: FetchResult) {
  if (r.kind === 'terminal') return { terminal: r.status, reason: r.reason };
  const { size: _size, ...rest } = r.summary;
  return rest;
}

test('every corpus message gets a verdict in every line-ending style, never a crash', async () => {
  assert.ok(files.length >= 200, `expected the ~230-message corpus, found ${files.length}`);
  for (const f of files) {
    for (const [style, raw] of variants.get(f.name)!) {
      const r = await summarizeEmail(raw, ref(f.name));
      if (r.kind === 'terminal') assert.ok(r.reason.length > 0, `${f.name} (${style})`);
      else assert.deepEqual(r.summary.recipients, ['user@example.com'], `${f.name} (${style})`);
    }
  }
});

test('property: CRLF, LF, bare CR and mixed endings give the same header fields and the same decisions', async () => {
  const differ: string[] = [];
  for (const f of files) {
    const byStyle = variants.get(f.name)!;
    const headers = readHeaderBlock(byStyle.get('crlf')!).headers;
    const recipientsFromHeaders = { domain: 'example.com', bucket: 'b', key: f.name }; // no envelope: To/Cc/Received decide
    const want = decisions(await summarizeEmail(byStyle.get('crlf')!, ref(f.name)));
    const wantHeaders = decisions(await summarizeEmail(byStyle.get('crlf')!, recipientsFromHeaders));
    for (const style of LINE_ENDINGS) {
      const raw = byStyle.get(style)!;
      try {
        assert.deepEqual(readHeaderBlock(raw).headers, headers);
        assert.deepEqual(decisions(await summarizeEmail(raw, ref(f.name))), want);
        assert.deepEqual(decisions(await summarizeEmail(raw, recipientsFromHeaders)), wantHeaders);
      } catch (err) {
        differ.push(`${f.name} (${style}): ${(err as Error).message.slice(0, 300)}`);
      }
    }
  }
  assert.deepEqual(differ, []);
});

test('every DSN in the corpus is recognised as a bounce, in every style', async () => {
  const dsns = [
    ...corpusFiles('bounces').filter((f) => !HUMAN.has(f.name) && !AUTO_NOT_DSN.has(f.name)),
    ...corpusFiles('mail-gem/multipart_report_emails'),
  ];
  assert.ok(dsns.length > 100);
  const missed: string[] = [];
  for (const f of dsns) {
    for (const [style, raw] of variants.get(f.name)!) {
      const r = await summarizeEmail(raw, ref(f.name));
      if (r.kind !== 'email' || !r.summary.bounce) missed.push(`${f.name} (${style})`);
    }
  }
  assert.deepEqual(missed, []);
});

test('no bounce or automatic reply is ever answered or forwarded outside, in any style', async () => {
  assert.ok(automatic.length > 120);
  const answered: string[] = [];
  for (const f of automatic) {
    for (const [style, raw] of variants.get(f.name)!) {
      const r = await summarizeEmail(raw, ref(f.name));
      if (r.kind !== 'email') continue;
      if ('to' in r.summary.autoReply) answered.push(`${f.name} (${style}) -> reply to ${r.summary.autoReply.to}`);
      if (!r.summary.outsideForward) answered.push(`${f.name} (${style}) -> may be forwarded outside`);
      if (!r.summary.automatic) answered.push(`${f.name} (${style}) -> not seen as automatic mail`);
    }
  }
  assert.deepEqual(answered, []);
});

test('the check can fail: ordinary mail in the corpus is answered', async () => {
  const human = files.filter((f) => f.name.startsWith('mail-gem/plain_emails/'));
  let replies = 0;
  for (const f of human) {
    const r = await summarizeEmail(variants.get(f.name)!.get('cr')!, ref(f.name));
    if (r.kind === 'email' && 'to' in r.summary.autoReply) replies++;
  }
  assert.ok(replies >= 5, `only ${replies} plain messages would be answered`);
});

test('RFC 3464 reports name the failed recipients', async () => {
  const r = await summarizeEmail(
    readFileSync(
      corpusFiles('mail-gem/multipart_report_emails').find((f) => f.name.endsWith('multi_address_bounce1.eml'))!.path,
    ),
    ref('x'),
  );
  assert.equal(r.kind, 'email');
  if (r.kind === 'email') assert.ok(r.summary.bounce!.recipients.length >= 2, JSON.stringify(r.summary.bounce));
});
