// What one SMTP submission meant per recipient (lib/smtp/submit-outcome.ts): the verdicts the
// outbox records and the retry loop acts on, from every shape of nodemailer answer.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { outcomeOfError, outcomeOfSent } from '../../lib/smtp/submit-outcome';
import type { SmtpError } from '../../lib/smtp/transports';

const err = (fields: Partial<SmtpError>): SmtpError => Object.assign(new Error(fields.message ?? 'x'), fields);

describe('submit outcome', () => {
  test('accepted, refused for good (5xx) and deferred (4xx) recipients of one transaction', () => {
    const o = outcomeOfSent(['a@x.org', 'B@x.org', 'c@x.org'], {
      accepted: ['a@x.org'],
      rejected: ['b@x.org', 'c@x.org'],
      rejectedErrors: [
        err({ recipient: 'b@x.org', responseCode: 550, response: '550 5.1.1 no such user' }),
        err({ recipient: 'c@x.org', responseCode: 452, response: '452 4.2.2 mailbox full' }),
      ],
      response: '250 2.0.0 queued as ABC',
    });
    assert.deepEqual(o, {
      kind: 'replied',
      response: '250 2.0.0 queued as ABC',
      recipients: [
        { address: 'a@x.org', status: 'accepted', code: 250, reply: '250 2.0.0 queued as ABC' },
        { address: 'B@x.org', status: 'failed', code: 550, reply: '550 5.1.1 no such user' },
        { address: 'c@x.org', status: 'deferred', code: 452, reply: '452 4.2.2 mailbox full' },
      ],
    });
  });

  test('every recipient refused at RCPT TO: each with its own reply', () => {
    const o = outcomeOfError(
      ['a@x.org', 'b@x.org'],
      err({
        code: 'EENVELOPE',
        responseCode: 451,
        response: '451 later',
        rejectedErrors: [
          err({ recipient: 'a@x.org', responseCode: 550, response: '550 gone' }),
          err({ recipient: 'b@x.org', responseCode: 451, response: '451 later' }),
        ],
      }),
    );
    assert.equal(o.kind, 'replied');
    assert.deepEqual(o.kind === 'replied' && o.recipients.map((r) => [r.status, r.code]), [
      ['failed', 550],
      ['deferred', 451],
    ]);
  });

  test('the message refused after DATA: all its recipients share the reply', () => {
    const five = outcomeOfError(
      ['a@x.org', 'b@x.org'],
      err({ code: 'EMESSAGE', responseCode: 554, response: '554 5.7.1 spam' }),
    );
    assert.ok(
      five.kind === 'replied' && five.recipients.every((r) => r.status === 'failed' && r.reply === '554 5.7.1 spam'),
    );
    const four = outcomeOfError(['a@x.org'], err({ code: 'EMESSAGE', responseCode: 421, response: '421 closing' }));
    assert.ok(four.kind === 'replied' && four.recipients[0].status === 'deferred');
  });

  test('login refused: 5xx for good, 4xx temporary', () => {
    assert.deepEqual(
      outcomeOfError(['a@x.org'], err({ code: 'EAUTH', responseCode: 535, response: '535 5.7.8 bad credentials' })),
      {
        kind: 'auth',
        temporary: false,
        code: 535,
        reply: '535 5.7.8 bad credentials',
      },
    );
    const t = outcomeOfError(['a@x.org'], err({ code: 'EAUTH', responseCode: 454, response: '454 4.7.0 try later' }));
    assert.ok(t.kind === 'auth' && t.temporary);
  });

  test('no reply at all (connection lost, timeout): unknown, the server may have it', () => {
    const o = outcomeOfError(['a@x.org'], err({ code: 'ETIMEDOUT', message: 'Timeout' }));
    assert.deepEqual(o, { kind: 'unknown', reply: 'Timeout (ETIMEDOUT)' });
    assert.equal(
      outcomeOfError(['a@x.org'], err({ code: 'ECONNECTION', message: 'Connection closed' })).kind,
      'unknown',
    );
  });
});
