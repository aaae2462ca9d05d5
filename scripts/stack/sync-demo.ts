// The demo's second main job, account sync (scripts/demo.ts runs it after the inbound part):
// Dovecot with two demo users and a few dozen messages in several folders, one account added
// with a password and one with OAuth2 through the local OAuth2 server, the sync worker as its
// own process, a sync triggered through each account's Schedule, and per-folder counts read
// back from PostgreSQL with the Web UI link to each sync run. The Schedules keep syncing every
// 5 minutes while the demo runs, and a new message arrives in the password account now and then.
// Both accounts can send (docs/sending.md): a local SMTP submission server that requires AUTH
// with the accounts' own logins (password, or the OAuth2 token checked at the local OAuth2
// server) stores what they send, and the sync worker's process runs the send worker.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { createStore } from '../../lib/sync-store';
import { addAccountWithOAuth2, addAccountWithPassword } from '../../lib/sync-store/credentials';
import { parseKeyring } from '../../lib/sync-store/crypto';
import { createPool, databaseName, dropDatabase, ensureDatabase, redactUrl, withDatabase } from '../../lib/storage/db';
import { migrate } from '../../lib/storage/migrate';
import { CLIENT_SECRET_ENV, DEFAULT_DATABASE_URL } from '../../lib/config/sync';
import { reconcileSchedules } from '../../starters/reconcile-schedules';
import { startSyncNow } from '../../starters/sync-now';
import type { syncAccount } from '../../workflows/syncAccount';
import { appendDemoMessage, appendToFolder, fillDemoMailbox } from './demo-mailbox';
import { startDovecot } from './dovecot';
import { startLocalOAuth2Server } from './oauth2';
import { freePort } from './ports';
import { startSmtpTarget } from './smtp-target';
import { createOutboxStore } from '../../lib/outbox';
import { loadSendConfig } from '../../lib/config/send';
import { watchWorkflowId } from '../../contracts/watch';
import { demoSend, demoWatcherAndSearch } from './account-demo-live';

export interface SyncDemoOptions {
  root: string;
  stateDir: string;
  temporalAddress: string;
  /** The demo's client (payloads encrypted with the demo's codec key). */
  client: Client;
  uiUrl: string;
  codecKeys: string;
  secretKeys: string;
  logLevel: string;
  /** Append a new message to the password account every this many ms (0: never). */
  newMailEveryMs: number;
}

