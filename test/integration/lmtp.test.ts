// LMTP_ENABLED: delivery straight into Dovecot over LMTP, with per-recipient answers,
// read back over IMAP as a user would see it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { rawMail } from '../../scripts/stack/demo-emails';
import { type DovecotServer, startDovecot } from '../../scripts/stack/dovecot';
import { type InboundStack, startInboundStack } from '../support/inbound-stack';

const ALICE = { user: 'alice@example.com', password: 'alice-pw' };
const BOB = { user: 'bob@example.com', password: 'bob-pw' };
let dovecot: DovecotServer;
let stack: InboundStack;
let dir: string;

async function subjectsIn(user: { user: string; password: string }): Promise<string[]> {
  const imap = new ImapFlow({
    host: '127.0.0.1',
    port: dovecot.imapPort,
    secure: false,
    auth: { user: user.user, pass: user.password },
    logger: false,
  });
  await imap.connect();
  try {
    const lock = await imap.getMailboxLock('INBOX');
    try {
      const out: string[] = [];
      for await (const m of imap.fetch('1:*', { envelope: true })) out.push(m.envelope?.subject ?? '');
      return out;
    } finally {
      lock.release();
    }
  } catch {
    return [];
  } finally {
    await imap.logout();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailroom-lmtp-'));
  dovecot = await startDovecot({ directory: dir, users: [ALICE, BOB] });
  stack = await startInboundStack({ mailboxes: [], lmtp: { host: '127.0.0.1', port: dovecot.lmtpPort } });
});
after(async () => {
  await stack?.stop();
  await dovecot?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('LMTP delivers per recipient into Dovecot; an unknown user is an invalid inbox', async () => {
  const key = await stack.put(
    rawMail({ from: 'x@sender.example', to: [ALICE.user, BOB.user, 'nobody@example.com'], subject: 'Over LMTP' }),
  );
  const result = await stack.run({ key });
  assert.equal(result.status, 'partial');
  const outcome = Object.fromEntries(result.recipients.map((r) => [r.recipient, r.outcome]));
  assert.deepEqual(outcome, { [ALICE.user]: 'delivered', [BOB.user]: 'delivered', 'nobody@example.com': 'invalid' });
  assert.deepEqual(await subjectsIn(ALICE), ['Over LMTP']);
  assert.deepEqual(await subjectsIn(BOB), ['Over LMTP']);
  assert.equal((await stack.metadata(key))?.invalid_inboxes, 'nobody@example.com');
  assert.equal(stack.mail.connections, 0, 'the SMTP path was not used');
});
