// New-message events, the pure parts: the webhook body (ids only), its signature and how a
// receiver verifies it (tampering, replay, secret rotation), what an HTTP answer means, the
// configuration's checks (the secret never quoted), and one POST against a local receiver.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadSyncConfig, MIN_WEBHOOK_SECRET_LENGTH } from '../../lib/config/sync';
import { postWebhook, webhookUrlLabel } from '../../lib/message-events/webhook-client';
import {
  SIGNATURE_HEADER,
  signWebhook,
  verifyWebhook,
  webhookAnswer,
  webhookBody,
} from '../../lib/message-events/signature';
import { messageEventWorkflowId, messageWebhookWorkflowId, type MessageEvent } from '../../contracts/message-events';

const SECRET = 'whsec-0123456789abcdef';
const event: MessageEvent = {
  type: 'messageNew',
  eventId: 17,
  userId: '11111111-1111-4111-8111-111111111111',
  accountId: '22222222-2222-4222-8222-222222222222',
  messageId: 4242,
  folder: 'INBOX',
  occurredAt: '2026-12-07T10:00:00.000Z',
};

describe('webhook body', () => {
  it('holds the event ids and nothing else, in a stable order', () => {
    const body = webhookBody(event);
    assert.deepEqual(Object.keys(JSON.parse(body)), [
      'type',
      'eventId',
      'userId',
      'accountId',
      'messageId',
      'folder',
      'occurredAt',
    ]);
    assert.deepEqual(JSON.parse(body), event);
    // Extra properties on the object (as a caller might add) never leak into the body.
    assert.equal(webhookBody({ ...event, subject: 'secret plans' } as MessageEvent), body);
  });

  it('workflow ids are derived from the message row', () => {
    assert.equal(messageEventWorkflowId(event.accountId, 4242), `message-event/${event.accountId}/4242`);
    assert.equal(messageWebhookWorkflowId(event.accountId, 4242), `message-webhook/${event.accountId}/4242`);
  });
});

describe('webhook signature', () => {
  const body = webhookBody(event);
  const t = 1_765_100_000;

  it('is t=<seconds>,v1=<HMAC-SHA-256 of "t.body"> as documented', () => {
    const header = signWebhook([SECRET], body, t);
    const expected = createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex');
    assert.equal(header, `t=${t},v1=${expected}`);
  });

  it('gives the value docs/account-sync.md shows for its example', () => {
    const documented: MessageEvent = {
      ...event,
      userId: '0b6f3f2e-5a51-4c39-9a8e-3f1f1c2d4e5f',
      accountId: '3f1c9a6e-2b7d-4e8f-9c0a-1d2e3f4a5b6c',
    };
    const docs = readFileSync(join(__dirname, '..', '..', 'docs', 'account-sync.md'), 'utf8');
    assert.ok(docs.includes(webhookBody(documented)), 'the documented body');
    const header = signWebhook(['whsec-example-0123456789'], webhookBody(documented), 1765101600);
    assert.ok(docs.includes(`X-Mailroom-Signature: ${header}`), `the documented header ${header}`);
  });

  it('verifies over the raw body within the tolerance', () => {
    const header = signWebhook([SECRET], body, t);
    assert.deepEqual(verifyWebhook([SECRET], body, header, { now: t + 10 }), { ok: true, timestamp: t });
    assert.deepEqual(verifyWebhook([SECRET], Buffer.from(body), header, { now: t - 10 }), { ok: true, timestamp: t });
  });

  it('refuses a changed body, another secret, a missing or malformed header', () => {
    const header = signWebhook([SECRET], body, t);
    assert.equal(verifyWebhook([SECRET], body.replace('4242', '4243'), header, { now: t }).ok, false);
    assert.equal(verifyWebhook(['another-secret-0123456789'], body, header, { now: t }).ok, false);
    assert.equal(verifyWebhook([SECRET], body, undefined, { now: t }).ok, false);
    assert.equal(verifyWebhook([SECRET], body, 'v1=abc', { now: t }).ok, false);
    assert.equal(verifyWebhook([SECRET], body, `t=${t}`, { now: t }).ok, false);
    // The timestamp is signed: moving it forward breaks the signature.
    assert.equal(verifyWebhook([SECRET], body, header.replace(`t=${t}`, `t=${t + 1}`), { now: t }).ok, false);
  });

  it('refuses a replay outside the tolerance (5 minutes by default)', () => {
    const header = signWebhook([SECRET], body, t);
    const late = verifyWebhook([SECRET], body, header, { now: t + 301 });
    assert.equal(late.ok, false);
    assert.match((late as { reason: string }).reason, /replayed/);
    assert.equal(verifyWebhook([SECRET], body, header, { now: t + 3600, toleranceSeconds: 7200 }).ok, true);
  });

  it('signs with every configured secret, so a receiver on either side of a rotation accepts it', () => {
    const header = signWebhook(['new-secret-0123456789', SECRET], body, t);
    assert.equal(header.split(',').length, 3);
    assert.equal(verifyWebhook([SECRET], body, header, { now: t }).ok, true);
    assert.equal(verifyWebhook(['new-secret-0123456789'], body, header, { now: t }).ok, true);
  });

  it('refuses to sign without a secret', () => {
    assert.throws(() => signWebhook([], body, t), /SYNC_WEBHOOK_SECRET/);
  });
});

