import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readHeaderBlock } from '../../lib/mail/headers';
import {
  authenticated,
  compactVerdicts,
  failedAuthentication,
  mergeVerdicts,
  verdictsFromHeaders,
  verdictsFromReceipt,
} from '../../lib/mail/ses-verdicts';

// The block SES puts on top of a stored message, then the sender's own header.
const sesStored = (verdicts: { spam?: string; virus?: string; auth?: string; spf?: string }, sender = '') =>
  [
    'Return-Path: <alice@sender.example>',
    'Received: from mail.sender.example (mail.sender.example [192.0.2.1])',
    ' by inbound-smtp.eu-west-1.amazonaws.com with SMTP id abc for bob@example.com;',
    ' Mon, 01 Jan 2024 00:00:00 +0000 (UTC)',
    ...(verdicts.spam ? [`X-SES-Spam-Verdict: ${verdicts.spam}`] : []),
    ...(verdicts.virus ? [`X-SES-Virus-Verdict: ${verdicts.virus}`] : []),
    ...(verdicts.spf
      ? [
          `Received-SPF: ${verdicts.spf} (spfCheck: domain of sender.example designates 192.0.2.1 as permitted sender) client-ip=192.0.2.1;`,
        ]
      : []),
    ...(verdicts.auth ? ['Authentication-Results: amazonses.com;', ` ${verdicts.auth}`] : []),
    'X-SES-RECEIPT: AEFBQUFBQUFB',
    sender,
    'From: alice@sender.example',
    'To: bob@example.com',
    '',
    'hi',
  ]
    .filter((l) => l !== null)
    .join('\r\n');

test('verdicts from the block SES writes on top of the stored message', () => {
  const v = verdictsFromHeaders(
    readHeaderBlock(
      sesStored(
        {
          spam: 'PASS',
          virus: 'FAIL',
          spf: 'pass',
          auth: 'spf=pass (spfCheck: ...) smtp.mailfrom=alice@sender.example; dkim=fail header.i=@sender.example; dmarc=none header.from=sender.example;',
        },
        'X-Other: 1',
      ),
    ),
  );
  assert.deepEqual(v, { spam: 'PASS', virus: 'FAIL', spf: 'PASS', dkim: 'FAIL', dmarc: 'GRAY', source: 'headers' });
});

test('the same fields written by the sender further down prove nothing', () => {
  const forged = [
    'Return-Path: <x@evil.example>',
    'Received: from mx.evil.example by inbound-smtp.us-east-1.amazonaws.com with SMTP id q;',
    'From: x@evil.example',
    'X-SES-Spam-Verdict: PASS',
    'Authentication-Results: amazonses.com; dkim=pass; dmarc=pass',
    '',
    'x',
  ].join('\r\n');
  assert.equal(verdictsFromHeaders(readHeaderBlock(forged)), undefined);
  const notSes = ['Received: from a by mx.other.example', 'X-SES-Spam-Verdict: FAIL', '', 'x'].join('\r\n');
  assert.equal(verdictsFromHeaders(readHeaderBlock(notSes)), undefined, 'only below SES own Received line');
  const otherAuthServ = sesStored({ auth: 'dkim=pass' }).replace(
    'Authentication-Results: amazonses.com;',
    'Authentication-Results: mx.google.com;',
  );
  assert.equal(verdictsFromHeaders(readHeaderBlock(otherAuthServ)), undefined);
});

test('notification first, header second; helpers', () => {
  const n = verdictsFromReceipt({ spamVerdict: { status: 'FAIL' }, dkimVerdict: { status: 'PASS' } });
  const h = verdictsFromHeaders(readHeaderBlock(sesStored({ spam: 'PASS', virus: 'PASS' })));
  assert.deepEqual(mergeVerdicts(n, h), { spam: 'FAIL', virus: 'PASS', dkim: 'PASS', source: 'notification+headers' });
  assert.equal(mergeVerdicts(undefined, undefined), undefined);
  assert.deepEqual(failedAuthentication({ source: 'headers', spf: 'FAIL', dmarc: 'FAIL', dkim: 'PASS' }), [
    'SPF',
    'DMARC',
  ]);
  assert.equal(authenticated({ source: 'headers', dkim: 'PASS', dmarc: 'GRAY' }), true);
  assert.equal(authenticated({ source: 'headers', dkim: 'PASS', dmarc: 'FAIL' }), false);
  assert.equal(authenticated(undefined), false);
  assert.equal(
    compactVerdicts({ source: 'notification', spam: 'PASS', virus: 'PASS', spf: 'PASS', dkim: 'FAIL', dmarc: 'GRAY' }),
    'spam=PASS virus=PASS spf=PASS dkim=FAIL dmarc=GRAY',
  );
});
