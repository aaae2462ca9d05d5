// Search over synced mail against the real PostgreSQL (lib/sync-store/search.ts,
// migrations/003_search.sql): matching and ranking over subject, sender, recipients and body,
// English stemming, filters, cursor pages that stay stable while mail arrives, one user never
// seeing another's mail, flags stored canonically, the backfill of rows stored before the
// migration, and the mail:search command as an operator runs it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStore, type NewMessage, type Store } from '../../lib/sync-store';
import { canonicalFlag } from '../../lib/sync-store/flags';
import { searchMessages, SearchInputError, type SearchQueryInput } from '../../lib/sync-store/search';
import { backfillSearchIndex } from '../../lib/sync-store/search-backfill';
import { createPool, dropDatabase, ensureDatabase, withDatabase } from '../../lib/storage/db';
import { migrate, MIGRATIONS_DIR } from '../../lib/storage/migrate';
import { ADMIN_DATABASE_URL, createTestDatabase, type TestDatabase } from './sync-fixtures';

const ROOT = join(__dirname, '..', '..');
const SCRIPTS = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;

interface Mail {
  from?: string;
  to?: string[];
  subject: string;
  body?: string;
  html?: string;
  date: Date;
  flags?: string[];
}

function rawMessage(m: Mail, uid: number): Buffer {
  const headers = [
    `From: ${m.from ?? 'Nobody <nobody@example.org>'}`,
    `To: ${(m.to ?? ['someone@example.test']).join(', ')}`,
    `Subject: ${m.subject}`,
    `Date: ${m.date.toUTCString()}`,
    `Message-ID: <m${uid}@search.test>`,
    'MIME-Version: 1.0',
    `Content-Type: ${m.html ? 'text/html' : 'text/plain'}; charset=utf-8`,
  ];
  return Buffer.from([...headers, '', m.html ?? m.body ?? '', ''].join('\r\n'));
}

function newMessage(m: Mail, uid: number): NewMessage {
  return {
    uid,
    messageId: `<m${uid}@search.test>`,
    from: m.from ?? 'Nobody <nobody@example.org>',
    to: (m.to ?? ['someone@example.test']).map((a) => a.replace(/^.*<(.*)>$/, '$1')),
    subject: m.subject,
    sentAt: m.date,
    internalDate: m.date,
    flags: m.flags ?? [],
    modseq: null,
    size: 100,
    raw: rawMessage(m, uid),
    rawRef: `imap://x/INBOX;UIDVALIDITY=1/;UID=${uid}`,
  };
}

const day = (n: number) => new Date(Date.UTC(2026, 0, n, 12, 0, 0));