describe('webhook answers', () => {
  it('2xx delivered; 408, 429, 5xx retried; other 4xx and redirects refused', () => {
    for (const s of [200, 201, 202, 204]) assert.equal(webhookAnswer(s), 'delivered');
    for (const s of [408, 429, 500, 502, 503, 504]) assert.equal(webhookAnswer(s), 'retry');
    for (const s of [301, 302, 307, 400, 401, 403, 404, 410, 422]) assert.equal(webhookAnswer(s), 'refused');
  });

  it('a URL is labelled without its query or credentials', () => {
    assert.equal(webhookUrlLabel('https://hooks.example.com/in/mail?token=abc'), 'https://hooks.example.com/in/mail');
  });

  it('one POST to a local receiver: signed body, event headers, answer classified', async () => {
    let status = 204;
    const seen: { body: string; headers: Record<string, string | string[] | undefined> }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ body: Buffer.concat(chunks).toString(), headers: req.headers });
        res.writeHead(status).end(status === 400 ? 'bad\u001b[31m input' : '');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=t0ps3cret`;
    try {
      const ok = await postWebhook(url, [SECRET], event, { timeoutMs: 5000 });
      assert.equal(ok.outcome, 'delivered');
      assert.equal(seen[0].body, webhookBody(event));
      assert.equal(seen[0].headers['content-type'], 'application/json');
      assert.equal(seen[0].headers['x-mailroom-event-id'], '17');
      assert.equal(seen[0].headers['x-mailroom-event'], 'messageNew');
      const header = seen[0].headers[SIGNATURE_HEADER.toLowerCase()] as string;
      assert.equal(verifyWebhook([SECRET], seen[0].body, header).ok, true);

      status = 503;
      const later = await postWebhook(url, [SECRET], event, { timeoutMs: 5000 });
      assert.equal(later.outcome, 'retry');
      assert.match(later.detail, /HTTP 503/);
      assert.doesNotMatch(later.detail, /t0ps3cret/);
      // What enters history: the status only, no address, no receiver's words.
      assert.equal(later.summary, 'HTTP 503');

      status = 400;
      const refused = await postWebhook(url, [SECRET], event, { timeoutMs: 5000 });
      assert.equal(refused.outcome, 'refused');
      assert.ok(!refused.detail.includes('\u001b'));
      assert.match(refused.detail, /answered HTTP 400: bad\[?.*input/);
      assert.equal(refused.summary, 'HTTP 400');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    const down = await postWebhook(url, [SECRET], event, { timeoutMs: 5000 });
    assert.equal(down.outcome, 'retry');
    assert.equal(down.status, null);
    assert.match(down.detail, /^POST http:\/\/127.0.0.1:\d+\/hook failed: /);
    assert.match(down.summary, /^no answer \([A-Z_]+\)$/);
  });
});

describe('events configuration', () => {
  it('is off by default, on with a workflow type or a webhook URL', () => {
    const none = loadSyncConfig({}).events;
    assert.equal(none.workflowType, null);
    assert.equal(none.webhookUrl, null);
    assert.equal(none.enabledByDefault, true);
    const on = loadSyncConfig({
      SYNC_EVENTS_WORKFLOW_TYPE: 'handleNewMessage',
      SYNC_EVENTS_TASK_QUEUE: 'assistant',
      SYNC_WEBHOOK_URL: 'https://crm.example.com/hooks/mail',
      SYNC_WEBHOOK_SECRET: `${SECRET}, second-secret-0123456`,
      SYNC_WEBHOOK_GIVE_UP_SECONDS: '600',
      SYNC_EVENTS_ENABLED: 'no',
    }).events;
    assert.equal(on.workflowType, 'handleNewMessage');
    assert.equal(on.workflowTaskQueue, 'assistant');
    assert.deepEqual(on.webhookSecrets, [SECRET, 'second-secret-0123456']);
    assert.equal(on.webhookGiveUpSeconds, 600);
    assert.equal(on.enabledByDefault, false);
  });

  it('refuses a webhook without a secret, a short secret and a bad URL, without quoting the secret', () => {
    assert.throws(() => loadSyncConfig({ SYNC_WEBHOOK_URL: 'https://x.example/h' }), /SYNC_WEBHOOK_SECRET: required/);
    const short = 'tiny-secret';
    assert.ok(short.length < MIN_WEBHOOK_SECRET_LENGTH);
    assert.throws(
      () => loadSyncConfig({ SYNC_WEBHOOK_URL: 'https://x.example/h', SYNC_WEBHOOK_SECRET: short }),
      (err: Error) => /at least 16 characters/.test(err.message) && !err.message.includes(short),
    );
    assert.throws(
      () => loadSyncConfig({ SYNC_WEBHOOK_URL: 'ftp://x.example/h', SYNC_WEBHOOK_SECRET: SECRET }),
      /SYNC_WEBHOOK_URL: must be http/,
    );
    assert.throws(
      () => loadSyncConfig({ SYNC_WEBHOOK_URL: 'https://u:p@x.example/h', SYNC_WEBHOOK_SECRET: SECRET }),
      /must not hold a user or password/,
    );
    assert.throws(() => loadSyncConfig({ SYNC_EVENTS_ENABLED: 'maybe' }), /SYNC_EVENTS_ENABLED/);
  });
});
