// scripts/stack/dovecot.ts: the private Dovecot the sync tests (and LMTP delivery tests)
// run against. LMTP delivers into the user's INBOX as seen over IMAP; unknown recipients
// are refused at RCPT TO with 550 5.1.1; users can be added while it runs.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { imapSession, startTestDovecot, type TestDovecot } from './sync-fixtures';

const ERIN = { user: 'erin@example.test', password: 'erin-secret' };

describe('startDovecot', () => {
  let dovecot: TestDovecot;
  before(async () => {
    dovecot = await startTestDovecot([ERIN]);
  });
  after(async () => {
    await dovecot?.cleanup();
  });

  const lmtp = () =>
    nodemailer.createTransport({ host: '127.0.0.1', port: dovecot.lmtpPort, lmtp: true } as SMTPTransport.Options);

  it('delivers over LMTP into the INBOX seen by IMAP', async () => {
    const info = await lmtp().sendMail({
      from: 'sender@example.org',
      to: ERIN.user,
      subject: 'Over LMTP',
      text: 'hello',
      messageId: '<lmtp-1@test>',
    });
    assert.deepEqual(info.accepted, [ERIN.user]);
    const imap = await imapSession(dovecot, ERIN.user, ERIN.password);
    try {
      const box = await imap.mailboxOpen('INBOX', { readOnly: true });
      assert.equal(box.exists, 1);
      assert.ok(box.highestModseq !== undefined, 'CONDSTORE is on');
      assert.ok(imap.capabilities.has('QRESYNC'));
      const msg = await imap.fetchOne('1', { envelope: true });
      assert.equal(msg && msg.envelope?.subject, 'Over LMTP');
      assert.equal(msg && msg.envelope?.messageId, '<lmtp-1@test>');
    } finally {
      await imap.logout();
    }
    const maildir = dovecot.mailboxPath(ERIN.user);
    assert.ok(existsSync(maildir));
    assert.equal(readdirSync(join(maildir, 'new')).length + readdirSync(join(maildir, 'cur')).length, 1);
  });

  it('rejects an unknown recipient with 550 5.1.1 at RCPT TO', async () => {
    await assert.rejects(
      lmtp().sendMail({ from: 'sender@example.org', to: 'nobody@example.test', subject: 'x', text: 'x' }),
      (err: Error & { responseCode?: number; response?: string }) => {
        assert.equal(err.responseCode, 550);
        assert.match(err.response ?? '', /^550 5\.1\.1 /);
        return true;
      },
    );
  });

  it('adds users while running', async () => {
    const frank = { user: 'frank@example.test', password: 'frank-secret' };
    await dovecot.addUser(frank);
    await lmtp().sendMail({ from: 'sender@example.org', to: frank.user, subject: 'Welcome', text: 'hi' });
    const imap = await imapSession(dovecot, frank.user, frank.password);
    assert.equal(((await imap.status('INBOX', { messages: true })) || undefined)?.messages, 1);
    await imap.logout();
    await assert.rejects(
      imapSession(dovecot, frank.user, 'wrong'),
      (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true,
    );
  });
});
