// Sending from a user's account against the real servers: PostgreSQL (the outbox), the local
// SMTP target requiring AUTH (PLAIN/LOGIN, and XOAUTH2 checked at the local OAuth2 server),
// Dovecot (the Sent folder, the duplicate check) and the Temporal dev server running the
// sendMessage workflow on the send worker. One copy arrives per recipient, the Sent folder has
// it (\Seen), the outbox row says sent with each recipient's reply; an attempt recorded without
// its acceptance is not sent again when the message is in Sent; a scheduled send survives a
// worker restart; a 5xx refuses one recipient (partial); a refused SMTP login fails the message.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ImapFlow } from 'imapflow';
import { createSendActivities } from '../../activities/send';
import { SEND_STATUS } from '../../contracts/search-attributes';
import { sendWorkflowId, type SendOptions } from '../../contracts/send';
import { loadSendConfig } from '../../lib/config/send';
import { createOutboxStore, type OutboxStore } from '../../lib/outbox';
import { createStore, type Account, type Store } from '../../lib/sync-store';
import { addAccountWithOAuth2, addAccountWithPassword } from '../../lib/sync-store/credentials';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { startLocalOAuth2Server, type LocalOAuth2Server } from '../../scripts/stack/oauth2';
import { startSmtpTarget, type SmtpTarget } from '../../scripts/stack/smtp-target';
import { createSendWorker } from '../../workers/send';
import { sendMessage } from '../../workflows/sendMessage';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  imapSession,
  quietTemporalLogs,
  recordSyncHistory,
  startTestDovecot,
  syncWorkflowBundle,
  waitFor,
  type TestDatabase,
  type TestDovecot,
} from './sync-fixtures';

const keyEntry = generateKeyEntry('k1');
const keyring = parseKeyring(keyEntry);
const taskQueue = `send-${randomBytes(4).toString('hex')}`;
const ALICE = { user: 'alice@example.test', password: `pw-${randomBytes(6).toString('hex')}` };
const OLIVIA = { user: 'olivia@example.test', password: `not-used-${randomBytes(6).toString('hex')}` };
const CLIENT = { clientId: 'mailroom-send-test', clientSecret: `secret-${randomBytes(8).toString('hex')}` };
const OPTIONS: SendOptions = { initialRetryIntervalSeconds: 1, maxRetryIntervalSeconds: 2, maxAgeSeconds: 120 };

