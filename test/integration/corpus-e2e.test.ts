// The shared corpus of real bounces, auto-replies and reports, in CRLF, LF, bare-CR and mixed
// line endings, each delivered to a mailbox with an active out-of-office rule and a forward
// to an outside address, through the whole pipeline on the real stack (Temporal, S3,
// DynamoDB, SMTP targets, SES v2 server): not one auto-reply and not one outside forward
// may leave, every object ends tagged in a terminal state, and every SES bounce and
// complaint (DSN, feedback report, SNS JSON) is matched to our outbound message. Ordinary
// mail afterwards does get its replies and forwards, so the check can fail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { addressList, domainOf } from '../../lib/mail/address';
import type { InboundResult } from '../../contracts/inbound';
import { startInbound } from '../../starters/start-inbound';
import { EMAIL_STATUSES } from '../../contracts/email-status';
import { DEFAULT_TABLES } from '../../scripts/stack/dynamodb';
import { rawMail, sesBounce, sesComplaint, snsNotificationMail } from '../../scripts/stack/demo-emails';
import { corpusFiles } from '../support/corpus';
import { BUCKET, DOMAIN, type InboundStack, startInboundStack } from '../support/inbound-stack';
import { LINE_ENDINGS, withLineEndings } from '../support/line-endings';

const AWAY = 'away@example.com'; // out of office, forwards everything to AWAY_HOME
const AWAY_HOME = 'away.home@elsewhere.example';
const HUMAN = new Set([
  'bounces/spam-bogus-email-in-report.msg',
  'bounces/spam-lots-of-bogus-addresses.msg',
  'bounces/spam-with-badly-parsed-email.msg',
  'bounces/spam-with-image.msg',
]);

let stack: InboundStack;

before(async () => {
  stack = await startInboundStack({ mailboxes: [AWAY] });
  await stack.putItem(DEFAULT_TABLES.rules, {
    email_address: AWAY,
    ooo_active: true,
    ooo_message: 'I am away.',
    ooo_content_type: 'text',
    forwards: [AWAY_HOME],
  });
});

after(async () => {
  await stack?.stop();
});

/**
 * As SES would store it for AWAY: its Received line on top, and the message addressed to
 * AWAY (the first To replaced), so that only the mail's own nature can stop a reply.
 */
function addressedToAway(raw: Buffer, n: number): Buffer {
  const text = raw.toString('latin1');
  const nl = /\r\n/.test(text) ? '\r\n' : /\n/.test(text) ? '\n' : '\r';
  const withTo = /^To:.*$/im.test(text.split(/\r?\n\r?\n|\r\r/)[0])
    ? text.replace(/^To:.*$/im, `To: ${AWAY}`)
    : `To: ${AWAY}${nl}${text}`;
  return Buffer.from(
    `Received: from mx${n}.sender.example by inbound-smtp.us-east-1.amazonaws.com with SMTP id c${n} for ${AWAY}; Mon, 30 Nov 2026 10:00:00 +0000${nl}${withTo}`,
    'latin1',
  );
}

/** Runs the emails through the pipeline, 24 at a time, and returns the results by key. */
async function runAll(emails: { key: string; raw: Buffer }[]): Promise<Map<string, InboundResult>> {
  const results = new Map<string, InboundResult>();
  const queue = [...emails];
  const lane = async () => {
    for (let e = queue.shift(); e; e = queue.shift()) {
      await stack.put(e.raw, e.key);
      const { workflowId } = await startInbound(stack.env.client, stack.config.taskQueue, {
        domain: DOMAIN,
        bucket: BUCKET,
        key: e.key,
        envelopeRecipients: [AWAY],
      });
      results.set(e.key, await stack.env.client.workflow.getHandle(workflowId).result());
    }
  };
  await Promise.all(Array.from({ length: 24 }, lane));
  return results;
}

async function assertAllTagged(results: Map<string, InboundResult>): Promise<void> {
  const untagged: string[] = [];
  for (const [key, r] of results) {
    const meta = await stack.metadata(key);
    if (meta?.processed !== 'true' || meta.status !== r.status || !EMAIL_STATUSES.includes(r.status))
      untagged.push(`${key}: ${r.status} / ${JSON.stringify(meta)}`);
  }
  assert.deepEqual(untagged, []);
}

