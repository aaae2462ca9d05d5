import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  automaticMail,
  autoReplyDecision,
  autoReplySubject,
  type MailFacts,
  outsideForwardDecision,
  ruleIds,
} from '../../lib/mail/autoreply';
import { readHeaderBlock } from '../../lib/mail/headers';
import type { SesVerdicts } from '../../contracts/inbound';

const facts = (head: string, extra: Partial<MailFacts> = {}): MailFacts => ({
  block: readHeaderBlock(head + '\r\n\r\nbody'),
  partTypes: [],
  ...extra,
});
const base =
  'Return-Path: <alice@sender.example>\r\nFrom: Alice <alice@sender.example>\r\nTo: bob@example.com\r\nSubject: hello';

test('a personal message gets a reply to its Return-Path (the envelope sender)', () => {
  assert.deepEqual(autoReplyDecision(facts(base)), { reply: true, to: 'alice@sender.example' });
  assert.deepEqual(autoReplyDecision(facts(base.replace('<alice@', '<alice+bounce@'))), {
    reply: true,
    to: 'alice+bounce@sender.example',
  });
});

test('no Return-Path, or one that is not one address: no reply (never to an address assembled from text)', () => {
  assert.deepEqual(autoReplyDecision(facts('From: alice@sender.example\r\nTo: bob@example.com')), {
    reply: false,
    reason: 'no Return-Path: the envelope sender is unknown',
    rule: 'no-return-path',
  });
  for (const rp of ['<alice sender.example>', '<a@b@c.example>', '<"x y"@sender.example>', '<root@localhost>']) {
    assert.equal(autoReplyDecision(facts(`Return-Path: ${rp}\r\nFrom: alice@sender.example`)).reply, false, rp);
  }
});

for (const [name, extra] of [
  ['Auto-Submitted', 'Auto-Submitted: auto-replied'],
  ['Auto-Submitted auto-generated', 'Auto-Submitted: auto-generated'],
  ['Auto-Submitted with a comment', 'Auto-Submitted: auto-notified (vacation)'],
  ['Precedence bulk', 'Precedence: bulk'],
  ['Precedence list', 'Precedence: list'],
  ['Precedence junk', 'Precedence: junk'],
  ['Precedence auto_reply', 'Precedence: auto_reply'],
  ['List-Id', 'List-Id: <news.sender.example>'],
  ['List-Unsubscribe', 'List-Unsubscribe: <mailto:u@sender.example>'],
  ['List-Help', 'List-Help: <mailto:help@sender.example>'],
  ['X-Mailman-Version', 'X-Mailman-Version: 2.1.9'],
  ['X-ML-Name', 'X-ML-Name: dev'],
  ['X-MLServer', 'X-MLServer: fml'],
  ['X-Loop', 'X-Loop: list@sender.example'],
  ['X-Listname', 'X-Listname: dev'],
  ['Errors-To', 'Errors-To: bounces@sender.example'],
  ['null Return-Path', 'Return-Path: <>'],
  ['X-Auto-Response-Suppress OOF', 'X-Auto-Response-Suppress: DR, OOF'],
  ['X-Auto-Response-Suppress All', 'X-Auto-Response-Suppress: All'],
  ['X-Autoreply', 'X-Autoreply: yes'],
  ['X-Autorespond', 'X-Autorespond: vacation'],
  ['our own marker', 'X-Mailroom-Processed: w1'],
  ['the old worker marker', 'X-SES-Worker-Processed: w1'],
  ['DSN', 'Content-Type: multipart/report; report-type=delivery-status; boundary=x'],
  ['MDN', 'Content-Type: multipart/report; report-type=disposition-notification; boundary=x'],
  ['ARF', 'Content-Type: multipart/report; report-type=feedback-report; boundary=x'],
  ['X-Failed-Recipients', 'X-Failed-Recipients: a@b.example'],
  ['upstream spam flag', 'X-Spam-Flag: YES'],
  ['challenge-response', 'X-Boxbe-Id: 1'],
] as const) {
  test(`no reply: ${name}`, () => {
    const d = autoReplyDecision(facts(`${extra}\r\n${base}`));
    assert.equal(d.reply, false);
  });
}

test('no reply to system, list and no-reply senders (Return-Path or From)', () => {
  for (const from of [
    'MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@x.example',
    'scomp@aol.example',
    'MAILER-DAEMON@x.example',
    'noreply@x.example',
    'no-reply@x.example',
    'do-not-reply@x.example',
    'donotreply@x.example',
    'postmaster@x.example',
    'list-request@x.example',
    'bounces@x.example',
    'bounces+1234@x.example',
    'owner-dev@x.example',
    'dev-owner@x.example',
    'dev-bounces@x.example',
    'dev-admin@x.example',
    'listserv@x.example',
    'majordomo@x.example',
    'no-reply-billing@x.example',
  ]) {
    assert.equal(
      autoReplyDecision(facts(`Return-Path: <${from}>\r\nFrom: ${from}\r\nTo: bob@example.com`)).reply,
      false,
      from,
    );
    assert.equal(
      autoReplyDecision(facts(`Return-Path: <alice@sender.example>\r\nFrom: ${from}\r\nTo: bob@example.com`)).reply,
      false,
      `From: ${from}`,
    );
  }
});

