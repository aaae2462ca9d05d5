// The outbox store (lib/outbox/) and migration 006 against the real PostgreSQL: drafts are
// validated before anything is queued, state changes are conditional (a cancel after sending
// began is refused), the submission markers and per-recipient replies are kept, the rate is
// counted per account, and one user can never see or change another user's outbox.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createStore, type Store } from '../../lib/sync-store';
import { createOutboxStore, OutboxValidationError, pendingRecipients, type OutboxStore } from '../../lib/outbox';
import { createTestDatabase, type TestDatabase } from './sync-fixtures';

describe('outbox store', () => {
  let db: TestDatabase;
  let store: Store;
  let outbox: OutboxStore;
  let userId: string;
  let otherUserId: string;
  let accountId: string;

  before(async () => {
    db = await createTestDatabase();
    store = createStore(db.pool);
    outbox = createOutboxStore(db.pool, { maxAttachmentBytes: 1000, maxRecipients: 5 });
    userId = (await store.ensureUser('sender@example.org')).id;
    otherUserId = (await store.ensureUser('other@example.org')).id;
    accountId = randomUUID();
    await store.addAccount(userId, {
      id: accountId,
      imapHost: 'imap.example.org',
      imapPort: 993,
      imapTls: true,
      imapUser: 'Alice@Example.org',
      passwordEncrypted: 'v1:x',
      syncIntervalSeconds: 60,
    });
  });
  after(async () => {
    await db?.drop();
  });

  it('creates a draft with normalised recipients and a fixed Message-ID in the sender domain', async () => {
    const d = await outbox.createDraft(userId, accountId, {
      to: 'Bob <Bob@Example.COM>, carol@example.com',
      cc: ['bob@example.com'],
      bcc: 'dave@example.net',
      subject: 'Hello',
      text: 'hi',
      attachments: [{ filename: 'a.txt', contentType: 'text/plain', size: 10, path: '/tmp/a.txt' }],
    });
    assert.equal(d.status, 'draft');
    assert.equal(d.from.address, 'alice@example.org', 'From defaults to the account login when it is an address');
    assert.deepEqual(d.to, [{ address: 'bob@example.com', name: 'Bob' }, { address: 'carol@example.com' }]);
    assert.deepEqual(d.cc, [], 'a duplicate is kept once, in its first field');
    assert.deepEqual(d.bcc, [{ address: 'dave@example.net' }]);
    assert.match(d.messageId, /^<[0-9a-f-]{36}@example\.org>$/);
    assert.equal(d.built, false);
    const updated = await outbox.updateDraft(userId, d.id, { subject: 'Hello again', cc: 'erin@example.com' });
    assert.equal(updated?.subject, 'Hello again');
    assert.deepEqual(updated?.to, d.to, 'recipients not given are kept, with their names');
    assert.deepEqual(updated?.cc, [{ address: 'erin@example.com' }]);
    assert.equal(updated?.messageId, d.messageId, 'the Message-ID never changes');
  });

  it('refuses invalid recipients, oversize attachments and unknown accounts, naming each problem', async () => {
    await assert.rejects(
      outbox.createDraft(userId, accountId, {
        to: 'good@example.com, not an address, x@nodot',
        attachments: [{ filename: 'big.pdf', contentType: 'application/pdf', size: 5000, path: '/tmp/big.pdf' }],
      }),
      (err: unknown) => {
        assert.ok(err instanceof OutboxValidationError);
        assert.match(err.message, /not an address/);
        assert.match(err.message, /x@nodot/);
        assert.match(err.message, /big\.pdf .*over the limit of 1000 bytes/);
        return true;
      },
    );
    await assert.rejects(outbox.createDraft(userId, accountId, {}), /no recipient/);
    await assert.rejects(
      outbox.createDraft(userId, accountId, { to: ['a@x.org', 'b@x.org', 'c@x.org', 'd@x.org', 'e@x.org', 'f@x.org'] }),
      /6 recipients, more than the limit of 5/,
    );
    await assert.rejects(outbox.createDraft(otherUserId, accountId, { to: 'a@x.org' }), /does not exist/);
    assert.equal((await outbox.list(userId)).length, 1, 'nothing was queued');
  });

  it('schedules, reschedules and cancels; cancel is refused once sending began', async () => {
    const d = await outbox.createDraft(userId, accountId, { to: 'a@example.com', text: 'x' });
    const at = new Date(Date.now() + 60_000);
    const s = await outbox.markScheduled(userId, d.id, at, `send/${accountId}/${d.id}`);
    assert.equal(s?.status, 'scheduled');
    assert.equal(await outbox.updateDraft(userId, d.id, { subject: 'late' }), null, 'a scheduled message is no draft');
    const later = new Date(at.getTime() + 60_000);
    assert.equal((await outbox.reschedule(userId, d.id, later))?.sendAt?.getTime(), later.getTime());
    assert.equal((await outbox.markSending(userId, d.id))?.status, 'sending');
    assert.equal(await outbox.cancel(userId, d.id), null, 'too late to undo');
    assert.equal(await outbox.reschedule(userId, d.id, at), null);

    const c = await outbox.createDraft(userId, accountId, { to: 'a@example.com' });
    await outbox.markScheduled(userId, c.id, at, 'wf');
    assert.equal((await outbox.cancel(userId, c.id, 'undo'))?.status, 'cancelled');
    assert.equal(
      (await outbox.markSending(userId, c.id))?.status,
      'cancelled',
      'the timer firing after a cancel sends nothing',
    );
    assert.equal(await outbox.recordResult(userId, c.id, 'sent'), null, 'a cancelled message stays cancelled');
  });

  it('keeps submission markers and per-recipient replies; a final reply is never overwritten', async () => {
    const d = await outbox.createDraft(userId, accountId, { to: 'a@example.com, b@example.com', cc: 'c@example.com' });
    await outbox.markScheduled(userId, d.id, new Date(), 'wf2');
    await outbox.markSending(userId, d.id);
    const built = await outbox.storeRaw(userId, d.id, Buffer.from('first'), null);
    assert.equal(built?.raw.toString(), 'first');
    const again = await outbox.storeRaw(userId, d.id, Buffer.from('second'), null);
    assert.equal(again?.raw.toString(), 'first', 'built once');

    const a1 = await outbox.recordSubmitAttempt(userId, d.id, { perMinute: 100 });
    assert.deepEqual(a1 && a1.started && [a1.attempt, a1.wasPending], [1, false]);
    const a2 = await outbox.recordSubmitAttempt(userId, d.id, { perMinute: 100 });
    assert.ok(a2?.started && a2.wasPending, 'an attempt left open is reported to the next one');
    const at = new Date().toISOString();
    const r = await outbox.recordSubmitted(userId, d.id, {
      results: {
        'a@example.com': { status: 'accepted', code: 250, reply: '250 OK', at },
        'b@example.com': { status: 'failed', code: 550, reply: '550 no such user', at },
        'c@example.com': { status: 'deferred', code: 451, reply: '451 try later', at },
      },
      response: '250 queued as X',
    });
    assert.ok(r?.submittedAt);
    assert.deepEqual(pendingRecipients(r!), ['c@example.com']);
    const r2 = await outbox.recordSubmitted(userId, d.id, {
      results: {
        'a@example.com': { status: 'deferred', code: 421, reply: 'nope', at },
        'c@example.com': { status: 'accepted', code: 250, reply: '250 OK', at },
      },
    });
    assert.equal(r2?.recipientResults['a@example.com'].status, 'accepted');
    assert.equal(r2?.recipientResults['c@example.com'].status, 'accepted');
    assert.equal(r2?.smtpResponse, '250 queued as X');
    assert.equal((await outbox.recordSentCopy(userId, d.id, 'Sent'))?.sentCopyFolder, 'Sent');
    const done = await outbox.recordResult(userId, d.id, 'partial', '1 of 3 recipients refused');
    assert.equal(done?.status, 'partial');
    assert.ok(done?.finishedAt);
  });

  it('counts the send rate per account', async () => {
    const acc = randomUUID();
    await store.addAccount(userId, {
      id: acc,
      imapHost: 'imap.example.org',
      imapPort: 993,
      imapTls: true,
      imapUser: 'rate@example.org',
      passwordEncrypted: 'v1:x',
      syncIntervalSeconds: 60,
    });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await outbox.createDraft(userId, acc, { to: 'a@example.com' })).id);
    assert.ok((await outbox.recordSubmitAttempt(userId, ids[0], { perMinute: 2 }))?.started);
    assert.ok((await outbox.recordSubmitAttempt(userId, ids[1], { perMinute: 2 }))?.started);
    const third = await outbox.recordSubmitAttempt(userId, ids[2], { perMinute: 2 });
    assert.ok(third && !third.started && third.retryAfterMs > 0 && third.retryAfterMs <= 60_000);
    const row = await outbox.get(userId, ids[2]);
    assert.equal(row?.submitAttempts, 0, 'a refused attempt opens nothing');
  });

  it('stores SMTP settings per account', async () => {
    assert.deepEqual(await outbox.getSmtpSettings(userId, accountId), {
      host: null,
      port: null,
      tls: 'starttls',
      sentFolder: null,
      fromAddress: null,
    });
    const s = await outbox.updateSmtpSettings(userId, accountId, {
      host: 'smtp.example.org',
      port: 465,
      tls: 'implicit',
      sentFolder: 'Sent',
      fromAddress: 'Alice <ALICE@example.org>',
    });
    assert.deepEqual(s, {
      host: 'smtp.example.org',
      port: 465,
      tls: 'implicit',
      sentFolder: 'Sent',
      fromAddress: 'alice@example.org',
    });
    await assert.rejects(outbox.updateSmtpSettings(userId, accountId, { port: 70000 }), /SMTP port 70000/);
    assert.equal(await outbox.getSmtpSettings(otherUserId, accountId), null);
    assert.equal(await outbox.updateSmtpSettings(otherUserId, accountId, { host: 'evil' }), null);
  });

  it('never shows or changes another user’s outbox', async () => {
    const d = await outbox.createDraft(userId, accountId, { to: 'a@example.com' });
    const other = otherUserId;
    assert.equal(await outbox.get(other, d.id), null);
    assert.deepEqual(await outbox.list(other), []);
    assert.equal(await outbox.updateDraft(other, d.id, { subject: 'x' }), null);
    assert.equal(await outbox.markScheduled(other, d.id, new Date(), 'x'), null);
    assert.equal(await outbox.cancel(other, d.id), null);
    assert.equal(await outbox.reschedule(other, d.id, new Date()), null);
    assert.equal(await outbox.markSending(other, d.id), null);
    assert.equal(await outbox.getRaw(other, d.id), null);
    assert.equal(await outbox.storeRaw(other, d.id, Buffer.from('x'), null), null);
    assert.equal(await outbox.recordSubmitAttempt(other, d.id, { perMinute: 10 }), null);
    assert.equal(await outbox.recordSubmitted(other, d.id, { results: {} }), null);
    assert.equal(await outbox.recordSentCopy(other, d.id, 'Sent'), null);
    assert.equal(await outbox.recordResult(other, d.id, 'failed'), null);
    assert.equal(await outbox.get(other, 'not-a-uuid'), null);
    const mine = await outbox.get(userId, d.id);
    assert.equal(mine?.status, 'draft');
    assert.equal(mine?.subject, '');
    // Every function of the store is checked above (a new one must be added here).
    const checked = [
      'createDraft',
      'updateDraft',
      'get',
      'list',
      'markScheduled',
      'cancel',
      'reschedule',
      'markSending',
      'getRaw',
      'storeRaw',
      'recordSubmitAttempt',
      'recordSubmitted',
      'recordSentCopy',
      'recordResult',
      'getSmtpSettings',
      'updateSmtpSettings',
    ];
    assert.deepEqual(Object.keys(outbox).sort(), checked.sort());
  });
});