test(
  'automatic corpus mail in every line-ending style: zero auto-replies, zero outside forwards, all tagged',
  { timeout: 20 * 60_000 },
  async () => {
    const automatic = [
      ...corpusFiles('bounces').filter((f) => !HUMAN.has(f.name)),
      ...corpusFiles('mail-gem/multipart_report_emails'),
    ];
    assert.ok(automatic.length > 120);
    const emails = automatic.flatMap((f, i) =>
      LINE_ENDINGS.map((style) => ({
        key: `corpus/${style}/${f.name}`,
        raw: withLineEndings(addressedToAway(readFileSync(f.path), i), style, i),
      })),
    );
    const results = await runAll(emails);

    assert.equal(results.size, emails.length);
    const replied = [...results].filter(([, r]) => r.autoReplies.some((a) => a.sent)).map(([k]) => k);
    const forwarded = [...results].filter(([, r]) => r.forwards.some((f) => f.sent !== false)).map(([k]) => k);
    assert.deepEqual(replied, [], 'auto-replies to automatic mail');
    assert.deepEqual(forwarded, [], 'outside forwards of automatic mail');
    assert.deepEqual(await stack.ses.emails(), [], 'nothing reached the SES endpoint');
    assert.equal((await stack.mail.messagesFor(AWAY_HOME)).length + (await stack.internal.deliveries()).length, 0);
    const notDelivered = [...results]
      .filter(([, r]) => r.status !== 'delivered')
      .map(([k, r]) => `${k}: ${r.status} ${r.reason ?? ''}`);
    assert.deepEqual(notDelivered, [], 'every one still delivered to the mailbox, as stored');
    await assertAllTagged(results);
  },
);

test(
  'SES bounces and complaints (DSN, feedback report, SNS JSON) in every style are all matched to our outbound message',
  { timeout: 10 * 60_000 },
  async () => {
    const reports: { key: string; raw: Buffer; kind: 'bounce' | 'complaint'; who: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const id = `0100018c${String(i).padStart(8, '0')}-1a2b3c4d-1111-2222-3333-44445555${String(i).padStart(4, '0')}-000000`;
      const far = `someone${i}@far.example`;
      await stack.putItem(DEFAULT_TABLES.messages, {
        MessageId: id,
        source: AWAY,
        destinations: [far],
        subject: `Offer ${i}`,
        timestamp: 1,
      });
      const kinds: { raw: Buffer; kind: 'bounce' | 'complaint' }[] = [
        {
          raw: sesBounce({
            to: AWAY,
            sesMessageId: id,
            bouncedRecipient: far,
            originalSubject: `Offer ${i}`,
            region: i % 2 ? 'eu-west-1' : 'us-east-1',
          }),
          kind: 'bounce',
        },
        {
          raw: sesComplaint({
            to: AWAY,
            sesMessageId: id,
            complainedRecipient: i % 2 ? far : undefined,
            originalSubject: `Offer ${i}`,
          }),
          kind: 'complaint',
        },
        {
          raw: snsNotificationMail({
            to: AWAY,
            type: 'Bounce',
            sesMessageId: id,
            recipients: [far],
            originalSubject: `Offer ${i}`,
            jsonEnvelope: i % 2 === 0,
          }),
          kind: 'bounce',
        },
        {
          raw: snsNotificationMail({
            to: AWAY,
            type: 'Complaint',
            sesMessageId: id,
            recipients: [far],
            jsonEnvelope: i % 2 === 1,
          }),
          kind: 'complaint',
        },
      ];
      for (const [j, k] of kinds.entries())
        for (const style of LINE_ENDINGS)
          reports.push({
            key: `reports/${i}-${j}-${style}`,
            raw: withLineEndings(k.raw, style, i + j),
            kind: k.kind,
            who: far,
          });
    }
    const results = await runAll(reports);
    const wrong = reports
      .map((r) => ({ r, res: results.get(r.key)! }))
      .filter(
        ({ r, res }) =>
          !(
            res.bounce?.matched &&
            res.bounce.kind === r.kind &&
            res.bounce.bouncedRecipient === r.who &&
            res.bounce.rewritten &&
            res.status === 'delivered'
          ),
      )
      .map(({ r, res }) => `${r.key}: ${JSON.stringify(res.bounce)} ${res.status}`);
    assert.deepEqual(wrong, []);
    // The user sees who bounced or complained, in every style.
    const inbox = await stack.mail.messagesFor(AWAY);
    assert.ok(
      inbox.filter((m) => /^X-Mailroom-Bounced-Recipient: someone\d@far\.example$/m.test(m)).length >= reports.length,
    );
    assert.deepEqual(await stack.ses.emails(), [], 'no reply and no forward for reports');
    await assertAllTagged(results);
  },
);

test(
  'ordinary mail afterwards is answered once per sender and forwarded, in our name, through SES',
  { timeout: 5 * 60_000 },
  async () => {
    const senders = Array.from({ length: 5 }, (_, i) => `person${i}@sender.example`);
    const emails = senders.flatMap((from, i) =>
      LINE_ENDINGS.map((style) => ({
        key: `human/${i}-${style}`,
        raw: withLineEndings(rawMail({ from, to: [AWAY], subject: `Question ${i} (${style})` }), style, i),
      })),
    );
    const results = await runAll(emails);
    const replies = [...results.values()].flatMap((r) => r.autoReplies.filter((a) => a.sent));
    assert.equal(replies.length, senders.length, 'one reply per sender per period');
    const sent = await stack.ses.emails();
    assert.equal(sent.length, senders.length + emails.length, 'the replies and one outside forward per email');
    for (const e of sent)
      assert.equal(
        domainOf(addressList(e.from)[0] ?? ''),
        DOMAIN,
        `SES received a From outside our domains: ${e.from}`,
      );
    assert.equal(sent.filter((e) => /via example\.com/.test(e.from)).length, emails.length);
  },
);
