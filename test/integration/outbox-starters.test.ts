// The outbox commands run as an operator runs them (child processes, the npm scripts' files),
// against PostgreSQL, the Temporal dev server with the send worker (workers/send.ts), Dovecot
// (the account's Sent folder) and the local SMTP target requiring AUTH: drafts are checked
// before anything is queued (a bad recipient or a missing attachment: exit 2 and no row), a
// send starts one workflow per message however often it is asked for and one copy arrives,
// cancel before the time means nothing arrives, reschedule moves the time, and a message past
// the point an action needs says so and changes nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createStore, type Store } from '../../lib/sync-store';
import { addAccountWithPassword } from '../../lib/sync-store/credentials';
import { generateKeyEntry, parseKeyring } from '../../lib/sync-store/crypto';
import { createOutboxStore, type OutboxStore } from '../../lib/outbox';
import { sendWorkflowId, type SendResult } from '../../contracts/send';
import { startSmtpTarget, type SmtpTarget } from '../../scripts/stack/smtp-target';
import { createSendWorker } from '../../workers/send';
import { startTestTemporal } from '../support/temporal';
import {
  createTestDatabase,
  imapSession,
  quietTemporalLogs,
  startTestDovecot,
  syncWorkflowBundle,
  type TestDatabase,
  type TestDovecot,
} from './sync-fixtures';