describe('search over synced mail', () => {
  let db: TestDatabase;
  let store: Store;
  let alice: string;
  let bob: string;
  let aliceWork: string;
  let aliceHome: string;
  let bobAccount: string;
  let uid = 0;

  async function account(userId: string, name: string): Promise<string> {
    const id = crypto.randomUUID();
    await store.addAccount(userId, {
      id,
      imapHost: 'imap.example.com',
      imapPort: 993,
      imapTls: true,
      imapUser: name,
      passwordEncrypted: 'v1:k1:unused',
      syncIntervalSeconds: 900,
    });
    return id;
  }

  async function deliver(userId: string, accountId: string, folder: string, mails: Mail[]): Promise<void> {
    const state = await store.beginFolder(userId, accountId, folder, 1);
    const batch = mails.map((m) => newMessage(m, ++uid));
    await store.storeMessages(userId, accountId, folder, 1, batch, Math.max(state.state.lastUid, uid));
  }

  const search = (userId: string, q: SearchQueryInput) => searchMessages(db.pool, userId, q);
  const subjects = async (userId: string, q: SearchQueryInput) =>
    (await search(userId, q)).messages.map((m) => m.subject);

  before(async () => {
    db = await createTestDatabase();
    store = createStore(db.pool);
    alice = (await store.ensureUser('alice@search.test')).id;
    bob = (await store.ensureUser('bob@search.test')).id;
    aliceWork = await account(alice, 'alice-work');
    aliceHome = await account(alice, 'alice-home');
    bobAccount = await account(bob, 'bob');
    await deliver(alice, aliceWork, 'INBOX', [
      {
        subject: 'Quarterly invoice for December',
        from: 'Carol Accounts <carol@billing.example.com>',
        body: 'Please find the amount due attached.',
        date: day(1),
        flags: ['\\seen'],
      },
      {
        subject: 'Lunch?',
        from: 'Dave <dave@friends.example.net>',
        body: 'The invoices you asked about are on my desk.',
        date: day(2),
      },
      {
        subject: 'Team update',
        from: 'Erin <erin@example.org>',
        to: ['Frank Recipient <frank.ledger@partners.example.io>'],
        body: 'Nothing about money here.',
        date: day(3),
        flags: ['\\FLAGGED', '$Important'],
      },
      {
        subject: 'Newsletter',
        html: '<html><body><p>Our <b>meetings</b> moved to Thursday</p></body></html>',
        date: day(4),
        flags: ['\\Seen', '\\seen'],
      },
    ]);
    await deliver(alice, aliceWork, 'Archive', [
      { subject: 'Old invoice', body: 'From last year.', date: day(5), flags: ['\\Seen'] },
    ]);
    await deliver(alice, aliceHome, 'INBOX', [
      { subject: 'Holiday plans', body: 'Invoice from the hotel.', date: day(6) },
    ]);
    await deliver(bob, bobAccount, 'INBOX', [
      { subject: 'Bob private invoice', body: 'secret-bob-word', date: day(7) },
      { subject: 'Bob second', body: 'more', date: day(8) },
    ]);
  });
  after(async () => {
    await db?.drop();
  });

  it('matches words in subject, sender (name, address, domain), recipients and body, with English stemming', async () => {
    assert.deepEqual(await subjects(alice, { text: 'quarterly' }), ['Quarterly invoice for December']);
    // Sender by display name, local part, domain, whole address.
    for (const text of ['carol', 'Accounts', 'billing', 'carol@billing.example.com'])
      assert.deepEqual(await subjects(alice, { text }), ['Quarterly invoice for December'], text);
    // Recipient, by a part of the local part and by domain.
    assert.deepEqual(await subjects(alice, { text: 'ledger' }), ['Team update']);
    assert.deepEqual(await subjects(alice, { text: 'partners' }), ['Team update']);
    // Body, and HTML-only body converted to text.
    assert.deepEqual(await subjects(alice, { text: 'desk' }), ['Lunch?']);
    assert.deepEqual(await subjects(alice, { text: 'thursday' }), ['Newsletter']);
    // Stemming: invoice finds invoices and the other way round; meeting finds meetings.
    assert.deepEqual(await subjects(alice, { text: 'invoices' }), [
      'Holiday plans',
      'Old invoice',
      'Lunch?',
      'Quarterly invoice for December',
    ]);
    assert.deepEqual(await subjects(alice, { text: 'meeting' }), ['Newsletter']);
    // All words must match; a phrase; exclusion.
    assert.deepEqual(await subjects(alice, { text: 'invoice december' }), ['Quarterly invoice for December']);
    assert.deepEqual(await subjects(alice, { text: '"amount due"' }), ['Quarterly invoice for December']);
    assert.deepEqual(await subjects(alice, { text: 'invoice -hotel -year' }), [
      'Lunch?',
      'Quarterly invoice for December',
    ]);
    assert.deepEqual(await subjects(alice, { text: 'nonexistentword' }), []);
    // Stop words only, unbalanced quotes: no error, no match.
    assert.deepEqual(await subjects(alice, { text: 'the' }), []);
    assert.ok(Array.isArray(await subjects(alice, { text: '"unbalanced ( or' })));
  });

  it('ranks a subject match above a body match when sorting by relevance', async () => {
    const r = await search(alice, { text: 'invoice', sort: 'relevance' });
    const order = r.messages.map((m) => m.subject);
    assert.deepEqual(order.slice(0, 2).sort(), ['Old invoice', 'Quarterly invoice for December']);
    assert.deepEqual(order.slice(2).sort(), ['Holiday plans', 'Lunch?']);
    assert.ok(r.messages[0].rank! > r.messages[3].rank!, 'ranks are returned, highest first');
    // Pages of one in relevance order give the same order (the cursor holds the rank too).
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await search(alice, { text: 'invoice', sort: 'relevance', limit: 1, ...(cursor ? { cursor } : {}) });
      paged.push(...page.messages.map((m) => m.subject!));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    assert.deepEqual(paged, order);
    // Newest first is the default, with the rank still reported.
    const newest = await search(alice, { text: 'invoice' });
    assert.equal(newest.messages[0].subject, 'Holiday plans');
    assert.equal(typeof newest.messages[0].rank, 'number');
  });

  it('filters by account, folder, date range and flags; system flags are stored canonically', async () => {
    assert.deepEqual(await subjects(alice, { text: 'invoice', accountIds: [aliceHome] }), ['Holiday plans']);
    assert.deepEqual(await subjects(alice, { folders: ['Archive'] }), ['Old invoice']);
    assert.deepEqual(await subjects(alice, { since: day(2), before: day(4) }), ['Team update', 'Lunch?']);
    // \seen was sent in lower case: stored as \Seen, so the filter (in any case) finds it.
    const { rows } = await db.pool.query('SELECT subject, flags FROM messages WHERE user_id = $1 ORDER BY id', [alice]);
    assert.deepEqual(rows[0].flags, ['\\Seen']);
    assert.deepEqual(rows[2].flags, ['$Important', '\\Flagged'], 'keyword kept as sent, sorted');
    assert.deepEqual(rows[3].flags, ['\\Seen'], 'a duplicate in two cases kept once');
    assert.deepEqual(await subjects(alice, { flags: ['\\Seen'] }), [
      'Old invoice',
      'Newsletter',
      'Quarterly invoice for December',
    ]);
    assert.deepEqual(await subjects(alice, { flags: ['\\SEEN'], folders: ['INBOX'] }), [
      'Newsletter',
      'Quarterly invoice for December',
    ]);
    assert.deepEqual(await subjects(alice, { flags: ['\\flagged', '$Important'] }), ['Team update']);
    assert.deepEqual(await subjects(alice, { flags: ['$important'] }), [], 'keywords match as sent');
    assert.deepEqual(await subjects(alice, { withoutFlags: ['\\Seen'], accountIds: [aliceWork] }), [
      'Team update',
      'Lunch?',
    ]);
  });

  it('a flag change sent in another case is stored canonically and is no change at all', async () => {
    const [msg] = (await store.listMessages(alice, aliceWork, 'INBOX')).filter((m) => m.subject === 'Lunch?');
    const apply = (flags: string[]) =>
      store.applyFlagChanges(alice, aliceWork, 'INBOX', 1, [{ uid: msg.uid, flags, modseq: null }], null);
    assert.equal(await apply(['\\ANSWERED', '\\seen']), 1);
    assert.deepEqual((await store.listMessages(alice, aliceWork, 'INBOX')).find((m) => m.uid === msg.uid)!.flags, [
      '\\Answered',
      '\\Seen',
    ]);
    assert.equal(await apply(['\\answered', '\\Seen']), 0, 'the same flags in another case change nothing');
    assert.deepEqual(await subjects(alice, { flags: ['\\Answered'] }), ['Lunch?']);
    await apply([]);
  });

  it('the SQL canonical form (used by the trigger and the backfill) is the TypeScript one', async () => {
    const flags = [
      '\\seen',
      '\\SEEN',
      '\\Answered',
      '\\fLaGgEd',
      '\\deleted',
      '\\DRAFT',
      '\\recent',
      '$Label1',
      'Junk',
      '\\Custom',
      'seen',
      '\\Seenx',
      '\\İmportant',
    ];
    const { rows } = await db.pool.query<{ f: string; c: string }>(
      'SELECT f, mailroom_canonical_flag(f) AS c FROM unnest($1::text[]) AS f',
      [flags],
    );
    for (const r of rows) assert.equal(r.c, canonicalFlag(r.f), r.f);
  });

  it('pages newest first with a cursor that stays stable while new mail arrives', async () => {
    const all = (await search(alice, { limit: 200 })).messages.map((m) => m.id);
    assert.equal(all.length, 6);
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await search(alice, { limit: 2, ...(cursor ? { cursor } : {}) });
      seen.push(...page.messages.map((m) => m.id));
      pages++;
      if (pages === 1) {
        // New mail (newer than everything) and mail with the same date as the page's last row.
        await deliver(alice, aliceWork, 'INBOX', [
          { subject: 'Arrived while paging', body: 'new', date: day(20) },
          { subject: 'Same date as an older one', body: 'tie', date: day(1) },
        ]);
      }
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    const tie = (await subjects(alice, { text: 'tie' })).length;
    assert.equal(tie, 1);
    const withTie = (await search(alice, { limit: 200 })).messages;
    // Every message older than the first page appears exactly once, in order; the newer one is not
    // pushed into later pages. The tie (same date, higher id) sorts before its older twin.
    const expected = withTie.map((m) => m.id).filter((id) => id !== withTie[0].id);
    assert.deepEqual(seen, expected);
    assert.equal(new Set(seen).size, seen.length, 'no message twice');
    assert.equal(pages, 4);
  });

  it("never shows one user another user's mail: by search, by account id, by cursor", async () => {
    assert.deepEqual(await subjects(bob, { text: 'quarterly' }), []);
    assert.deepEqual(await subjects(bob, { text: 'invoice' }), ['Bob private invoice']);
    assert.deepEqual(await subjects(bob, { accountIds: [aliceWork] }), []);
    assert.deepEqual(await subjects(bob, { folders: ['Archive'] }), []);
    assert.deepEqual(await subjects(alice, { text: 'secret-bob-word' }), []);
    // A user id that is not a UUID matches nothing rather than failing.
    assert.deepEqual(await subjects('not-a-uuid', { text: 'invoice' }), []);
    // Alice's cursor given to Bob's search (same query): refused.
    const alicePage = await search(alice, { limit: 1 });
    assert.ok(alicePage.nextCursor);
    await assert.rejects(search(bob, { limit: 1, cursor: alicePage.nextCursor! }), SearchInputError);
    // A cursor forged with Bob's own fingerprint but Alice's position: only Bob's mail, older than it.
    const bobPage = await search(bob, { limit: 1 });
    const forged = JSON.parse(Buffer.from(bobPage.nextCursor!, 'base64url').toString()) as Record<string, string>;
    const aliceOldest = (await search(alice, { limit: 200 })).messages.at(-1)!;
    forged.i = String(aliceOldest.id + 1000);
    forged.d = '9999-01-01T00:00:00.000000Z';
    const page = await search(bob, { limit: 50, cursor: Buffer.from(JSON.stringify(forged)).toString('base64url') });
    assert.deepEqual(page.messages.map((m) => m.subject).sort(), ['Bob private invoice', 'Bob second']);
    // Garbage cursors are input errors.
    await assert.rejects(search(alice, { cursor: 'not-a-cursor' }), /cursor is not a cursor/);
  });

  it('validates input: unknown fields, bad ids, dates, limits', async () => {
    await assert.rejects(search(alice, { text: 'x', extra: 1 } as never), SearchInputError);
    await assert.rejects(search(alice, { accountIds: ['nope'] }), /accountIds.0: not an account id/);
    await assert.rejects(search(alice, { since: 'yesterday' as never }), SearchInputError);
    await assert.rejects(search(alice, { since: day(3), before: day(2) }), /since must be before/);
    await assert.rejects(search(alice, { limit: 1000 }), SearchInputError);
    await assert.rejects(search(alice, { sort: 'relevance' }), /relevance needs a text query/);
    // A NUL in the query text cannot reach PostgreSQL.
    assert.deepEqual(await subjects(alice, { text: 'quarter\u0000ly' }), ['Quarterly invoice for December']);
  });
});

