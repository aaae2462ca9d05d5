// Checked as an operator would: headless Chromium (Debian's) driven by playwright-core
// signs in once at the demo's codec server (its /login page, the token), opens the demo's Web
// UI, filters by search attributes, opens the blocked email's workflow and reads its summary
// and details, decoded through the codec server with nothing set in the UI: the one documented
// sign-in step is all it takes. Screenshots land in test/artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { freePort } from '../../scripts/stack/ports';
import { demoDatabase } from '../support/demo-database';

const database = demoDatabase('webui');

const ROOT = join(__dirname, '..', '..');
const ARTIFACTS = join(ROOT, 'test', 'artifacts');
// The local fetch's summary in the Event History (FETCH_AND_DELIVER_PATCH).
const FETCH_SUMMARY =
  'read the object from S3, parse its headers; blocklist and rules of its recipients; deliver and tag if nothing else applies';
/** A local activity of this type with this summary (a regular expression's text), as the Event History lists it. */
const step = (type: string, summary: string) =>
  new RegExp(`Local Activity\\s+Activity Type\\s+${type}\\s+Summary\\s+${summary}`);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'webui-test-token-0123456789';
let demo: ChildProcess;
let browser: Browser;
/** A browser profile that has signed in at the codec server (its session cookie). */
let signedIn: BrowserContext;
let state: string;
let output = '';
let ports: Record<string, string>;

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium not found at ${CHROMIUM}: run scripts/install-system.sh (Debian package chromium)`,
  );
  state = mkdtempSync(join(tmpdir(), 'mailroom-webui-'));
  ports = Object.fromEntries(
    await Promise.all(
      [
        'DEMO_TEMPORAL_PORT',
        'DEMO_TEMPORAL_UI_PORT',
        'DEMO_S3_PORT',
        'DEMO_DYNAMODB_PORT',
        'DEMO_SMTP_PORT',
        'DEMO_INTERNAL_SMTP_PORT',
        'DEMO_SES_PORT',
        'DEMO_SQS_PORT',
        'HEALTH_PORT',
        'METRICS_PORT',
        'CODEC_SERVER_PORT',
      ].map(async (k) => [k, String(await freePort())]),
    ),
  );
  demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...ports,
      DEMO_STATE_DIR: state,
      DEMO_DATABASE_URL: database.url,
      CODEC_SERVER_TOKEN: TOKEN,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not come up:\n${output}`)), 180_000);
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes('keeps running')) {
        clearTimeout(timer);
        resolve();
      }
    };
    demo.stdout!.on('data', onData);
    demo.stderr!.on('data', (d) => (output += d));
    demo.once('exit', (code) => reject(new Error(`demo exited with ${code}:\n${output}`)));
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  // The documented step: open <codec server>/login, enter the token.
  signedIn = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const login = await signedIn.newPage();
  await login.goto(`http://127.0.0.1:${ports.CODEC_SERVER_PORT}/login`);
  await login.fill('input[name="token"]', TOKEN);
  await login.getByRole('button', { name: 'Sign in' }).click();
  await login.getByText('Signed in', { exact: true }).waitFor({ timeout: 10_000 });
  await login.close();
});

after(async () => {
  await signedIn?.close();
  await browser?.close();
  if (demo && demo.exitCode === null) {
    demo.kill('SIGINT');
    await new Promise((r) => demo.once('exit', r));
  }
  if (state) rmSync(state, { recursive: true, force: true });
  await database.drop();
});

/**
 * The Event History tab's text once the page has loaded the events (and decoded them through the
 * codec server): the tab is clicked until `ready` matches, for at most 30 s.
 */
async function eventHistory(page: Page, allText: () => Promise<string>, ready: RegExp): Promise<string> {
  const deadline = Date.now() + 30_000;
  let text = '';
  while (!ready.test(text) && Date.now() < deadline) {
    await page.getByText('Event History', { exact: false }).first().click();
    await page.waitForTimeout(500);
    text = await allText();
  }
  return text;
}

