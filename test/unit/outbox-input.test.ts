import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../lib/cli';
import { draftRequestProblems, MAX_ATTACHMENTS, safeFilename } from '../../lib/outbox/commands';
import { draftFromEml, draftFromJson } from '../../lib/outbox/draft-file';
import { MAX_DELAY_MS, OutboxInputError, parseSendTime } from '../../lib/outbox/send-time';
import { atOption, checkDraftOptions, hasDraftOptions, outboxIdOption } from '../../starters/outbox-common';
import { smtpSettingsFromOptions } from '../../starters/smtp-options';

const NOW = new Date('2026-12-07T10:00:00.000Z');

test('send time: a delay from now in seconds, minutes, hours, days', () => {
  assert.equal(parseSendTime('+10m', NOW).toISOString(), '2026-12-07T10:10:00.000Z');
  assert.equal(parseSendTime('+90s', NOW).toISOString(), '2026-12-07T10:01:30.000Z');
  assert.equal(parseSendTime(' +2H ', NOW).toISOString(), '2026-12-07T12:00:00.000Z');
  assert.equal(parseSendTime('+1.5d', NOW).toISOString(), '2026-12-08T22:00:00.000Z');
  assert.equal(parseSendTime('+0s', NOW).toISOString(), NOW.toISOString());
});

test('send time: ISO 8601 with a zone, in its forms', () => {
  assert.equal(parseSendTime('2026-12-24T09:00:00Z', NOW).toISOString(), '2026-12-24T09:00:00.000Z');
  assert.equal(parseSendTime('2026-12-24T10:00+01:00', NOW).toISOString(), '2026-12-24T09:00:00.000Z');
  assert.equal(parseSendTime('2026-12-24T10:00:00+0100', NOW).toISOString(), '2026-12-24T09:00:00.000Z');
  assert.equal(parseSendTime('2026-12-24 04:00-05', NOW).toISOString(), '2026-12-24T09:00:00.000Z');
  assert.equal(parseSendTime('2026-12-24T09:00:00.250z', NOW).toISOString(), '2026-12-24T09:00:00.250Z');
});