const ROOT = join(__dirname, '..', '..');
const SCRIPTS = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
const OWNER = 'sender@example.com';
/** The account's IMAP and SMTP login (Dovecot and the SMTP target know it). */
const LOGIN = { user: 'pat@example.test', password: `pw-${randomBytes(6).toString('hex')}` };
const keyEntry = generateKeyEntry('k1');
const taskQueue = `outbox-starters-${randomBytes(4).toString('hex')}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('outbox starters', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let store: Store;
  let outbox: OutboxStore;
  let userId: string;
  let accountId: string;
  let childEnv: NodeJS.ProcessEnv;
  let dir: string;
  let dovecot: TestDovecot;
  let smtp: SmtpTarget;
  let worker: { stop(): Promise<void> } | undefined;

  before(async () => {
    quietTemporalLogs();
    dir = mkdtempSync(join(tmpdir(), 'outbox-starters-'));
    [env, db, dovecot, smtp] = await Promise.all([
      startTestTemporal(),
      createTestDatabase(),
      startTestDovecot([LOGIN]),
      startSmtpTarget({ directory: join(dir, 'smtp'), localDomains: [], mailboxes: [], auth: { users: [LOGIN] } }),
    ]);
    store = createStore(db.pool);
    outbox = createOutboxStore(db.pool);
    userId = (await store.ensureUser(OWNER)).id;
    const account = await addAccountWithPassword(
      store,
      parseKeyring(keyEntry),
      userId,
      {
        imapHost: '127.0.0.1',
        imapPort: dovecot.imapPort,
        imapTls: false,
        imapUser: LOGIN.user,
        syncIntervalSeconds: 3600,
      },
      LOGIN.password,
    );
    accountId = account.id;
    const w = await createSendWorker(env.nativeConnection, env.namespace ?? 'default', {
      env: { ...process.env, DATABASE_URL: db.url, MAILROOM_SECRET_KEYS: keyEntry, SEND_TASK_QUEUE: taskQueue },
      dataConverter: null,
      pool: db.pool,
      workflowBundle: await syncWorkflowBundle(),
      config: { ratePerMinute: 0 },
    });
    const running = w.run();
    worker = {
      async stop() {
        w.shutdown();
        await running.catch(() => {});
      },
    };
    childEnv = {
      ...process.env,
      DATABASE_URL: db.url,
      SEND_TASK_QUEUE: taskQueue,
      SEND_ATTACHMENT_DIR: '',
      TEMPORAL_ADDRESS: env.address,
      MAILROOM_CODEC_KEYS: 'none',
      LOG_LEVEL: 'warn',
    };
    delete childEnv.SEND_ATTACHMENT_DIR;
  });

  after(async () => {
    await worker?.stop();
    await env?.teardown();
    await smtp?.stop();
    await dovecot?.cleanup();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the npm script's file the way `npm run <script> -- args` does (without npm's banner). */
  function npmRun(script: string, args: string[], input?: string): Promise<Run> {
    const command = SCRIPTS[script];
    assert.ok(command, `package.json has an npm script ${script}`);
    const [, ...argv] = command.split(' ');
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [...argv, ...args],
        { cwd: ROOT, env: childEnv, timeout: 90_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end(input ?? '');
    });
  }

  const rows = async () => outbox.list(userId, { limit: 1000 });
  const user = ['--user', OWNER];
  const from = [...user, '--account', () => accountId] as const;
  const args = (...a: (string | (() => string))[]) => a.map((x) => (typeof x === 'function' ? x() : x));

  it('every outbox command has --help naming its npm script, and refuses unknown options with exit 2', async () => {
    for (const script of ['mail:draft', 'mail:send', 'outbox:list', 'outbox:cancel', 'outbox:reschedule']) {
      const help = await npmRun(script, ['--help']);
      assert.equal(help.code, 0, `${script} --help: ${help.stderr}`);
      assert.match(help.stdout, new RegExp(`npm run ${script} -- \\[options\\]`));
      assert.equal(help.stdout.match(/^Exit codes:/gm)?.length, 1, `${script}: one exit-code line`);
      const bad = await npmRun(script, ['--nonsense']);
      assert.equal(bad.code, 2, `${script} --nonsense`);
      assert.match(bad.stderr, new RegExp(`npm run ${script} -- --help`));
    }
  });

  it('a bad recipient or a missing attachment: exit 2, every problem named, nothing queued', async () => {
    const badRecipient = await npmRun(
      'mail:draft',
      args(
        ...from,
        '--to',
        'ann@example.com, bob@localhost',
        '--cc',
        'not an address',
        '--subject',
        'Hi',
        '--text',
        'x',
      ),
    );
    assert.equal(badRecipient.code, 2, badRecipient.stderr);
    assert.match(badRecipient.stderr, /to: "bob@localhost" is not a deliverable address/);
    assert.match(badRecipient.stderr, /cc: .*not an address/);
    const missing = await npmRun(
      'mail:draft',
      args(...from, '--to', 'ann@example.com', '--subject', 'Hi', '--attach', join(dir, 'nope.pdf')),
    );
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(
      missing.stderr,
      new RegExp(`attachment ${join(dir, 'nope.pdf').replace(/[.]/g, '\\.')} does not exist`),
    );
    // The same refusal from mail:send drafting in one go: nothing queued, no workflow.
    const sendBad = await npmRun('mail:send', args(...from, '--to', 'bob@localhost', '--subject', 'Hi', '--text', 'x'));
    assert.equal(sendBad.code, 2, sendBad.stderr);
    const big = join(dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(2048));
    const tooBig = await (async () => {
      const saved = childEnv.SEND_MAX_ATTACHMENT_BYTES;
      childEnv.SEND_MAX_ATTACHMENT_BYTES = '1024';
      try {
        return await npmRun('mail:draft', args(...from, '--to', 'ann@example.com', '--attach', big));
      } finally {
        if (saved === undefined) delete childEnv.SEND_MAX_ATTACHMENT_BYTES;
        else childEnv.SEND_MAX_ATTACHMENT_BYTES = saved;
      }
    })();
    assert.equal(tooBig.code, 2, tooBig.stderr);
    assert.match(tooBig.stderr, /attachment big\.bin is 2\.0 KiB \(2048 bytes\), over the limit of 1\.0 KiB/);
    // Usage errors before anything connects.
    assert.equal((await npmRun('mail:draft', args(...from, '--subject', 'no recipient'))).code, 2);
    assert.equal((await npmRun('mail:send', args(...user, '--id', randomUUID(), '--at', '2026-12-24T09:00'))).code, 2);
    assert.deepEqual(await rows(), [], 'nothing was queued');
  });

  it('mail:draft stores a draft (options, attachments, .json and .eml files); outbox:list shows it', async () => {
    const attachment = join(dir, 'notes.txt');
    writeFileSync(attachment, 'the notes');
    const body = join(dir, 'body.txt');
    writeFileSync(body, 'Hello Ann,\nsee the notes.\n');
    const r = await npmRun(
      'mail:draft',
      args(
        ...from,
        ...['--to', '"Doe, Ann" <Ann@Example.com>', '--bcc', 'bob@example.org', '--subject', 'Notes'],
        ...['--text-file', body, '--attach', attachment],
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    const id = /^Draft ([0-9a-f-]{36}):/m.exec(r.stdout)?.[1];
    assert.ok(id, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(`Send it: npm run mail:send -- --user ${OWNER} --account ${accountId} --id ${id}`),
    );
    const d = (await outbox.get(userId, id))!;
    assert.equal(d.status, 'draft');
    assert.deepEqual(d.to, [{ address: 'ann@example.com', name: 'Doe, Ann' }]);
    assert.deepEqual(d.bcc, [{ address: 'bob@example.org' }]);
    assert.equal(d.text, 'Hello Ann,\nsee the notes.\n');
    assert.deepEqual(d.attachments, [{ filename: 'notes.txt', contentType: 'text/plain', size: 9, path: attachment }]);

    const json = join(dir, 'draft.json');
    writeFileSync(
      json,
      JSON.stringify({
        to: ['carol@example.net'],
        subject: 'From JSON',
        html: '<p>hi</p>',
        attachments: ['notes.txt'],
      }),
    );
    const fromJson = await npmRun('mail:draft', args(...from, '--from-file', json, '--json'));
    assert.equal(fromJson.code, 0, fromJson.stderr);
    const j = JSON.parse(fromJson.stdout) as {
      id: string;
      subject: string;
      attachments: { path: string }[];
      hasHtml: boolean;
    };
    assert.equal(j.subject, 'From JSON');
    assert.equal(j.hasHtml, true);
    assert.equal(j.attachments[0].path, attachment, 'attachment paths are relative to the .json file');

    const eml = join(dir, 'saved.eml');
    writeFileSync(
      eml,
      [
        'From: whoever@else.example',
        'To: dan@example.net',
        'Subject: From an eml',
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain',
        '',
        'body',
        '--b',
        'Content-Type: text/csv; name="t.csv"',
        'Content-Disposition: attachment; filename="t.csv"',
        '',
        'a,b',
        '--b--',
        '',
      ].join('\r\n'),
    );
    const fromEml = await npmRun('mail:draft', args(...from, '--from-file', eml, '--json'));
    assert.equal(fromEml.code, 0, fromEml.stderr);
    const e = JSON.parse(fromEml.stdout) as {
      id: string;
      from: { address: string };
      attachments: { path: string; filename: string }[];
    };
    assert.equal(e.from.address, LOGIN.user, 'the account sends it, not the From of the saved message');
    assert.equal(e.attachments[0].filename, 't.csv');
    // The .eml's attachment bytes were written where the worker reads them.
    assert.equal(readFileSync(e.attachments[0].path, 'utf8').trim(), 'a,b');
    rmSync(join(e.attachments[0].path, '..', '..'), { recursive: true, force: true });

    const list = await npmRun('outbox:list', [...user]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${id}  draft .*ann@example\\.com \\+1 +Notes$`, 'm'));
    const listed = await npmRun('outbox:list', [...user, '--status', 'draft', '--json']);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 3);
    assert.equal(
      (await npmRun('outbox:list', [...user, '--status', 'drafts'])).code,
      2,
      'a status that does not exist',
    );
  });

  it('mail:send refuses an account without an SMTP server (exit 1, still a draft); account:set gives it one', async () => {
    const [draft] = await outbox.list(userId, { status: 'draft', limit: 1 });
    const r = await npmRun('mail:send', [...user, '--id', draft.id]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /has no SMTP server to send through; set one first \(npm run account:set/);
    assert.equal((await outbox.get(userId, draft.id))?.status, 'draft');
    const set = await npmRun(
      'account:set',
      args(
        ...from,
        '--smtp-host',
        '127.0.0.1',
        '--smtp-port',
        String(smtp.port),
        '--smtp-tls',
        'none',
        '--sent-folder',
        'Sent',
      ),
    );
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, new RegExp(`sends through 127\\.0\\.0\\.1:${smtp.port} \\(no TLS\\), Sent copy in Sent`));
    const list = await npmRun('account:list', [...user]);
    assert.match(
      list.stdout,
      new RegExp(`^ {4}sends through 127\\.0\\.0\\.1:${smtp.port} \\(no TLS\\), Sent copy in Sent$`, 'm'),
    );
    assert.deepEqual(await outbox.getSmtpSettings(userId, accountId), {
      host: '127.0.0.1',
      port: smtp.port,
      tls: 'none',
      sentFolder: 'Sent',
      fromAddress: null,
    });
  });

  it('mail:send --at schedules one workflow however often it is asked; reschedule and cancel reach the database and the workflow', async () => {
    const [draft] = await outbox.list(userId, { status: 'draft', limit: 1 });
    const first = await npmRun('mail:send', args(...from, '--id', draft.id, '--at', '+1h'));
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^Scheduled: message .* goes out at \d{4}-/m);
    const workflowId = sendWorkflowId(accountId, draft.id);
    const scheduled = (await outbox.get(userId, draft.id))!;
    assert.equal(scheduled.status, 'scheduled');
    assert.equal(scheduled.workflowId, workflowId);
    assert.ok(scheduled.sendAt!.getTime() > Date.now() + 50 * 60_000);
    const again = await npmRun('mail:send', args(...from, '--id', draft.id, '--at', '+5m', '--json'));
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { started: boolean }).started, false, 'a second send starts nothing');
    assert.match(again.stderr, /--at ignored: .* was scheduled already; to move it: npm run outbox:reschedule/);
    assert.ok((await outbox.get(userId, draft.id))!.sendAt!.getTime() > Date.now() + 50 * 60_000, 'and moves nothing');
    const runs = [];
    for await (const w of env.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(w);
    assert.equal(runs.length, 1, 'one workflow for the message');
    const handle = env.client.workflow.getHandle(workflowId);

    const moved = await npmRun('outbox:reschedule', [...user, '--id', draft.id, '--at', '+2h']);
    assert.equal(moved.code, 0, moved.stderr);
    assert.ok((await outbox.get(userId, draft.id))!.sendAt!.getTime() > Date.now() + 110 * 60_000);
    const cancel = await npmRun('outbox:cancel', [...user, '--id', draft.id]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /Cancelled message .*; it will not be sent/);
    assert.equal((await outbox.get(userId, draft.id))?.status, 'cancelled');
    // Both reached the workflow (as signals in its history; it acts on them once a worker runs it).
    const signals = (await handle.fetchHistory()).events
      ?.filter((e) => e.workflowExecutionSignaledEventAttributes)
      .map((e) => e.workflowExecutionSignaledEventAttributes!.signalName);
    assert.deepEqual(signals, ['reschedule', 'cancel']);

    assert.equal((await npmRun('outbox:cancel', [...user, '--id', draft.id])).code, 0, 'cancelling again is a no-op');
    const resend = await npmRun('mail:send', [...user, '--id', draft.id]);
    assert.equal(resend.code, 1);
    assert.match(resend.stderr, /was cancelled; it is never sent/);
    const late = await npmRun('outbox:reschedule', [...user, '--id', draft.id, '--at', '+5m']);
    assert.equal(late.code, 1);
    assert.match(late.stderr, /cannot reschedule message .*: it was cancelled already.*Nothing was changed/);
  });

  /** The copies the SMTP server stored of a message (by its Message-ID), and those in the account's Sent folder. */
  async function copiesOf(messageId: string): Promise<{ delivered: number; inSent: number }> {
    const delivered = (await smtp.deliveries()).filter((d) => d.messageId === messageId).length;
    const imap = await imapSession(dovecot, LOGIN.user, LOGIN.password);
    try {
      const lock = await imap.getMailboxLock('Sent').catch(() => null);
      if (!lock) return { delivered, inSent: 0 };
      try {
        const uids = (await imap.search({ header: { 'message-id': messageId } }, { uid: true })) || [];
        return { delivered, inSent: uids.length };
      } finally {
        lock.release();
      }
    } finally {
      await imap.logout().catch(() => undefined);
    }
  }

  const result = (outboxId: string) =>
    env.client.workflow.getHandle(sendWorkflowId(accountId, outboxId)).result() as Promise<SendResult>;

  it('mail:send writes and sends in one go and --wait reports it sent: one copy arrives, one in Sent; sending it again sends nothing', async () => {
    const r = await npmRun(
      'mail:send',
      args(
        ...from,
        '--to',
        'Rita <rita@remote.example>',
        '--cc',
        'sam@remote.example',
        '--subject',
        'Now',
        '--text',
        'hello',
        '--wait',
        '--json',
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { id: string; messageId: string; status: string; result: SendResult };
    assert.equal(out.status, 'sent');
    assert.equal(out.result.status, 'sent');
    assert.equal(out.result.recipientsAccepted, 2);
    assert.match(r.stderr, /^Draft [0-9a-f-]{36} written$/m);
    const smtpDeliveries = (await smtp.deliveries()).filter((d) => d.messageId === out.messageId);
    assert.deepEqual(smtpDeliveries.map((d) => d.recipient).sort(), ['rita@remote.example', 'sam@remote.example']);
    assert.equal((await copiesOf(out.messageId)).inSent, 1);
    assert.ok(
      smtp.logins.some((l) => l.user === LOGIN.user && l.ok),
      'the account logged in with its own password',
    );

    const again = await npmRun('mail:send', args(...from, '--id', out.id, '--wait'));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /is sent already; nothing new was started/);
    assert.match(again.stdout, /^Sent message .*: 2 recipient\(s\) accepted, 0 refused; copy in Sent$/m);
    assert.deepEqual(await copiesOf(out.messageId), { delivered: 2, inSent: 1 }, 'still one copy each');
    const late = await npmRun('outbox:cancel', [...user, '--id', out.id]);
    assert.equal(late.code, 1);
    assert.match(late.stderr, /cannot cancel message .*: it was sent already at .*Nothing was changed/);
  });

  it('a scheduled send cancelled before its time: the run ends cancelled and nothing arrives', async () => {
    const draft = await npmRun(
      'mail:draft',
      args(...from, '--to', 'tom@remote.example', '--subject', 'Undo me', '--json'),
    );
    assert.equal(draft.code, 0, draft.stderr);
    const { id, messageId } = JSON.parse(draft.stdout) as { id: string; messageId: string };
    // Minutes ahead, so the cancel (a process start on a busy machine) is surely before it.
    const sent = await npmRun('mail:send', args(...from, '--id', id, '--at', '+3m'));
    assert.equal(sent.code, 0, sent.stderr);
    const cancel = await npmRun('outbox:cancel', [...user, '--id', id, '--reason', 'changed my mind']);
    assert.equal(cancel.code, 0, cancel.stderr);
    const r = await result(id);
    assert.equal(r.status, 'cancelled');
    const row = (await outbox.get(userId, id))!;
    assert.equal(row.status, 'cancelled');
    assert.equal(row.statusReason, 'changed my mind');
    assert.equal(row.submitAttempts, 0);
    assert.deepEqual(await copiesOf(messageId), { delivered: 0, inSent: 0 }, 'nothing arrives');
  });

  it('a scheduled send moved from an hour ahead to now goes out once; then it is too late to move it', async () => {
    const sent = await npmRun(
      'mail:send',
      args(...from, '--to', 'uma@remote.example', '--subject', 'Moved', '--text', 'x', '--at', '+1h', '--json'),
    );
    assert.equal(sent.code, 0, sent.stderr);
    const { id, messageId, status } = JSON.parse(sent.stdout) as { id: string; messageId: string; status: string };
    assert.equal(status, 'scheduled');
    const moved = await npmRun('outbox:reschedule', [...user, '--id', id, '--at', '+1s']);
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal((await result(id)).status, 'sent');
    assert.deepEqual(await copiesOf(messageId), { delivered: 1, inSent: 1 });
    const late = await npmRun('outbox:reschedule', [...user, '--id', id, '--at', '+1h']);
    assert.equal(late.code, 1);
    assert.match(late.stderr, /cannot reschedule message .*: it was sent already/);
  });

  it("another user's message is not found, and an unknown user is named", async () => {
    const [mine] = await outbox.list(userId, { limit: 1 });
    await store.ensureUser('other@example.com');
    const other = await npmRun('outbox:cancel', ['--user', 'other@example.com', '--id', mine.id]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /no message .* in this user's outbox/);
    const nobody = await npmRun('outbox:list', ['--user', 'nobody@example.com']);
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /No mailroom user nobody@example\.com/);
  });
});
