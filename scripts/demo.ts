// The main jobs on the embedded local stack, for a newcomer (scripts/demo.sh runs this
// after installing what is missing): Temporal dev server with its Web UI, S3 (versitygw),
// DynamoDB (dynalite), SQS (goaws) with the domain's notification queue, an SMTP server
// standing in for the internal mail server, a demo domain with blocklist and rules, six demo
// emails, the real worker process, and a summary of what happened to each email; then account
// sync (scripts/stack/sync-demo.ts: Dovecot with demo mailboxes, a password and an OAuth2
// account, the sync worker, per-folder counts from PostgreSQL). It writes <state>/env, which
// points every operator command at this stack (`source` it in another shell). The stack stays
// up for exploring until Ctrl-C (or exits at once with --exit).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { Client, Connection } from '@temporalio/client';
import { codecFromEnv, generateCodecKey } from '../lib/temporal/codec';
import { generateKeyEntry } from '../lib/sync-store/crypto';
import { queueForDomain } from '../lib/config/sqs-bridge';
import { bucketForDomain } from '../lib/config';
import { codecChoice, mailroomDataConverter } from '../lib/temporal/data-converter';
import type { InboundResult } from '../contracts/inbound';
import { startInbound } from '../starters/start-inbound';
import { rawMail, sesBounce } from './stack/demo-emails';
import { DEFAULT_TABLES, dynamoClientFor, ensureTables, startDynamoServer } from './stack/dynamodb';
import { writeEnvFile } from './stack/env-file';
import { freePort, isPortFree } from './stack/ports';
import { localStackEnv } from './stack/worker-env';
import { S3_CREDENTIALS, s3ClientFor, startS3Server } from './stack/s3';
import { startSesServer } from './stack/ses';
import { startSmtpTarget } from './stack/smtp-target';
import { startSqsServer } from './stack/sqs';
import { startTemporalDevServer } from './stack/temporal-dev';
import { runSyncDemo, type SyncDemo } from './stack/sync-demo';
import { startCodecServer } from '../workers/codec-server';

const DOMAIN = 'example.com';
const ROOT = resolve(__dirname, '..');
// Where the demo keeps its state (Temporal's database, S3 objects, mailboxes, logs, keys, the
// env file): .local/ in the checkout, or DEMO_STATE_DIR (tests run the demo on a state of their own).
const LOCAL = resolve(process.env.DEMO_STATE_DIR || join(ROOT, '.local'));
const users = {
  alice: `alice@${DOMAIN}`,
  bob: `bob@${DOMAIN}`,
  carol: `carol@${DOMAIN}`,
  dave: `dave@${DOMAIN}`,
  erin: `erin@${DOMAIN}`,
  frank: `frank@${DOMAIN}`,
};
const port = async (name: string, preferred: number) =>
  Number(process.env[name] ?? 0) || ((await isPortFree(preferred)) ? preferred : await freePort());