test('send time: no zone is refused with the fix, not guessed', () => {
  assert.throws(
    () => parseSendTime('2026-12-24T09:00', NOW),
    (e: Error) => {
      assert.ok(e instanceof OutboxInputError);
      assert.match(e.message, /has no time zone: add one \(2026-12-24T09:00Z for UTC/);
      return true;
    },
  );
  assert.throws(() => parseSendTime('2026-12-24', NOW), /has no time zone: add one \(2026-12-24T09:00Z/);
});

test('send time: garbage, impossible dates, the past and the far future are refused', () => {
  for (const bad of ['tomorrow', '10m', '+10', '+-5m', '+10 weeks', '', '2026-13-45T99:00Z'])
    assert.throws(() => parseSendTime(bad, NOW), OutboxInputError, bad);
  assert.throws(() => parseSendTime('2026-12-07T09:00:00Z', NOW), /is in the past .*leave the time out to send now/);
  assert.throws(() => parseSendTime('+367d', NOW), /more than a year ahead/);
  assert.equal(
    parseSendTime(new Date(NOW.getTime() + MAX_DELAY_MS).toISOString(), NOW).getTime() - NOW.getTime(),
    MAX_DELAY_MS,
  );
});

test('send time: a moment within a minute in the past is now (a front end whose clock is behind)', () => {
  assert.equal(parseSendTime('2026-12-07T09:59:30Z', NOW).toISOString(), NOW.toISOString());
});

// ---- draft requests (lib/outbox/commands.ts, lib/outbox/draft-file.ts) -------------------

test('draft request: recipients go through the inbound parser; every bad one is named, by field', () => {
  assert.deepEqual(draftRequestProblems({ to: ['Ann <ann@example.com>, bob@example.org'], subject: 'Hi' }, 100), []);
  const problems = draftRequestProblems(
    { to: ['ann@example', 'ok@example.com'], cc: ['not an address'], subject: 'Hi' },
    100,
  );
  assert.equal(problems.length, 2, problems.join('\n'));
  assert.match(problems[0], /^to: "ann@example" is not a deliverable address/);
  assert.match(problems[1], /^cc: .*not an address/);
  assert.match(draftRequestProblems({ subject: 'Hi' }, 100).join(), /no recipient/);
  assert.match(
    draftRequestProblems({ to: ['a@x.org, b@x.org, c@x.org'], subject: 'Hi' }, 2).join(),
    /3 recipients, more than the limit of 2/,
  );
});

test('draft request: a subject is one line, and an empty message is refused', () => {
  assert.match(
    draftRequestProblems({ to: ['a@x.org'], subject: 'Hi\r\nBcc: victim@x.org' }, 100).join(),
    /subject: contains a line break/,
  );
  assert.match(draftRequestProblems({ to: ['a@x.org'], subject: '  ', text: ' ' }, 100).join(), /the message is empty/);
  assert.deepEqual(draftRequestProblems({ to: ['a@x.org'], attachments: [{ path: '/tmp/x' }] }, 100), []);
  const many = Array.from({ length: MAX_ATTACHMENTS + 1 }, (_, i) => ({ path: `/tmp/${i}` }));
  assert.match(draftRequestProblems({ to: ['a@x.org'], attachments: many }, 100).join(), /more than 50 per message/);
});

test('attachment filenames never carry a path or control characters', () => {
  assert.equal(safeFilename('../../etc/passwd'), 'passwd');
  assert.equal(safeFilename('C:\\Users\\ann\\report.pdf'), 'report.pdf');
  assert.equal(safeFilename('a\r\nb.txt'), 'a__b.txt');
  assert.equal(safeFilename('..'), 'attachment');
  assert.equal(safeFilename(''), 'attachment');
});

test('draft file (.json): the fields a front end sends, attachment paths relative to the file, unknown fields refused', () => {
  const d = draftFromJson(
    JSON.stringify({
      to: 'ann@example.com',
      cc: ['b@x.org'],
      subject: 'S',
      text: 'T',
      attachments: ['a.pdf', { path: '/abs/b.png', filename: 'pic.png' }],
    }),
    '/drafts',
  );
  assert.deepEqual(d.to, ['ann@example.com']);
  assert.deepEqual(d.cc, ['b@x.org']);
  assert.deepEqual(d.attachments, [{ path: '/drafts/a.pdf' }, { path: '/abs/b.png', filename: 'pic.png' }]);
  assert.throws(() => draftFromJson('{"to": "a@x.org", "form": "me"}', '/d'), /Unrecognized key.*form|form/);
  assert.throws(() => draftFromJson('{not json', '/d'), OutboxInputError);
  assert.throws(() => draftFromJson('{"to": 5}', '/d'), /to/);
});

test('draft file (.eml): recipients, subject, bodies and attachments; From, Date and Message-ID are not taken', async () => {
  const eml = [
    'From: someone@else.example',
    'To: "Doe, Ann" <ann@example.com>, bob@example.org',
    'Cc: carol@example.net',
    'Bcc: dan@example.net',
    'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=',
    'Message-ID: <old@else.example>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello there',
    '--b1',
    'Content-Type: application/pdf; name="r.pdf"',
    'Content-Disposition: attachment; filename="r.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from('%PDF-1.4 demo').toString('base64'),
    '--b1--',
    '',
  ].join('\r\n');
  const d = await draftFromEml(Buffer.from(eml));
  assert.deepEqual(d.to, ['"Doe, Ann" <ann@example.com>, bob@example.org']);
  assert.deepEqual(d.cc, ['carol@example.net']);
  assert.deepEqual(d.bcc, ['dan@example.net']);
  assert.equal(d.subject, 'Grüße');
  assert.equal(d.text?.trim(), 'Hello there');
  assert.equal(d.attachments?.length, 1);
  const a = d.attachments![0] as { filename: string; content: Buffer; contentType?: string };
  assert.equal(a.filename, 'r.pdf');
  assert.equal(a.contentType, 'application/pdf');
  assert.equal(a.content.toString(), '%PDF-1.4 demo');
  assert.equal('from' in d, false);
  // The one parser agrees: the quoted name with a comma is one recipient.
  assert.deepEqual(draftRequestProblems(d, 100), []);
});

// ---- the starters' option checks (starters/outbox-common.ts, starters/smtp-options.ts) ----

const noDraft = {
  to: [] as string[],
  cc: [] as string[],
  bcc: [] as string[],
  attach: [] as string[],
  subject: undefined,
  text: undefined,
  'text-file': undefined,
  'html-file': undefined,
  'from-file': undefined,
  'from-name': undefined,
};

test('draft options: which go together', () => {
  assert.equal(hasDraftOptions(noDraft), false);
  assert.equal(hasDraftOptions({ ...noDraft, subject: 'x' }), true);
  assert.throws(() => checkDraftOptions({ ...noDraft, subject: 'x' }), /no recipient: give --to/);
  assert.throws(
    () => checkDraftOptions({ ...noDraft, to: ['a@x.org'], text: 'a', 'text-file': 'b' }),
    /--text or --text-file, not both/,
  );
  assert.throws(
    () => checkDraftOptions({ ...noDraft, 'from-file': 'd.eml', to: ['a@x.org'], subject: 's' }),
    /--from-file holds the whole draft: leave out --to, --subject/,
  );
  assert.doesNotThrow(() => checkDraftOptions({ ...noDraft, 'from-file': 'd.json' }));
  for (const bad of [() => checkDraftOptions({ ...noDraft }), () => atOption('tomorrow'), () => outboxIdOption('42')])
    assert.throws(bad, UsageError);
});

test('--at is a usage error with the parser message; --id must be a UUID', () => {
  assert.throws(() => atOption('2026-12-24T09:00', NOW), /^UsageError: --at 2026-12-24T09:00 has no time zone/);
  assert.equal(atOption('+5s', NOW).toISOString(), '2026-12-07T10:00:05.000Z');
  assert.equal(outboxIdOption(' 0B5F7C4E-1234-4ABC-8DEF-0123456789AB '), '0b5f7c4e-1234-4abc-8def-0123456789ab');
});

test("SMTP options: host with its TLS mode's port, modes checked, --sent-folder and --no-sent-folder", () => {
  const none = {
    'smtp-host': undefined,
    'smtp-port': undefined,
    'smtp-tls': undefined,
    'sent-folder': undefined,
    'from-address': undefined,
  };
  assert.equal(smtpSettingsFromOptions(none), undefined);
  assert.deepEqual(smtpSettingsFromOptions({ ...none, 'smtp-host': 'smtp.example.com' }), {
    host: 'smtp.example.com',
    port: 587,
  });
  assert.deepEqual(smtpSettingsFromOptions({ ...none, 'smtp-host': 'smtp.example.com', 'smtp-tls': 'IMPLICIT' }), {
    host: 'smtp.example.com',
    tls: 'implicit',
    port: 465,
  });
  assert.deepEqual(smtpSettingsFromOptions({ ...none, 'smtp-port': '2525', 'sent-folder': 'Sent' }), {
    port: 2525,
    sentFolder: 'Sent',
  });
  assert.deepEqual(smtpSettingsFromOptions({ ...none, 'no-sent-folder': true }), { sentFolder: null });
  assert.throws(() => smtpSettingsFromOptions({ ...none, 'smtp-tls': 'ssl' }), /not one of starttls, implicit, none/);
  assert.throws(() => smtpSettingsFromOptions({ ...none, 'smtp-port': '99999' }), /not a TCP port/);
  assert.throws(() => smtpSettingsFromOptions({ ...none, 'from-address': 'me@' }), /not an email address/);
  assert.throws(() => smtpSettingsFromOptions({ ...none, 'sent-folder': 'Sent', 'no-sent-folder': true }), /not both/);
  assert.deepEqual(smtpSettingsFromOptions({ ...none, 'from-address': 'Me@Example.COM' }), {
    fromAddress: 'me@example.com',
  });
});
