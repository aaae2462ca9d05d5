// The README, walked as a new operator would: the demo runs (its own state directory), and
// every command of the README's operator tables (test/support/readme-commands.ts) runs as
// written, placeholders filled in, in a bash that did nothing but `source <state>/env`. A
// command fails the test when its npm script does not exist, it exits with a usage error or
// anything but 0, an option it documents is not in its --help, its JSON output does not parse,
// or (long-running ones: workers, bridge, codec server, stack:dovecot) it does not come up, or
// does not stop cleanly on SIGTERM. Placeholders: KEY (a demo email), notification.json, B1 (the
// build the walk starts), ID and OAUTH2_ID (the accounts the walk adds), OUTBOX_ID (the
// message the sending rows wrote: a draft to send, then the scheduled one to move and cancel);
// the demo's test IMAP account and OAuth2 server come from the env file ($DEMO_IMAP_*, $DEMO_OAUTH2_*).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { DeploymentAdmin } from '../../lib/temporal/deployment-admin';
import { s3ClientFor } from '../../scripts/stack/s3';
import { freePort } from '../../scripts/stack/ports';
import { demoDatabase } from '../support/demo-database';
import { longOptions, npmScript, operatorCommands, variants } from '../support/readme-commands';

const ROOT = join(__dirname, '..', '..');
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
  .scripts;
const database = demoDatabase('readme');
let state: string;
let envFile: string;
let demo: ChildProcess;
let demoOutput = '';
let exported: Record<string, string>;
let ports: Record<string, string>;
const services: { command: string; child: ChildProcess; output: () => string }[] = [];

/** A shell as a new operator has it: PATH and HOME, then the demo's env file. */
function shell(command: string, stdio: 'pipe' | 'ignore' = 'pipe'): ChildProcess {
  return spawn('bash', ['-c', `set -e; source "${envFile}"; cd "${ROOT}"; ${command}`], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8' },
    stdio: ['ignore', stdio, stdio],
    detached: true, // its own process group: npm, node and bash stop together
  });
}

function runToEnd(
  command: string,
  timeoutMs = 120_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = shell(command);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  state = mkdtempSync(join(tmpdir(), 'mailroom-readme-'));
  // Dovecot's mail processes (the demo's test IMAP account lives under the state directory)
  // must be able to traverse it; mkdtemp makes it 0700.
  chmodSync(state, 0o755);
  envFile = join(state, 'env');
  // The demo's own ports are free ones; the env file it writes carries them.
  ports = Object.fromEntries(
    await Promise.all(
      [
        'DEMO_TEMPORAL_PORT',
        'DEMO_TEMPORAL_UI_PORT',
        'DEMO_S3_PORT',
        'DEMO_DYNAMODB_PORT',
        'DEMO_SQS_PORT',
        'DEMO_SES_PORT',
        'DEMO_SMTP_PORT',
        'DEMO_INTERNAL_SMTP_PORT',
        'HEALTH_PORT',
        'METRICS_PORT',
        'CODEC_SERVER_PORT',
      ].map(async (k) => [k, String(await freePort())]),
    ),
  );
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(MAILROOM_|TEMPORAL_|AWS_|DEMO_|CODEC_)/.test(k)),
  );
  demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
    cwd: ROOT,
    env: { ...env, ...ports, DEMO_STATE_DIR: state, DEMO_DATABASE_URL: database.url, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo.stdout!.on('data', (d) => (demoOutput += d));
  demo.stderr!.on('data', (d) => (demoOutput += d));
  await waitFor(
    'the demo',
    () => {
      if (demo.exitCode !== null) throw new Error(`demo exited ${demo.exitCode}:\n${demoOutput}`);
      return demoOutput.includes('keeps running') ? true : undefined;
    },
    240_000,
  );
  assert.match(demoOutput, new RegExp(`source ${envFile}`), 'the demo prints the line to source');
  // The Web UI link opens on the inbound emails alone (the sync runs would bury them).
  assert.match(
    demoOutput,
    new RegExp(
      `Temporal Web UI: http://127\\.0\\.0\\.1:${ports.DEMO_TEMPORAL_UI_PORT}/namespaces/default/workflows\\?query=${encodeURIComponent('WorkflowType="processInboundEmail"')}`,
    ),
  );
  assert.doesNotMatch(demoOutput, /Account sync demo did not run/, demoOutput);
  exported = Object.fromEntries(
    [...readFileSync(envFile, 'utf8').matchAll(/^export ([A-Z0-9_]+)=(.*)$/gm)].map((m) => [
      m[1],
      m[2].replace(/^'|'$/g, ''),
    ]),
  );
});