test('subjects and texts of auto-replies that set no header', () => {
  for (const subject of [
    'Delivery delayed: hello',
    'Client TOS Notification',
    'Abuse report for 192.0.2.1',
    'Out of Office: hello',
    'Automatic reply: hello',
    'AUTO: Smith is out of the office',
    '[Automatyczna odpowiedź] test',
    'Abwesenheitsnotiz: hallo',
    'Réponse automatique : bonjour',
    'Read: hello',
    'Undeliverable: hello',
  ]) {
    assert.equal(autoReplyDecision(facts(base.replace('Subject: hello', `Subject: ${subject}`))).reply, false, subject);
  }
  for (const text of [
    'Feedback-Type: abuse User-Agent: SomeISP-FBL/1.0',
    'Estoy fuera de la oficina hasta el lunes.',
    'Ik ben tot 3 mei afwezig.',
    'This is an automated message, please do not reply.',
    'I am currently out of the office until Monday.',
    'Ich bin bis 3. Mai nicht im Büro.',
    'This message was created automatically by mail delivery software.',
  ]) {
    assert.equal(autoReplyDecision(facts(base, { bodyText: text })).reply, false, text);
  }
});

test('Auto-Submitted: no is a human message', () => {
  assert.equal(autoReplyDecision(facts('Auto-Submitted: no\r\n' + base)).reply, true);
});

test('SES verdicts: spam, virus and failed authentication stop replies; unknown or passing verdicts change nothing', () => {
  const v = (x: Partial<SesVerdicts>): SesVerdicts => ({ source: 'notification', ...x });
  for (const bad of [
    { spam: 'FAIL' },
    { virus: 'FAIL' },
    { spf: 'FAIL' },
    { dkim: 'FAIL' },
    { dmarc: 'FAIL' },
  ] as const) {
    assert.equal(autoReplyDecision(facts(base, { verdicts: v(bad) })).reply, false, JSON.stringify(bad));
  }
  assert.equal(
    autoReplyDecision(
      facts(base, { verdicts: v({ spam: 'PASS', virus: 'PASS', spf: 'GRAY', dkim: 'PASS', dmarc: 'GRAY' }) }),
    ).reply,
    true,
  );
  assert.equal(autoReplyDecision(facts(base)).reply, true);
});

test('a header block read with doubt is never answered', () => {
  const d = autoReplyDecision({ block: readHeaderBlock(base + '\r\nthis is not a header\r\n\r\nbody'), partTypes: [] });
  assert.equal(d.reply, false);
  assert.equal(d.reply === false && d.rule, 'header-doubt');
});

test('automatic mail: reports win over bulk, and the class decides outside forwards', () => {
  const dsn = facts(
    'Auto-Submitted: auto-generated\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\r\n' +
      base,
  );
  assert.equal(automaticMail(dsn)?.class, 'report');
  const list = facts('List-Id: <dev.sender.example>\r\n' + base);
  assert.deepEqual(automaticMail(list), {
    rule: 'list-headers',
    reason: 'list-id header (mailing list)',
    class: 'bulk',
  });
  assert.equal(automaticMail(facts(base)), undefined);

  const pass: SesVerdicts = {
    source: 'notification',
    spam: 'PASS',
    virus: 'PASS',
    spf: 'PASS',
    dkim: 'PASS',
    dmarc: 'PASS',
  };
  assert.deepEqual(outsideForwardDecision(facts(base)), { allowed: true });
  assert.equal(outsideForwardDecision(list).allowed, false, 'unauthenticated list mail stays in');
  assert.deepEqual(outsideForwardDecision({ ...list, verdicts: pass }), { allowed: true });
  assert.equal(outsideForwardDecision({ ...dsn, verdicts: pass }).allowed, false, 'reports never go out');
  assert.equal(outsideForwardDecision(facts(base, { verdicts: { ...pass, spam: 'FAIL' } })).allowed, false);
  assert.equal(
    outsideForwardDecision({ block: readHeaderBlock('From: a@b.example\r\nFrom: c@d.example\r\n\r\nx'), partTypes: [] })
      .allowed,
    false,
  );
});

test('docs/auto-replies.md describes every rule', () => {
  const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'auto-replies.md'), 'utf8');
  const missing = [...ruleIds(), 'not-addressed', 'self', 'once-per-period'].filter((id) => !doc.includes(`\`${id}\``));
  assert.deepEqual(missing, []);
});

test('subject', () => {
  assert.equal(autoReplySubject('Lunch?'), 'Auto: Lunch?');
  assert.equal(autoReplySubject(undefined), 'Auto: (no subject)');
});
