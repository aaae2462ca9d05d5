// `npm run stack:dovecot`: a test IMAP account for trying account sync by hand. It starts
// Dovecot with a user and demo mail in several folders, prints what to connect with (and an
// OAuth2 client and refresh token with --oauth2), and cleans up after itself on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { refreshAccessToken } from '../../lib/imap/oauth2';

const ROOT = join(__dirname, '..', '..');

test('stack:dovecot starts a test account with demo mail (password and OAuth2 logins) and removes everything on SIGTERM', async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'scripts/stack/dovecot.ts', '--messages', '20', '--oauth2'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 60_000;
    while (!/Ctrl-C stops Dovecot/.test(out)) {
      if (Date.now() > deadline || child.exitCode !== null) assert.fail(`stack:dovecot did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const field = (name: string) => new RegExp(`${name}:\\s+(\\S+)`).exec(out)?.[1] ?? '';
    const [, host, port] = /Dovecot IMAP on ([\d.]+):(\d+)/.exec(out) ?? [];
    const directory = /Files in (\S+);/.exec(out)?.[1] ?? '';
    assert.match(out, /mail:\s+INBOX 8, Archive 5, Sent 4, Newsletters 3/);
    assert.match(
      out,
      /npm run account:add -- --user you@example\.com --host 127\.0\.0\.1 --port \d+ --no-tls --username test@example\.test/,
    );

    const count = async (auth: { pass: string } | { accessToken: string }) => {
      const client = new ImapFlow({
        host,
        port: Number(port),
        secure: false,
        auth: { user: field('user'), ...auth },
        logger: false,
      });
      client.on('error', () => {});
      await client.connect();
      const counts: Record<string, number> = {};
      for (const f of ['INBOX', 'Archive', 'Sent', 'Newsletters'])
        counts[f] = ((await client.status(f, { messages: true })) || undefined)?.messages ?? -1;
      await client.logout();
      return counts;
    };
    assert.deepEqual(await count({ pass: field('password') }), { INBOX: 8, Archive: 5, Sent: 4, Newsletters: 3 });
    // The printed OAuth2 client and refresh token work against the printed token endpoint and Dovecot.
    const token = await refreshAccessToken(
      { tokenUrl: field('token endpoint'), clientId: field('client id'), clientSecret: field('client secret') },
      field('refresh token'),
    );
    assert.deepEqual(await count({ accessToken: token.accessToken }), {
      INBOX: 8,
      Archive: 5,
      Sent: 4,
      Newsletters: 3,
    });

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(existsSync(directory), false, `${directory} removed`);
    const probe = new ImapFlow({
      host,
      port: Number(port),
      secure: false,
      auth: { user: 'x', pass: 'y' },
      logger: false,
      connectionTimeout: 2000,
    });
    probe.on('error', () => {});
    await assert.rejects(probe.connect(), 'Dovecot stopped');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