describe('search backfill of messages stored before migration 003', () => {
  it('indexes them in batches, canonicalises their flags, and is safe to re-run', async () => {
    const url = withDatabase(ADMIN_DATABASE_URL, `mailroom_test_backfill_${process.pid}_${Date.now()}`);
    await ensureDatabase(url);
    const pool = createPool(url, { max: 3 });
    const before = mkdtempSync(join(tmpdir(), 'mailroom-migrations-'));
    try {
      for (const f of ['001_account_sync.sql', '002_sync_errors_oauth2.sql'])
        copyFileSync(join(MIGRATIONS_DIR, f), join(before, f));
      await migrate(pool, { dir: before });
      const store = createStore(pool);
      const user = (await store.ensureUser('old@search.test')).id;
      const accountId = crypto.randomUUID();
      // The account as the previous build stored it (the store's own queries name columns of
      // later migrations).
      await pool.query(
        `INSERT INTO mail_accounts (id, user_id, imap_host, imap_port, imap_tls, imap_user, password_encrypted, sync_interval_seconds)
         VALUES ($1, $2, 'imap.example.com', 993, true, 'old', 'v1:k1:unused', 900)`,
        [accountId, user],
      );
      await store.beginFolder(user, accountId, 'INBOX', 1);
      // Stored by the previous build: flags as the server sent them (sorted), no body text.
      for (let i = 1; i <= 7; i++) {
        const m = newMessage(
          { subject: `Old message ${i}`, body: `archived parcel number ${i}`, date: day(i), flags: ['Work', '\\seen'] },
          i,
        );
        await pool.query(
          `INSERT INTO messages (account_id, user_id, folder, uidvalidity, uid, subject, from_address, flags, internal_date, raw, raw_ref)
           VALUES ($1, $2, 'INBOX', 1, $3, $4, $5, $6, $7, $8, $9)`,
          [accountId, user, i, m.subject, m.from, m.flags, m.internalDate, i === 7 ? null : m.raw, m.rawRef],
        );
      }
      await migrate(pool);
      const before003 = await searchMessages(pool, user, { text: 'parcel' });
      assert.deepEqual(before003.messages, [], 'not indexed until the backfill ran');
      assert.equal(before003.indexing, true);

      const lines: string[] = [];
      assert.equal(await backfillSearchIndex(pool, { batchSize: 2, log: (l) => lines.push(l) }), 7);
      const after = await searchMessages(pool, user, { text: 'parcels', limit: 10 });
      assert.equal(after.indexing, false);
      // Six with a body; the seventh (stored without its body) is found by its subject.
      assert.equal(after.messages.length, 6);
      assert.deepEqual((await searchMessages(pool, user, { text: 'old' })).messages.length, 7);
      assert.deepEqual(
        (await searchMessages(pool, user, { flags: ['\\Seen'], limit: 10 })).messages.map((m) => m.flags),
        Array(7).fill(['Work', '\\Seen']),
      );
      assert.equal(after.messages[0].subject, 'Old message 6', 'newest first by INTERNALDATE');
      assert.ok(lines.some((l) => /7 messages indexed/.test(l)));
      assert.equal(await backfillSearchIndex(pool), 0, 'a second run finds nothing to do');
    } finally {
      rmSync(before, { recursive: true, force: true });
      await pool.end();
      await dropDatabase(url);
    }
  });
});