describe('sending from a user account (SMTP with AUTH, Dovecot Sent folder, PostgreSQL outbox)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dovecot: TestDovecot;
  let oauth: LocalOAuth2Server;
  let smtp: SmtpTarget;
  let smtpDir: string;
  let store: Store;
  let outbox: OutboxStore;
  let worker: { stop(): Promise<void> } | undefined;
  let userId: string;
  let alice: Account;
  let olivia: Account;

  async function startWorker() {
    const w = await createSendWorker(env.nativeConnection, env.namespace ?? 'default', {
      env: { ...process.env, DATABASE_URL: db.url, MAILROOM_SECRET_KEYS: keyEntry, SEND_TASK_QUEUE: taskQueue },
      dataConverter: null,
      pool: db.pool,
      workflowBundle: await syncWorkflowBundle(),
      config: { ratePerMinute: 100 },
    });
    const running = w.run();
    return {
      async stop() {
        w.shutdown();
        await running.catch(() => {});
      },
    };
  }

  before(async () => {
    quietTemporalLogs();
    oauth = await startLocalOAuth2Server({ clients: [CLIENT] });
    smtpDir = mkdtempSync(join(tmpdir(), 'mailroom-send-smtp-'));
    [env, db, dovecot, smtp] = await Promise.all([
      startTestTemporal(),
      createTestDatabase(),
      startTestDovecot([ALICE, OLIVIA], { oauth2: { introspectionUrl: oauth.userinfoUrl } }),
      startSmtpTarget({
        directory: smtpDir,
        localDomains: [],
        mailboxes: [],
        auth: { users: [ALICE], oauth2UserinfoUrl: oauth.userinfoUrl },
      }),
    ]);
    store = createStore(db.pool);
    outbox = createOutboxStore(db.pool);
    userId = (await store.ensureUser('owner@example.com')).id;
    const imap = { imapHost: '127.0.0.1', imapPort: dovecot.imapPort, imapTls: false, syncIntervalSeconds: 300 };
    alice = await addAccountWithPassword(store, keyring, userId, { ...imap, imapUser: ALICE.user }, ALICE.password);
    olivia = await addAccountWithOAuth2(
      store,
      keyring,
      userId,
      { ...imap, imapUser: OLIVIA.user },
      { provider: 'custom', tokenUrl: oauth.tokenUrl, clientId: CLIENT.clientId, scopes: 'imap smtp' },
      { refreshToken: oauth.grant(OLIVIA.user), clientSecret: CLIENT.clientSecret },
    );
    for (const a of [alice, olivia])
      await outbox.updateSmtpSettings(userId, a.id, {
        host: '127.0.0.1',
        port: smtp.port,
        tls: 'none',
        sentFolder: 'Sent',
      });
    worker = await startWorker();
  });

  after(async () => {
    await worker?.stop();
    await env?.teardown();
    await smtp?.stop();
    await dovecot?.cleanup();
    await oauth?.stop();
    await db?.drop();
    if (smtpDir) rmSync(smtpDir, { recursive: true, force: true });
  });

  /** A draft scheduled `inMs` from now, with its workflow started. */
  async function send(account: Account, content: Parameters<OutboxStore['createDraft']>[2], inMs = 0) {
    const draft = await outbox.createDraft(userId, account.id, content);
    const workflowId = sendWorkflowId(account.id, draft.id);
    await outbox.markScheduled(userId, draft.id, new Date(Date.now() + inMs), workflowId);
    const handle = await env.client.workflow.start(sendMessage, {
      taskQueue,
      workflowId,
      args: [{ userId, accountId: account.id, outboxId: draft.id, options: OPTIONS }],
    });
    return { draft, handle };
  }

  async function copiesOf(messageId: string) {
    return (await smtp.deliveries()).filter((d) => d.messageId === messageId);
  }

  async function inSent(user: { user: string; password: string }, messageId: string) {
    const imap: ImapFlow = await imapSession(dovecot, user.user, user.password);
    try {
      const lock = await imap.getMailboxLock('Sent').catch(() => null);
      if (!lock) return [];
      try {
        const uids = (await imap.search({ header: { 'message-id': messageId } }, { uid: true })) || [];
        const out: { flags: string[]; bcc: boolean }[] = [];
        for (const uid of uids) {
          const m = await imap.fetchOne(String(uid), { flags: true, source: true }, { uid: true });
          if (m) out.push({ flags: [...(m.flags ?? [])], bcc: /^Bcc:/im.test(m.source?.toString() ?? '') });
        }
        return out;
      } finally {
        lock.release();
      }
    } finally {
      await imap.logout().catch(() => imap.close());
    }
  }

  it('a password account sends through SMTP AUTH: one copy per recipient, Sent copy, row sent with replies', async () => {
    const { draft, handle } = await send(alice, {
      to: 'Bob <bob@remote.example>',
      cc: 'carol@remote.example',
      bcc: 'dave@remote.example',
      subject: 'Quarterly numbers',
      text: 'See attached.',
      html: '<p>See attached.</p>',
    });
    const result = await handle.result();
    assert.equal(result.status, 'sent', result.reason ?? '');
    await recordSyncHistory(env.client, handle.workflowId, undefined, 'send-sent');
    assert.equal(result.recipientsAccepted, 3);
    assert.equal(result.sentFolder, 'Sent');
    const copies = await copiesOf(draft.messageId);
    assert.deepEqual(copies.map((c) => c.recipient).sort(), [
      'bob@remote.example',
      'carol@remote.example',
      'dave@remote.example',
    ]);
    const delivered = (await smtp.messagesFor('bob@remote.example')).find((m) => m.includes(draft.messageId))!;
    assert.doesNotMatch(delivered, /^Bcc:/im, 'Bcc is not in the submitted message');
    assert.match(delivered, /^From: alice@example\.test/im);
    assert.ok(smtp.logins.some((l) => l.user === ALICE.user && l.ok && l.method !== 'XOAUTH2'));
    const sent = await inSent(ALICE, draft.messageId);
    assert.equal(sent.length, 1, 'one Sent copy');
    assert.ok(sent[0].flags.includes('\\Seen'));
    assert.ok(sent[0].bcc, 'the Sent copy keeps Bcc for the sender');
    const row = (await outbox.get(userId, draft.id))!;
    assert.equal(row.status, 'sent');
    assert.equal(row.sentCopyFolder, 'Sent');
    assert.ok(row.submittedAt && !row.submitPending);
    assert.deepEqual(
      Object.entries(row.recipientResults)
        .map(([a, r]) => [a, r.status, r.code])
        .sort(),
      [
        ['bob@remote.example', 'accepted', 250],
        ['carol@remote.example', 'accepted', 250],
        ['dave@remote.example', 'accepted', 250],
      ],
    );
    // Nothing of the message in the workflow's history.
    const history = JSON.stringify((await handle.fetchHistory()).events);
    for (const secret of ['bob@remote.example', 'Quarterly', 'See attached', ALICE.password])
      assert.ok(!history.includes(secret), `${secret} is not in history`);
  });

  it('an OAuth2 account sends with XOAUTH2 (the same access token as IMAP)', async () => {
    const { draft, handle } = await send(olivia, { to: 'erin@remote.example', subject: 'Hi', text: 'hello' });
    const result = await handle.result();
    assert.equal(result.status, 'sent', result.reason ?? '');
    assert.equal((await copiesOf(draft.messageId)).length, 1);
    assert.ok(smtp.logins.some((l) => l.user === OLIVIA.user && l.method === 'XOAUTH2' && l.ok));
    assert.equal((await inSent(OLIVIA, draft.messageId)).length, 1);
    const history = JSON.stringify((await handle.fetchHistory()).events);
    for (const token of oauth.issued.accessTokens) assert.ok(!history.includes(token), 'no token in history');
  });

  it('an attempt recorded without its acceptance, and the message already in Sent: not sent again', async () => {
    const activities = createSendActivities({
      pool: db.pool,
      keyring,
      config: { ...loadSendConfig({}), ratePerMinute: 100 },
    });
    // The worker died after the server took it (a provider that files sent mail itself put it in Sent).
    const draft = await outbox.createDraft(userId, alice.id, { to: 'frank@remote.example', text: 'once' });
    const workflowId = sendWorkflowId(alice.id, draft.id);
    await outbox.markScheduled(userId, draft.id, new Date(), workflowId);
    await outbox.markSending(userId, draft.id);
    const ref = { userId, accountId: alice.id, outboxId: draft.id };
    await activities.buildMessage(ref);
    assert.ok((await outbox.recordSubmitAttempt(userId, draft.id, { perMinute: 100 }))?.started);
    const imap = await imapSession(dovecot, ALICE.user, ALICE.password);
    try {
      await imap.append('Sent', (await outbox.getRaw(userId, draft.id))!.raw, ['\\Seen']);
    } finally {
      await imap.logout();
    }
    const handle = await env.client.workflow.start(sendMessage, {
      taskQueue,
      workflowId,
      args: [{ ...ref, options: OPTIONS }],
    });
    const result = await handle.result();
    assert.equal(result.status, 'sent');
    assert.equal((await copiesOf(draft.messageId)).length, 0, 'not submitted again');
    const row = (await outbox.get(userId, draft.id))!;
    assert.equal(row.submitRecovery, 'found_in_sent');
    assert.match(row.recipientResults['frank@remote.example'].reply, /found in folder "Sent"/);
    assert.equal((await inSent(ALICE, draft.messageId)).length, 1, 'no second Sent copy');

    // The same without a copy in Sent: submitted again, once.
    const other = await outbox.createDraft(userId, alice.id, { to: 'grace@remote.example', text: 'again' });
    const otherId = sendWorkflowId(alice.id, other.id);
    await outbox.markScheduled(userId, other.id, new Date(), otherId);
    await outbox.markSending(userId, other.id);
    await outbox.recordSubmitAttempt(userId, other.id, { perMinute: 100 });
    const h2 = await env.client.workflow.start(sendMessage, {
      taskQueue,
      workflowId: otherId,
      args: [{ userId, accountId: alice.id, outboxId: other.id, options: OPTIONS }],
    });
    assert.equal((await h2.result()).status, 'sent');
    assert.equal((await copiesOf(other.messageId)).length, 1);
    assert.equal((await outbox.get(userId, other.id))!.submitRecovery, 'resubmitted');
  });

  it('the server took it but the reply never came (connection dropped after DATA): found in Sent, not sent twice', async () => {
    // The provider files sent mail itself (here: the hook puts it in Sent), then the connection
    // drops before the 250 reaches the client: the attempt stays open, the retry looks in Sent.
    const draft = await outbox.createDraft(userId, alice.id, { to: 'kim@remote.example', text: 'dropped' });
    let dropped = 0;
    smtp.onBeforeAccept(async (info) => {
      if (!info.raw.toString('latin1').includes(draft.messageId) || dropped++) return;
      const imap = await imapSession(dovecot, ALICE.user, ALICE.password);
      try {
        await imap.append('Sent', info.raw, ['\\Seen']);
      } finally {
        await imap.logout();
      }
      await smtp.refuse(true);
      void smtp.refuse(false);
    });
    try {
      const workflowId = sendWorkflowId(alice.id, draft.id);
      await outbox.markScheduled(userId, draft.id, new Date(), workflowId);
      const handle = await env.client.workflow.start(sendMessage, {
        taskQueue,
        workflowId,
        args: [{ userId, accountId: alice.id, outboxId: draft.id, options: OPTIONS }],
      });
      const result = await handle.result();
      assert.equal(result.status, 'sent');
      assert.equal(dropped, 1, 'the connection was dropped once');
      assert.equal((await copiesOf(draft.messageId)).length, 1, 'one copy: the retry did not submit again');
      const row = (await outbox.get(userId, draft.id))!;
      assert.equal(row.submitRecovery, 'found_in_sent');
      assert.equal(row.submitAttempts, 1);
      assert.equal((await inSent(ALICE, draft.messageId)).length, 1, 'and no second Sent copy appended');
    } finally {
      smtp.onBeforeAccept(null);
    }
  });

  it('XOAUTH2 with a token the OAuth2 server did not issue is refused by the SMTP target', async () => {
    const nodemailer = await import('nodemailer');
    const t = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtp.port,
      secure: false,
      ignoreTLS: true,
      auth: { type: 'OAuth2', user: OLIVIA.user, accessToken: 'forged-token' },
    });
    try {
      await assert.rejects(
        t.sendMail({ envelope: { from: OLIVIA.user, to: ['x@remote.example'] }, raw: 'Subject: x\r\n\r\nx\r\n' }),
        (e: { code?: string }) => e.code === 'EAUTH',
      );
    } finally {
      t.close();
    }
    assert.ok(smtp.logins.some((l) => l.user === OLIVIA.user && l.method === 'XOAUTH2' && !l.ok));
  });

  it('a scheduled send survives a worker restart and fires', async () => {
    const { draft, handle } = await send(alice, { to: 'heidi@remote.example', text: 'later' }, 4000);
    await waitFor('the workflow waits on its timer', async () => {
      const { typedSearchAttributes } = await handle.describe();
      return typedSearchAttributes.get(SEND_STATUS) === 'scheduled';
    });
    await worker!.stop();
    worker = undefined;
    assert.equal((await outbox.get(userId, draft.id))!.status, 'scheduled');
    // The send time passes with no worker running.
    await waitFor('send_at passed', async () => Date.now() > draft.createdAt.getTime() + 5000, 30_000);
    assert.equal((await copiesOf(draft.messageId)).length, 0);
    worker = await startWorker();
    const result = await handle.result();
    assert.equal(result.status, 'sent');
    assert.equal((await copiesOf(draft.messageId)).length, 1);
  });

  it('a 5xx for one recipient ends it failed with the reply; the others are sent (partial)', async () => {
    smtp.setRecipientFailure('nobody@remote.example', {
      code: 550,
      message: '5.1.1 <nobody@remote.example>: no such user',
    });
    smtp.setRecipientFailure('busy@remote.example', { code: 451, times: 1 });
    try {
      const { draft, handle } = await send(alice, {
        to: 'ivan@remote.example, nobody@remote.example, busy@remote.example',
        text: 'x',
      });
      const result = await handle.result();
      assert.equal(result.status, 'partial');
      await recordSyncHistory(env.client, handle.workflowId, undefined, 'send-partial-4xx-retried');
      assert.equal(result.recipientsAccepted, 2);
      assert.equal(result.recipientsFailed, 1);
      const row = (await outbox.get(userId, draft.id))!;
      assert.equal(row.recipientResults['nobody@remote.example'].status, 'failed');
      assert.equal(row.recipientResults['nobody@remote.example'].code, 550);
      assert.match(row.recipientResults['nobody@remote.example'].reply, /no such user/);
      assert.equal(row.recipientResults['busy@remote.example'].status, 'accepted', 'a 4xx is retried');
      assert.match(row.statusReason ?? '', /2 of 3 recipient\(s\) accepted, 1 refused/);
      assert.equal((await copiesOf(draft.messageId)).length, 2, 'one copy each for the accepted ones');
      assert.equal((await inSent(ALICE, draft.messageId)).length, 1);
      // The replies quote the addresses; the row keeps them, the history does not.
      const history = JSON.stringify((await handle.fetchHistory()).events);
      for (const a of ['nobody@remote.example', 'busy@remote.example', 'ivan@remote.example', ALICE.user])
        assert.ok(!history.includes(a), `${a} is not in history`);
      assert.match(result.reason ?? '', /550 5\.1\.1 <address>: no such user/);
    } finally {
      smtp.setRecipientFailure('nobody@remote.example', null);
      smtp.setRecipientFailure('busy@remote.example', null);
    }
  });

  it('a refused SMTP login fails the message saying so, and nothing is sent', async () => {
    // An account whose IMAP login works but which the SMTP server does not know.
    const mallory = await addAccountWithPassword(
      store,
      keyring,
      userId,
      {
        imapHost: '127.0.0.1',
        imapPort: dovecot.imapPort,
        imapTls: false,
        imapUser: 'mallory@example.test',
        syncIntervalSeconds: 300,
      },
      'wrong',
    );
    await outbox.updateSmtpSettings(userId, mallory.id, { host: '127.0.0.1', port: smtp.port, tls: 'none' });
    const { draft, handle } = await send(mallory, { to: 'judy@remote.example', text: 'x' });
    const result = await handle.result();
    assert.equal(result.status, 'failed');
    assert.match(result.reason ?? '', /refused the login of account .*535/);
    assert.doesNotMatch(result.reason ?? '', /mallory@/, 'no address in the result');
    assert.equal((await copiesOf(draft.messageId)).length, 0);
    assert.equal(
      (await store.getAccount(userId, mallory.id))!.status,
      'ok',
      'the account is not marked needs_attention',
    );
  });
});