/** A secret generated once into .local/ and reused, so the histories of earlier runs stay readable. */
function localSecret(name: string, make: () => string): string {
  const file = join(LOCAL, name);
  try {
    writeFileSync(file, `${make()}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readFileSync(file, 'utf8').trim();
}

async function main() {
  const { values } = parseArgs({ options: { exit: { type: 'boolean', default: false } } });
  mkdirSync(LOCAL, { recursive: true });
  // Histories are encrypted (lib/temporal/codec.ts) with a development key kept in .local/codec-keys;
  // the codec server lets the Web UI show them to whoever has the token in .local/codec-token.
  if (codecChoice() === 'plaintext')
    throw new Error(
      'MAILROOM_CODEC_KEYS=none: the demo always encrypts histories (its key is generated into <state>/codec-keys); unset MAILROOM_CODEC_KEYS to use that key',
    );
  const codecKeys = process.env.MAILROOM_CODEC_KEYS || localSecret('codec-keys', () => generateCodecKey('dev1'));
  const codecToken =
    process.env.CODEC_SERVER_TOKEN || localSecret('codec-token', () => randomBytes(24).toString('hex'));
  const dataConverter = mailroomDataConverter({ MAILROOM_CODEC_KEYS: codecKeys });
  const uiPort = Number(process.env.DEMO_TEMPORAL_UI_PORT ?? 8233);
  const codecServer = await startCodecServer({
    port: await port('CODEC_SERVER_PORT', 8888),
    token: codecToken,
    origins: [`http://127.0.0.1:${uiPort}`, `http://localhost:${uiPort}`],
    codec: codecFromEnv({ MAILROOM_CODEC_KEYS: codecKeys }, { allowPlaintext: true })!, // the codec server only shows
  });

  console.log('Starting the local stack ...');
  const temporal = await startTemporalDevServer({
    dbFile: join(LOCAL, 'temporal.db'),
    port: Number(process.env.DEMO_TEMPORAL_PORT ?? 7233),
    uiPort,
    logFile: join(LOCAL, 'temporal.log'),
    codecEndpoint: codecServer.url,
  });
  const s3srv = await startS3Server({ directory: join(LOCAL, 's3'), port: await port('DEMO_S3_PORT', 4568) });
  const dyn = await startDynamoServer({ port: await port('DEMO_DYNAMODB_PORT', 4567) });
  const mailDir = join(LOCAL, 'mail');
  const mailboxes = Object.values(users);
  const mail = await startSmtpTarget({
    directory: mailDir,
    localDomains: [DOMAIN],
    mailboxes,
    port: await port('DEMO_SMTP_PORT', 2525),
  });
  const internal = await startSmtpTarget({
    directory: join(LOCAL, 'mail-internal'),
    localDomains: [DOMAIN],
    mailboxes,
    port: await port('DEMO_INTERNAL_SMTP_PORT', 2526),
  });
  // SES notifications arrive on the domain's queue, where `npm run bridge` reads them.
  const sqs = await startSqsServer({
    port: await port('DEMO_SQS_PORT', 4100),
    queues: [{ name: queueForDomain(DOMAIN) }],
  });
  // Outbound mail (auto-replies, outside forwards) goes to a local SES v2 server, as to SES.
  const ses = await startSesServer({ port: await port('DEMO_SES_PORT', 8005) });

  const s3 = s3ClientFor(s3srv.endpoint);
  const dynamo = dynamoClientFor(dyn.endpoint);
  const bucket = bucketForDomain(DOMAIN);
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => undefined);
  await ensureTables(dynamo, DEFAULT_TABLES);
  const put = (table: string, item: Record<string, unknown>) =>
    dynamo.send(new PutItemCommand({ TableName: table, Item: marshall(item) }));
  await put(DEFAULT_TABLES.blocked, { email_address: users.carol, blocked_patterns: ['*@spam.example'] });
  await put(DEFAULT_TABLES.rules, {
    email_address: users.dave,
    ooo_active: true,
    ooo_message: 'I am on holiday until Monday. For urgent matters write to alice@example.com.',
    ooo_content_type: 'text',
    forwards: [],
  });
  await put(DEFAULT_TABLES.rules, {
    email_address: users.erin,
    ooo_active: false,
    forwards: [users.frank, 'erin@home.example'],
  });
  const sesId = `0100018c-demo-${Date.now()}`;
  await put(DEFAULT_TABLES.messages, {
    MessageId: sesId,
    source: users.alice,
    destinations: ['nobody@far.example'],
    subject: 'Contract draft',
    timestamp: Math.floor(Date.now() / 1000),
  });

  // What every mailroom command needs to reach this stack: the worker below gets it, and
  // <state>/env hands it to the operator's shell.
  const stackEnv = {
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: 'default',
    TASK_QUEUE: process.env.TASK_QUEUE || 'mailroom-inbound',
    ...localStackEnv({
      s3: s3srv.endpoint,
      dynamodb: dyn.endpoint,
      domains: [DOMAIN],
      smtpPort: mail.port,
      internalSmtpPort: internal.port,
      ses: ses.endpoint,
    }),
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    // Blocked mail stays in the bucket (tagged), so `npm run redrive` has something to re-drive.
    BLOCKED_MAIL_ACTION: 'keep',
    MAILROOM_CODEC_KEYS: codecKeys,
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...stackEnv,
    WORKER_NAME: 'mailroom-demo',
    LOG_LEVEL: process.env.WORKER_LOG_LEVEL ?? 'info',
    HEALTH_PORT: String(await port('HEALTH_PORT', 8080)),
    METRICS_PORT: String(await port('METRICS_PORT', 8000)),
    TEMPORAL_METRICS_BIND: `127.0.0.1:${await freePort()}`,
  };
  const workerLog = join(LOCAL, 'worker.log');
  const worker = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'workers', 'main.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', openSync(workerLog, 'a'), openSync(workerLog, 'a')],
  });

  const run = Date.now().toString(36);
  const emails: { label: string; raw: Buffer; recipients?: string[] }[] = [
    { label: 'plain', raw: rawMail({ from: 'friend@sender.example', to: [users.alice], subject: 'Lunch on Friday?' }) },
    {
      label: 'multi-recipient',
      raw: rawMail({
        from: 'boss@sender.example',
        to: [users.alice, users.bob],
        cc: ['ghost@example.com'],
        subject: 'Team meeting',
      }),
    },
    { label: 'blocked sender', raw: rawMail({ from: 'deals@spam.example', to: [users.carol], subject: 'You won!' }) },
    {
      label: 'out-of-office',
      raw: rawMail({ from: 'client@sender.example', to: [users.dave], subject: 'Question about the offer' }),
    },
    { label: 'forwarded', raw: rawMail({ from: 'friend@sender.example', to: [users.erin], subject: 'Photos' }) },
    {
      label: 'SES bounce',
      raw: sesBounce({
        to: users.alice,
        sesMessageId: sesId,
        bouncedRecipient: 'nobody@far.example',
        originalSubject: 'Contract draft',
      }),
    },
  ];
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }), dataConverter });
  const started = [];
  for (const [i, e] of emails.entries()) {
    const key = `demo-${run}-${i + 1}-${e.label.replace(/\W+/g, '-')}`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: e.raw, ContentType: 'message/rfc822' }));
    const { workflowId } = await startInbound(client, stackEnv.TASK_QUEUE, {
      domain: DOMAIN,
      bucket,
      key,
      envelopeRecipients: e.recipients,
    });
    started.push({ ...e, key, workflowId });
  }
  console.log(`Processing ${started.length} demo emails (worker log: ${workerLog}) ...`);
  const results: InboundResult[] = await Promise.all(
    started.map((s) => client.workflow.getHandle(s.workflowId).result()),
  );

  console.log('\nWhat happened to each email:');
  for (const [i, r] of results.entries()) {
    const who = r.recipients.map((x) => `${x.recipient}=${x.outcome}${x.code ? `(${x.code})` : ''}`).join(', ');
    const extra = [
      ...r.autoReplies.map((a) => (a.sent ? `auto-reply sent to ${a.to}` : `no auto-reply (${a.reason})`)),
      ...r.forwards.map((f) =>
        f.sent === false ? `not forwarded to ${f.to} (${f.reason ?? f.route})` : `forwarded to ${f.to} (${f.route})`,
      ),
      ...(r.bounce
        ? [`bounce ${r.bounce.matched ? 'matched and rewritten' : 'unmatched'}: ${r.bounce.bouncedRecipient}`]
        : []),
      ...(r.status === 'blocked'
        ? ['tagged and kept in S3 for a re-drive (BLOCKED_MAIL_ACTION=keep; production deletes it)']
        : []),
    ];
    console.log(
      `  ${started[i].label.padEnd(16)} ${r.status.padEnd(10)} ${who}${extra.length ? `; ${extra.join('; ')}` : ''}`,
    );
  }
  // The second main job: account sync. (Its IMAP passwords and tokens are encrypted with a
  // development key kept in .local/secret-keys.)
  const secretKeys = process.env.MAILROOM_SECRET_KEYS || localSecret('secret-keys', () => generateKeyEntry('dev1'));
  let syncDemo: SyncDemo | undefined;
  console.log('\nSyncing two demo IMAP accounts ...');
  try {
    syncDemo = await runSyncDemo({
      root: ROOT,
      stateDir: LOCAL,
      temporalAddress: temporal.address,
      client,
      uiUrl: temporal.uiUrl,
      codecKeys,
      secretKeys,
      logLevel: process.env.WORKER_LOG_LEVEL ?? 'info',
      newMailEveryMs: values.exit ? 0 : 30_000,
    });
    console.log(syncDemo.lines.join('\n'));
  } catch (err) {
    console.log(`Account sync demo did not run: ${(err as Error).message}`);
  }

  const envFile = join(LOCAL, 'env');
  writeEnvFile(
    envFile,
    [
      `mailroom demo stack, written by scripts/demo.ts at ${new Date().toISOString()}; valid while that demo runs.`,
      `Use it in another shell:  source ${envFile}`,
      "Then every command of the README's operator tables talks to this stack.",
    ],
    [
      {
        comment: 'The stack: Temporal, S3, DynamoDB, SQS, SES, the SMTP server standing in for the mail server',
        vars: stackEnv,
      },
      {
        comment:
          'Reading encrypted histories: temporal workflow show ... --codec-endpoint "$MAILROOM_CODEC_ENDPOINT" --codec-auth "Bearer $CODEC_SERVER_TOKEN"',
        vars: { CODEC_SERVER_TOKEN: codecToken, MAILROOM_CODEC_ENDPOINT: codecServer.url },
      },
      {
        comment:
          "Processes started from this shell (a second worker, a codec server) pick free ports and log them; the demo's own worker and codec server keep theirs",
        vars: { WORKER_PORTS: 'free', CODEC_SERVER_PORT: 0 },
      },
      ...(syncDemo
        ? [
            {
              comment: 'Account sync: its database and keys, the test IMAP account and the local OAuth2 server',
              vars: syncDemo.env,
            },
          ]
        : []),
    ],
  );

  console.log(`\nMailboxes (one .eml per delivery): ${mailDir}`);
  console.log(
    `Outbound mail sent through SES: ${(await ses.emails()).length} message(s), see ${ses.endpoint} (web view) or ${ses.endpoint}/store`,
  );
  // The inbound runs alone (the sync runs would bury them), with each email's MailStatus as a
  // column once added (docs/inbound.md, "In the Web UI").
  const inboundView = `${temporal.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent('WorkflowType="processInboundEmail"')}`;
  console.log(`Temporal Web UI: ${inboundView}`);
  console.log('  (the inbound emails; Configure Columns adds MailStatus and MailDomain to the list: docs/inbound.md)');
  console.log(
    `Codec server: ${codecServer.url}  token: ${codecToken}  (histories are encrypted; key in ${join(LOCAL, 'codec-keys')}, token in ${join(LOCAL, 'codec-token')})`,
  );
  console.log(
    `  to read payloads in the Web UI, sign in once: open ${codecServer.url}/login and enter the token; then reload the UI (docs/privacy.md)`,
  );
  console.log(
    `Worker: http://127.0.0.1:${env.HEALTH_PORT}/health  /domains   metrics http://127.0.0.1:${env.METRICS_PORT}/metrics`,
  );
  console.log(`SES notification queue: ${queueForDomain(DOMAIN)} on ${sqs.endpoint} (npm run bridge reads it)`);
  console.log(`State: ${LOCAL}`);
  console.log(
    `\nOperator commands (README, "Operator scripts") against this stack, from another shell:\n  source ${envFile}\n  npm run sweep -- --domain ${DOMAIN}`,
  );

  const shutdown = async () => {
    await syncDemo?.stop();
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
    await client.connection.close();
    await Promise.all([
      mail.stop(),
      internal.stop(),
      s3srv.stop(),
      dyn.stop(),
      sqs.stop(),
      ses.stop(),
      codecServer.close(),
    ]);
    await temporal.stop();
  };
  if (values.exit) {
    await shutdown();
    return;
  }
  console.log('\nThe stack keeps running for you to explore; Ctrl-C stops it.');
  await new Promise<void>((r) => {
    process.once('SIGINT', () => r());
    process.once('SIGTERM', () => r());
  });
  await shutdown();
}

main().catch((err) => {
  console.error(`demo failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