test('filter by MailDomain and MailStatus, open the blocked email, read its summary and details', async () => {
  const ui = `http://127.0.0.1:${ports.DEMO_TEMPORAL_UI_PORT}`;
  const page = await signedIn.newPage();

  const query = encodeURIComponent('MailDomain="example.com" AND MailStatus="blocked"');
  await page.goto(`${ui}/namespaces/default/workflows?query=${query}`, { waitUntil: 'networkidle' });
  const rows = page.locator('a[href*="/workflows/inbound"]');
  await rows.first().waitFor({ timeout: 30_000 });
  const hrefs = [
    ...new Set(
      await rows.evaluateAll((as) =>
        as.map((a) => decodeURIComponent((a as unknown as { pathname: string }).pathname)),
      ),
    ),
  ];
  assert.equal(hrefs.length, 1, `only the blocked email matches: ${hrefs.join(', ')}`);
  assert.match(hrefs[0], /blocked-sender/);
  await page.screenshot({ path: join(ARTIFACTS, 'webui-filtered-list.png') });

  await rows.first().click();
  await page.waitForLoadState('networkidle');
  await page.getByText('fetchAndDeliver', { exact: false }).first().waitFor({ timeout: 30_000 });
  await page.getByText('User Metadata', { exact: true }).click();
  // The UI renders summary and details (markdown) in frames of their own.
  const allText = async () =>
    (
      await Promise.all(
        page.frames().map((f) =>
          f
            .locator('body')
            .innerText()
            .catch(() => ''),
        ),
      )
    ).join('\n');
  const deadline = Date.now() + 30_000;
  let text = await allText();
  while (!(/Inbound email/.test(text) && /blocked: 1 blocked/.test(text)) && Date.now() < deadline) {
    await page.waitForTimeout(500);
    text = await allText();
  }
  await page.screenshot({ path: join(ARTIFACTS, 'webui-blocked-email.png') });
  assert.match(
    text,
    /Inbound email s3:\/\/example-com-emails\/demo-[a-z0-9]+-3-blocked-sender/,
    'the start summary, decoded',
  );
  assert.match(
    text,
    /blocked: 1 blocked \(every recipient blocks deals@spam\.example\)/,
    'current details from the running worker',
  );
  // The Event History tab lists each event with its type and summary (UI 2.53: the User Metadata
  // tab holds only the run's summary and details).
  text = await eventHistory(page, allText, /Summary\s+delete blocked email/);
  assert.match(text, /Summary\s+tag S3 object: status=blocked/, 'activity summaries tell the story');
  assert.match(text, /Summary\s+delete blocked email \(after tagging\)/);
  // The fast path's steps are local activities: listed as such, each with its summary; the
  // delete is a regular activity (it runs once the tag's workflow task has completed).
  // Since BATCHED_PATCH the fetch reads the blocklist and rules too, and says so; since
  // FETCH_AND_DELIVER_PATCH it delivers an email that needs nothing else (this one is blocked).
  assert.match(text, step('fetchAndDeliver', FETCH_SUMMARY));
  assert.match(text, /Local Activity\s+Activity Type\s+tagEmail\s+Summary\s+tag S3 object: status=blocked/);
  assert.doesNotMatch(text, /Local Activity\s+Activity Type\s+deleteEmail/);

  // The Queries tab runs the workflow's `progress` query (no arguments) and shows its
  // encrypted answer decoded through the codec server.
  await page.getByText('Queries', { exact: true }).click();
  await page.getByRole('button', { name: 'Run Query' }).click();
  const queryDeadline = Date.now() + 30_000;
  text = await allText();
  while (!/"step": "done"/.test(text) && Date.now() < queryDeadline) {
    await page.waitForTimeout(500);
    text = await allText();
  }
  await page.screenshot({ path: join(ARTIFACTS, 'webui-progress-query.png') });
  assert.match(text, /"step": "done"/, 'the progress query answered, decoded');
  assert.match(text, /"recipient": "carol@example\.com",\s*"outcome": "blocked"/);
});

test('a delivered email on the fast path shows each local step with its summary', async () => {
  const ui = `http://127.0.0.1:${ports.DEMO_TEMPORAL_UI_PORT}`;
  const page = await signedIn.newPage();
  const query = encodeURIComponent('MailDomain="example.com" AND MailStatus="delivered"');
  await page.goto(`${ui}/namespaces/default/workflows?query=${query}`, { waitUntil: 'networkidle' });
  const rows = page.locator('a[href*="/workflows/inbound"]');
  await rows.first().waitFor({ timeout: 30_000 });
  await rows.first().click();
  await page.waitForLoadState('networkidle');
  await page.getByText('fetchAndDeliver', { exact: false }).first().waitFor({ timeout: 30_000 });
  const allText = async () =>
    (
      await Promise.all(
        page.frames().map((f) =>
          f
            .locator('body')
            .innerText()
            .catch(() => ''),
        ),
      )
    ).join('\n');
  // An email that needed nothing but its delivery is one step (fetchAndDeliver: fetched,
  // delivered and tagged); one with rules after the delivery has its steps one by one.
  const text = await eventHistory(page, allText, new RegExp(`Summary\\s+${FETCH_SUMMARY}`));
  await page.screenshot({ path: join(ARTIFACTS, 'webui-fast-path-email.png') });
  assert.match(text, step('fetchAndDeliver', FETCH_SUMMARY));
  if (/Activity Type\s+deliverEmail/.test(text))
    assert.match(text, step('tagEmail', 'tag S3 object: status=delivered'), 'rules ran: the tag is a step of its own');
  else assert.doesNotMatch(text, /Activity Type\s+tagEmail/, 'the fetch delivered and tagged it');
});

test("the inbound view: sync runs filtered out; MailStatus added as a column shows each email's outcome", async () => {
  const ui = `http://127.0.0.1:${ports.DEMO_TEMPORAL_UI_PORT}`;
  const page = await signedIn.newPage();
  // The link the demo prints: the inbound emails alone, whatever the syncs do.
  const link = new RegExp(`Temporal Web UI: (${ui}/namespaces/default/workflows\\?query=\\S+)`).exec(output)?.[1];
  assert.ok(link, output);
  await page.goto(link, { waitUntil: 'networkidle' });
  await page.locator('a[href*="/workflows/inbound"]').first().waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('a[href*="/workflows/sync-account"]').count(), 0, 'no sync runs in the inbound view');
  // docs/inbound.md: Configure Columns (the gear below the list), add MailStatus.
  await page.getByRole('button', { name: 'Configure Columns' }).first().click();
  await page.getByText('Configure Workflows Table').waitFor();
  // Under "Custom Search Attributes (not in view)": its + button.
  await page.getByRole('button', { name: 'Add MailStatus column' }).click();
  await page.getByRole('columnheader', { name: 'MailStatus' }).waitFor({ state: 'attached', timeout: 10_000 });
  await page.screenshot({ path: join(ARTIFACTS, 'webui-inbound-mailstatus.png') });
  const row = (label: string) => page.getByRole('row').filter({ hasText: label }).first().innerText();
  assert.match(await row('blocked-sender'), /\bblocked\b/);
  assert.match(await row('multi-recipient'), /\bpartial\b/);
  assert.match(await row('-1-plain'), /\bdelivered\b/);
});