describe('mail:search command', () => {
  let db: TestDatabase;
  let childEnv: NodeJS.ProcessEnv;

  before(async () => {
    db = await createTestDatabase();
    const store = createStore(db.pool);
    const user = (await store.ensureUser('owner@search.test')).id;
    const accountId = crypto.randomUUID();
    await store.addAccount(user, {
      id: accountId,
      imapHost: 'imap.example.com',
      imapPort: 993,
      imapTls: true,
      imapUser: 'owner',
      passwordEncrypted: 'v1:k1:unused',
      syncIntervalSeconds: 900,
    });
    await store.beginFolder(user, accountId, 'INBOX', 1);
    const mails = [1, 2, 3].map((i) =>
      newMessage({ subject: `Invoice ${i}`, body: 'payment', date: day(i), flags: i === 1 ? ['\\seen'] : [] }, i),
    );
    await store.storeMessages(user, accountId, 'INBOX', 1, mails, 3);
    // A subject with terminal escapes, a C1 CSI and a bidi override, written past the sync's cleaning.
    await db.pool.query(`UPDATE messages SET subject = $1 WHERE uid = 2`, [
      'Invoice \u001b]0;pwned\u0007\u001b[31mred\u009b2J \u202Eevil',
    ]);
    childEnv = { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'warn' };
  });
  after(async () => {
    await db?.drop();
  });

  function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const [, ...argv] = SCRIPTS['mail:search'].split(' ');
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [...argv, ...args],
        { cwd: ROOT, env: childEnv, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  it('has --help, refuses bad options with exit 2, and a missing user with exit 1', async () => {
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /npm run mail:search -- \[options\]/);
    assert.match(help.stdout, /Exit codes: 0 done, 1 failed, 2 usage error, 3 needs attention/);
    for (const args of [
      ['--nonsense'],
      [],
      ['--user', 'owner@search.test', '--since', 'last tuesday'],
      ['--user', 'owner@search.test', '--account', 'x'],
      ['--user', 'owner@search.test', '--limit', '500'],
      ['--user', 'owner@search.test', '--sort', 'relevance'],
      ['--user', 'owner@search.test', '--cursor', 'forged'],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /npm run mail:search -- --help/);
    }
    const nobody = await run(['--user', 'nobody@search.test', '--text', 'x']);
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /No mailroom user nobody@search.test/);
  });

  it('prints a table without control characters, pages with the printed cursor, and --json alone on stdout', async () => {
    const first = await run(['--user', 'owner@search.test', '--text', 'invoices', '--limit', '2']);
    assert.equal(first.code, 0, first.stderr);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(first.stdout, /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u202A-\u202E]/);
    assert.match(first.stdout, /Invoice 3/);
    assert.match(first.stdout, /Invoice .*red/);
    const cursor = /--cursor (\S+)/.exec(first.stdout)?.[1];
    assert.ok(cursor, first.stdout);
    const second = await run(['--user', 'owner@search.test', '--text', 'invoices', '--limit', '2', '--cursor', cursor]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /Invoice 1/);
    assert.doesNotMatch(second.stdout, /--cursor/);

    const json = await run(['--user', 'owner@search.test', '--unread', '--json']);
    assert.equal(json.code, 0, json.stderr);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(json.stdout, /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u202A-\u202E]/);
    const parsed = JSON.parse(json.stdout) as { messages: { subject: string }[]; nextCursor: null };
    assert.equal(parsed.messages.length, 2, 'the \\seen message (stored as \\Seen) is not unread');
    assert.ok(parsed.messages[1].subject.endsWith('\u001b[31mred\u009b2J \u202Eevil'), 'JSON keeps the text, escaped');
  });
});