after(async () => {
  for (const s of services) {
    try {
      process.kill(-s.child.pid!, 'SIGKILL'); // whatever of its group is left after a failure
    } catch {
      /* the group is gone */
    }
  }
  if (demo && demo.exitCode === null) {
    demo.kill('SIGINT');
    await new Promise((r) => demo.once('exit', r));
  }
  if (state) rmSync(state, { recursive: true, force: true });
  await database.drop();
});

test(
  "every command of the README's operator tables works as written from a shell that sourced the demo's env file",
  { timeout: 15 * 60_000 },
  async (t) => {
    const commands = operatorCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    assert.ok(commands.length >= 10, `the README's operator tables list ${commands.length} commands`);

    // Placeholders: a stored demo email, a notification for it, the build the walk starts.
    const s3 = s3ClientFor(exported.AWS_ENDPOINT_URL_S3);
    const keys =
      (await s3.send(new ListObjectsV2Command({ Bucket: 'example-com-emails' }))).Contents?.map((o) => o.Key!) ?? [];
    s3.destroy();
    const key = keys.find((k) => k.endsWith('-1-plain'));
    assert.ok(key, `the demo stored its plain email: ${keys.join(', ')}`);
    const notification = join(state, 'notification.json');
    writeFileSync(
      notification,
      JSON.stringify({
        notificationType: 'Received',
        mail: { messageId: key, destination: ['alice@example.com'] },
        receipt: {
          recipients: ['alice@example.com'],
          action: { type: 'S3', bucketName: 'example-com-emails', objectKey: key },
        },
      }),
    );
    // ID, OAUTH2_ID: the accounts the walk itself added (the account:add rows come first).
    const accountId = async (authMethod: string) => {
      const r = await runToEnd('npm run -s account:list -- --user owner@example.com --json');
      const found = (JSON.parse(r.stdout) as { id: string; authMethod: string }[]).find(
        (a) => a.authMethod === authMethod,
      );
      assert.ok(found, `no ${authMethod} account of owner@example.com yet: ${r.stdout} ${r.stderr}`);
      return found.id;
    };
    // OUTBOX_ID: the newest draft for mail:send (the mail:draft row wrote it), the newest
    // scheduled message for reschedule and cancel (the mail:send --at row scheduled it).
    const outboxId = async (status: string) => {
      const r = await runToEnd(`npm run -s outbox:list -- --user owner@example.com --status ${status} --json`);
      const found = (JSON.parse(r.stdout) as { id: string }[])[0];
      assert.ok(found, `no ${status} message in the outbox of owner@example.com yet: ${r.stdout} ${r.stderr}`);
      return found.id;
    };
    const fill = async (c: string) => {
      let out = c
        .replace(/\bKEY\b/g, key)
        .replace(/(^|\s)notification\.json\b/g, `$1${notification}`)
        .replace(/\bB1\b/g, 'B2');
      if (/\bID\b/.test(out)) out = out.replace(/\bID\b/g, await accountId('password'));
      if (/\bOAUTH2_ID\b/.test(out)) out = out.replace(/\bOAUTH2_ID\b/g, await accountId('oauth2'));
      if (/\bOUTBOX_ID\b/.test(out))
        out = out.replace(/\bOUTBOX_ID\b/g, await outboxId(/\bmail:send\b/.test(out) ? 'draft' : 'scheduled'));
      return out;
    };

    // The Web UI reads payloads after one sign-in: its codec endpoint is the demo's codec server,
    // called with the browser's credentials (the sign-in cookie), and its banner names the sign-in page.
    const settings = (await (
      await fetch(`http://127.0.0.1:${ports.DEMO_TEMPORAL_UI_PORT}/api/v1/settings`)
    ).json()) as { Codec: { Endpoint: string; IncludeCredentials: boolean; DefaultErrorLink: string } };
    assert.equal(settings.Codec.Endpoint, exported.MAILROOM_CODEC_ENDPOINT);
    assert.equal(settings.Codec.IncludeCredentials, true);
    assert.equal(settings.Codec.DefaultErrorLink, `${exported.MAILROOM_CODEC_ENDPOINT}/login`);

    const client = new Client({
      connection: await Connection.connect({ address: exported.TEMPORAL_ADDRESS }),
      namespace: exported.TEMPORAL_NAMESPACE,
    });
    try {
      const helps = new Map<string, string>();
      for (const documented of commands) {
        const { script } = npmScript(documented.command);
        const where = `README (${documented.section}, "${documented.action}"): ${documented.command}`;
        assert.ok(SCRIPTS[script], `${where}: npm has no script ${script}`);
        // Services (workers/*) and the local-stack helpers (scripts/stack/*) run until stopped.
        const longRunning = /\b(workers|scripts\/stack)\//.test(SCRIPTS[script]);

        // Every script answers --help and exits 0, services included (they must not start: a
        // service that started would still run at the timeout), with one exit-code line.
        const service = /\bworkers\//.test(SCRIPTS[script]);
        if ((!longRunning || service) && !helps.has(script)) {
          const help = await runToEnd(`npm run -s ${script} -- --help`, 30_000);
          assert.equal(help.code, 0, `${where}: --help exited ${help.code}: ${help.stderr}`);
          if (/\b(starters|workers)\//.test(SCRIPTS[script]))
            assert.equal(help.stdout.match(/^Exit codes:/gm)?.length, 1, `${where}: one exit-code line in --help`);
          if (service) assert.match(help.stdout, new RegExp(`^npm run ${script}\\n`), `${where}: the service's help`);
          else helps.set(script, help.stdout);
        }
        for (const variant of variants(documented.command)) {
          const line = await fill(variant);
          for (const option of longOptions(variant)) {
            if (helps.has(script))
              assert.match(
                helps.get(script)!,
                new RegExp(`--${option}\\b`),
                `${where}: --${option} is not in npm run ${script} -- --help`,
              );
          }
          if (longRunning) {
            // Comes up (its start line), and keeps running until the walk is over.
            let output = '';
            const child = shell(line);
            child.stdout!.on('data', (d) => (output += d));
            child.stderr!.on('data', (d) => (output += d));
            services.push({ command: line, child, output: () => output });
            await waitFor(`${line} to start`, () => {
              if (child.exitCode !== null)
                throw new Error(`${where}: \`${line}\` exited ${child.exitCode}:\n${output}`);
              return /"msg":"[^"]*(started|listening)"|Ctrl-C stops/.test(output) ? true : undefined;
            });
            const build = /TEMPORAL_BUILD_ID=(\S+)/.exec(line)?.[1];
            if (build)
              await new DeploymentAdmin(client, exported.TEMPORAL_DEPLOYMENT_NAME ?? 'mailroom').waitForVersion(build);
            t.diagnostic(`running: ${line}`);
            continue;
          }
          const r = await runToEnd(line);
          const detail = `\`${line}\` exited ${r.code}\nstdout: ${r.stdout.slice(-1500)}\nstderr: ${r.stderr.slice(-1500)}`;
          assert.doesNotMatch(r.stderr, /Missing script|command not found/, `${where}: ${detail}`);
          assert.notEqual(r.code, 2, `${where}: a usage error: ${detail}`);
          assert.equal(r.code, 0, `${where}: ${detail}`);
          if (npmScript(line).silent && /\s--(json|wait)\b/.test(line))
            assert.doesNotThrow(
              () => JSON.parse(r.stdout),
              `${where}: stdout is not JSON alone: ${r.stdout.slice(0, 300)}`,
            );
          // The re-drive example is only an example if it selects something in the demo.
          if (script === 'redrive')
            assert.match(r.stdout, /, [1-9]\d* selected/, `${where}: selects nothing in the demo: ${r.stdout}`);
          t.diagnostic(`ok: ${line}`);
        }
      }

      // The long-running ones stop cleanly on SIGTERM, as under a service manager. npm and bash
      // exit first; the stdio pipes close when the service process itself is gone.
      for (const s of services) {
        const exited = new Promise<void>((resolve) => s.child.once('close', () => resolve()));
        const before = s.output().length;
        process.kill(-s.child.pid!, 'SIGTERM');
        let killed = false;
        const timer = setTimeout(() => {
          killed = true;
          process.kill(-s.child.pid!, 'SIGKILL');
        }, 45_000);
        await exited;
        clearTimeout(timer);
        assert.equal(
          killed,
          false,
          `\`${s.command}\` did not stop within 45 s of SIGTERM:\n${s.output().slice(-2000)}`,
        );
        // A graceful stop: nothing logged at error or fatal level on the way out.
        assert.doesNotMatch(
          s.output().slice(before),
          /"level":(50|60)/,
          `\`${s.command}\` logged an error while stopping:\n${s.output().slice(before).slice(-2000)}`,
        );
      }
    } finally {
      await client.connection.close();
    }
  },
);