export interface SyncDemo {
  /** What to print, one line each. */
  lines: string[];
  /** For the demo's env file (scripts/demo.ts): the account commands' settings and a test account to add. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

const TASK_QUEUE = 'mailroom-sync';
const OWNER = 'demo.owner@example.com';
const PASSWORD_USER = { user: 'maria@mail.example', password: 'maria-demo-password' };
const OAUTH_USER = { user: 'olaf@mail.example', password: `unused-${randomBytes(6).toString('hex')}` };
/** Where the demo's sent mail goes (any address outside the demo's domains is stored, as a relay would). */
const SEND_TO = 'friend@remote.example';

export async function runSyncDemo(o: SyncDemoOptions): Promise<SyncDemo> {
  const stops: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => undefined);
  };
  try {
    // A fresh database per demo run: mailroom_demo (DEMO_DATABASE_URL to choose another).
    const databaseUrl =
      process.env.DEMO_DATABASE_URL || withDatabase(process.env.DATABASE_URL || DEFAULT_DATABASE_URL, 'mailroom_demo');
    await dropDatabase(databaseUrl);
    await ensureDatabase(databaseUrl);
    const pool = createPool(databaseUrl, { max: 3 });
    stops.push(() => pool.end());
    await migrate(pool);
    const store = createStore(pool);

    const clientReg = { clientId: 'mailroom-demo', clientSecret: randomBytes(12).toString('base64url') };
    const oauth = await startLocalOAuth2Server({ clients: [clientReg] });
    stops.push(() => oauth.stop());
    const dovecotDir = join(o.stateDir, 'dovecot');
    rmSync(dovecotDir, { recursive: true, force: true });
    mkdirSync(dovecotDir, { recursive: true });
    const dovecot = await startDovecot({
      directory: dovecotDir,
      users: [PASSWORD_USER, OAUTH_USER],
      oauth2: { introspectionUrl: oauth.userinfoUrl },
    });
    stops.push(() => dovecot.stop());
    const server = { host: dovecot.host, port: dovecot.imapPort };
    await fillDemoMailbox(server, PASSWORD_USER, 30);
    await fillDemoMailbox(server, OAUTH_USER, 12);

    const workerLog = join(o.stateDir, 'sync-worker.log');
    // A free port, so the demo runs beside a sync worker on the default 8001; printed below.
    const syncPort = await freePort();
    const worker: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(o.root, 'workers', 'sync-main.ts')], {
      cwd: o.root,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: o.temporalAddress,
        DATABASE_URL: databaseUrl,
        MAILROOM_SECRET_KEYS: o.secretKeys,
        MAILROOM_CODEC_KEYS: o.codecKeys,
        SYNC_TASK_QUEUE: TASK_QUEUE,
        SYNC_METRICS_PORT: String(syncPort),
        LOG_LEVEL: o.logLevel,
      },
      stdio: ['ignore', openSync(workerLog, 'a'), openSync(workerLog, 'a')],
    });
    stops.push(async () => {
      if (worker.exitCode !== null || worker.signalCode !== null) return;
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
    });

    const keyring = parseKeyring(o.secretKeys);
    const owner = await store.ensureUser(OWNER);
    const settings = (user: string) => ({
      imapHost: dovecot.host,
      imapPort: dovecot.imapPort,
      imapTls: false,
      imapUser: user,
      // Every 5 minutes, not every minute: 120 sync runs an hour would bury the demo's inbound
      // runs in the Web UI's workflow list (docs/inbound.md: the inbound view filters them anyway).
      syncIntervalSeconds: 300,
    });
    const withPassword = await addAccountWithPassword(
      store,
      keyring,
      owner.id,
      settings(PASSWORD_USER.user),
      PASSWORD_USER.password,
    );
    const withOAuth2 = await addAccountWithOAuth2(
      store,
      keyring,
      owner.id,
      settings(OAUTH_USER.user),
      { provider: 'custom', tokenUrl: oauth.tokenUrl, clientId: clientReg.clientId, scopes: 'imap' },
      // In real life the user's consent in a browser hands over this refresh token.
      { refreshToken: oauth.grant(OAUTH_USER.user), clientSecret: clientReg.clientSecret },
    );
    // Sending: the accounts' SMTP server (AUTH with their own logins), a copy of what they send in Sent.
    const sentMailDir = join(o.stateDir, 'sent-mail');
    rmSync(sentMailDir, { recursive: true, force: true });
    const submission = await startSmtpTarget({
      directory: sentMailDir,
      localDomains: [],
      mailboxes: [],
      port: await freePort(),
      auth: { users: [PASSWORD_USER], oauth2UserinfoUrl: oauth.userinfoUrl },
    });
    stops.push(() => submission.stop());
    // Like Gmail and Microsoft 365, the demo's provider files what an account submits in its Sent
    // folder itself, before it answers 250: a send worker killed after the server took a message
    // finds it there and does not submit it again (docs/sending.md#exactly-one-copy).
    const logins = new Map([PASSWORD_USER, OAUTH_USER].map((u) => [u.user, u]));
    submission.onBeforeAccept(async (info) => {
      const login = info.from ? logins.get(info.from.toLowerCase()) : undefined;
      if (login) await appendToFolder(server, login, 'Sent', info.raw);
    });
    const outbox = createOutboxStore(pool);
    for (const a of [withPassword, withOAuth2])
      await outbox.updateSmtpSettings(owner.id, a.id, {
        host: '127.0.0.1',
        port: submission.port,
        tls: 'none',
        sentFolder: 'Sent',
      });

    // One Schedule per account (and none left from earlier demo runs, whose accounts are gone).
    await reconcileSchedules({ client: o.client, store, taskQueue: TASK_QUEUE });
    stops.push(async () => {
      // Leave no Schedule behind that would try a Dovecot that is gone.
      for (const a of [withPassword, withOAuth2])
        await o.client.schedule
          .getHandle(`sync-account-${a.id}`)
          .delete()
          .catch(() => undefined);
    });

    const lines = [
      `Account sync (IMAP -> PostgreSQL ${databaseName(databaseUrl)}; sync worker log: ${workerLog}):`,
      `  Sync worker: http://127.0.0.1:${syncPort}/health   metrics http://127.0.0.1:${syncPort}/metrics`,
    ];
    for (const [account, how] of [
      [withPassword, 'password'],
      [withOAuth2, 'OAuth2'],
    ] as const) {
      const { workflowId } = await startSyncNow(o.client, account, TASK_QUEUE);
      const handle = o.client.workflow.getHandle<typeof syncAccount>(workflowId);
      const result = await handle.result();
      const { runId } = await handle.describe();
      const { rows } = await pool.query(
        'SELECT folder, count(*)::int AS n FROM messages WHERE user_id = $1 AND account_id = $2 GROUP BY folder',
        [owner.id, account.id],
      );
      const counts = new Map(rows.map((r) => [r.folder as string, r.n as number]));
      const order = ['INBOX', 'Archive', 'Sent', 'Newsletters', ...[...counts.keys()].sort()].filter(
        (f, i, all) => counts.has(f) && all.indexOf(f) === i,
      );
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      lines.push(
        `  ${`${account.imapUser} (${how})`.padEnd(30)} ${result.status}: ${order.map((f) => `${f} ${counts.get(f)}`).join(', ')} (${total} messages in PostgreSQL)`,
      );
      lines.push(
        `    sync run in the Web UI: ${o.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${runId}/history`,
      );
    }
    lines.push(
      `  Schedules sync both accounts every 5 minutes while the demo runs${o.newMailEveryMs ? `; a new message arrives in ${PASSWORD_USER.user}'s INBOX every ${Math.round(o.newMailEveryMs / 1000)} s (npm run sync:now fetches it at once)` : ''}.`,
      `  Sync runs in the Web UI: ${o.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent('WorkflowType="syncAccount"')}`,
      `  Test IMAP account: ${dovecot.host}:${dovecot.imapPort} (no TLS), user ${PASSWORD_USER.user}, password ${PASSWORD_USER.password}`,
      `  See the accounts: DATABASE_URL=${redactUrl(databaseUrl)} npm run account:list`,
      `Sending (docs/sending.md): both accounts send through SMTP 127.0.0.1:${submission.port} (AUTH with their own login; it files what they send in their Sent folder, as Gmail does); what they send lands in ${sentMailDir}. From a shell that sourced the env file:`,
      `  npm run mail:send -- --user ${OWNER} --account ${withPassword.id} --to ${SEND_TO} --subject Hello --text "Sent from the demo" --wait`,
      `  npm run mail:send -- --user ${OWNER} --account ${withPassword.id} --to ${SEND_TO} --subject Later --text "Undo me" --at +5m`,
      `  npm run outbox:list -- --user ${OWNER}   (then outbox:cancel or outbox:reschedule -- --user ${OWNER} --id <id> ...)`,
    );

    // Issue 22 and 23 in the demo: the IDLE watchers bring a new message within seconds and the
    // search finds it; one message sent from the password account, then synced back from Sent.
    lines.push(
      ...(await demoWatcherAndSearch({
        client: o.client,
        store,
        pool,
        taskQueue: TASK_QUEUE,
        ownerEmail: OWNER,
        account: withPassword,
        server,
        login: PASSWORD_USER,
      })),
    );
    stops.push(async () => {
      // Leave no watcher behind that would reconnect to a Dovecot that is gone.
      for (const a of [withPassword, withOAuth2])
        await o.client.workflow
          .getHandle(watchWorkflowId(a.id))
          .cancel()
          .catch(() => undefined);
    });
    const sendConfig = loadSendConfig();
    lines.push(
      ...(await demoSend({
        client: o.client,
        pool,
        deps: {
          store: outbox,
          client: o.client,
          taskQueue: sendConfig.taskQueue,
          maxAttachmentBytes: sendConfig.maxAttachmentBytes,
          maxRecipients: sendConfig.maxRecipients,
          attachmentDir: sendConfig.attachmentDir,
          defaultUploadDir: join(o.stateDir, 'outbox-attachments'),
        },
        syncTaskQueue: TASK_QUEUE,
        account: withPassword,
        to: SEND_TO,
      })),
    );

    if (o.newMailEveryMs > 0) {
      let n = 0;
      const timer = setInterval(() => {
        n++;
        appendDemoMessage(server, PASSWORD_USER, `New mail while the demo runs (${n})`).catch(() => undefined);
      }, o.newMailEveryMs);
      timer.unref();
      stops.push(() => clearInterval(timer));
    }
    const env = {
      DATABASE_URL: databaseUrl,
      MAILROOM_SECRET_KEYS: o.secretKeys,
      SYNC_TASK_QUEUE: TASK_QUEUE,
      // A second sync worker started from that shell: no metrics port to clash with the demo's.
      SYNC_METRICS_PORT: '0',
      // The test account (Dovecot, no TLS) and the local OAuth2 server, for account:add by hand.
      DEMO_IMAP_HOST: dovecot.host,
      DEMO_IMAP_PORT: String(dovecot.imapPort),
      DEMO_IMAP_USER: PASSWORD_USER.user,
      DEMO_IMAP_PASSWORD: PASSWORD_USER.password,
      DEMO_OAUTH2_USER: OAUTH_USER.user,
      DEMO_OAUTH2_TOKEN_URL: oauth.tokenUrl,
      DEMO_OAUTH2_CLIENT_ID: clientReg.clientId,
      [CLIENT_SECRET_ENV]: clientReg.clientSecret,
      DEMO_OAUTH2_REFRESH_TOKEN: oauth.grant(OAUTH_USER.user),
      // Sending: the demo's SMTP submission server (AUTH with the test account's login) and an outside address.
      DEMO_SMTP_HOST: '127.0.0.1',
      DEMO_SMTP_SUBMISSION_PORT: String(submission.port),
      DEMO_SEND_TO: SEND_TO,
      DEMO_SENT_MAIL_DIR: sentMailDir,
    };
    return { lines, env, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
