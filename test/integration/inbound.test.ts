// The inbound pipeline end to end: real Temporal dev server, versitygw (S3), dynalite and SMTP
// servers. Each case checks what lands in which mailbox and what S3 says afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseHeaderBlock } from '../../lib/mail/headers';
import { inboundOutcome, startInbound } from '../../starters/start-inbound';
import { DEFAULT_TABLES } from '../../scripts/stack/dynamodb';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { rawMail, sesBounce, sesStored, snsNotificationMail } from '../../scripts/stack/demo-emails';
import { activitySteps } from '../support/history-steps';
import { SNS_FIXTURES, snsFixture } from '../support/ses-notification-fixtures';
import { BUCKET, DOMAIN, inboundWorkflowId, type InboundStack, startInboundStack } from '../support/inbound-stack';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';
const DAVE = 'dave@example.com'; // out of office
const ERIN = 'erin@example.com'; // forwards to frank (internal) and to an outside address
const FRANK = 'frank@example.org';
const GRACE = 'grace@example.com'; // blocks *@spam.example
const HANK = 'hank@example.com'; // out of office; forwards to an unknown internal address (refused) and to frank
const OUTSIDE = 'someone@sender.example';

let stack: InboundStack;

before(async () => {
  stack = await startInboundStack({
    mailboxes: [ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE, HANK],
    env: { MAX_MESSAGE_BYTES: '1000000', FAST_PATH_MAX_BYTES: '200000' },
  });
  await stack.putItem(DEFAULT_TABLES.rules, {
    email_address: HANK,
    ooo_active: true,
    ooo_message: 'Away.',
    ooo_content_type: 'text',
    forwards: ['ghost@example.org', FRANK],
  });
  await stack.putItem(DEFAULT_TABLES.blocked, {
    email_address: GRACE,
    blocked_patterns: ['*@SPAM.example', 'exact@bad.example'],
  });
  await stack.putItem(DEFAULT_TABLES.blocked, { email_address: BOB, blocked_patterns: ['*@spam.example'] });
  await stack.putItem(DEFAULT_TABLES.rules, {
    email_address: DAVE,
    ooo_active: true,
    ooo_message: 'I am away until Monday.',
    ooo_content_type: 'text',
    forwards: [],
  });
  await stack.putItem(DEFAULT_TABLES.rules, {
    email_address: ERIN,
    ooo_active: false,
    forwards: [FRANK, 'erin.private@elsewhere.example'],
  });
});

after(async () => {
  await stack?.stop();
});

describe('inbound pipeline', () => {
  test('plain email is delivered and tagged; a second trigger is a no-op', async () => {
    const key = await stack.put(rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Plain hello' }));
    const result = await stack.run({ key });
    assert.equal(result.status, 'delivered');
    assert.deepEqual(result.recipients, [{ recipient: ALICE, outcome: 'delivered' }]);
    const inbox = await stack.mail.messagesFor(ALICE);
    assert.equal(inbox.filter((m) => m.includes('Subject: Plain hello')).length, 1);
    const meta = await stack.metadata(key);
    assert.equal(meta?.processed, 'true');
    assert.equal(meta?.status, 'delivered');
    assert.equal(meta?.processed_by, 'test-worker');
    assert.ok(Math.abs(Number(meta?.processed_at) - Date.now() / 1000) < 120);

    const again = await stack.run({ key });
    assert.deepEqual(again, result, 'the second trigger returns the first run, not a new one');
    assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Subject: Plain hello')).length, 1);
  });

  test('an ordinary email is one workflow task: every step a local activity, the tag naming its run', async () => {
    const key = await stack.put(rawMail({ from: 'fast@sender.example', to: [ALICE, DAVE], subject: 'Fast path' }));
    const result = await stack.run({ key });
    assert.equal(result.status, 'delivered');
    const handle = stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key));
    const history = await handle.fetchHistory();
    const steps = activitySteps(history);
    assert.deepEqual(
      steps.map((s) => s.type),
      // Since BATCHED_PATCH the fetch reads the blocklist and rules too (one DynamoDB request); since
      // FETCH_AND_DELIVER_PATCH the local fetch is fetchAndDeliver, which leaves mail with rules to the steps.
      ['fetchAndDeliver', 'deliverEmail', 'sendAutoReply', 'tagEmail'],
    );
    assert.deepEqual(
      result.autoReplies.map((r) => r.sent),
      [true],
    );
    assert.ok(
      steps.every((s) => s.local),
      'all local',
    );
    assert.equal(
      (history.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes).length,
      1,
      'one workflow task',
    );
    assert.equal((await stack.metadata(key))?.processed_run, (await handle.describe()).runId);
  });

  test('a message over FAST_PATH_MAX_BYTES takes the regular, heartbeating activities', async () => {
    const key = await stack.put(
      rawMail({
        from: OUTSIDE,
        to: [ALICE, CAROL],
        subject: 'Scanned contract',
        body: 'Lorem ipsum dolor sit amet.\r\n'.repeat(10_000),
      }),
    );
    const result = await stack.run({ key });
    assert.equal(result.status, 'delivered');
    assert.equal(
      (await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Subject: Scanned contract')).length,
      1,
    );
    const steps = activitySteps(
      await stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).fetchHistory(),
    );
    // The local fetch only looked (HEAD) and found it large; the regular fetch reads the lookups too.
    assert.deepEqual(
      steps.map((s) => `${s.type}${s.local ? ' (local)' : ''}`),
      ['fetchAndDeliver (local)', 'fetchEmail', 'deliverEmail', 'tagEmail'],
    );
    assert.equal((await stack.metadata(key))?.status, 'delivered');
  });

  test('a key under a prefix (the object key prefix of the SES action) is delivered and tagged', async () => {
    const key = await stack.put(
      rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Prefixed key' }),
      `inbound/2026/${Date.now()} b.eml`,
    );
    const result = await stack.run({ key });
    assert.equal(result.status, 'delivered');
    const meta = await stack.metadata(key);
    assert.equal(meta?.processed, 'true', 'the copy-in-place that writes the tags found the object');
    assert.equal(meta?.status, 'delivered');
  });

  test('keys with +, ?, #, spaces and %2B are delivered and tagged, each its own object', async () => {
    // SES writes whatever the receipt rule's prefix and message id make; S3 keys are any
    // UTF-8. "x+y", "x y" and "x%2By" are three different objects.
    const keys = ['odd/x+y', 'odd/x y', 'odd/x%2By', 'odd/what?a=1#frag', 'odd/ü +?#%2B'].map(
      (k) => `${k}-${Date.now()}`,
    );
    for (const [i, key] of keys.entries())
      await stack.put(rawMail({ from: OUTSIDE, to: [ALICE], subject: `Odd key ${i}` }), key);
    for (const [i, key] of keys.entries()) {
      const result = await stack.run({ key });
      assert.equal(result.status, 'delivered', key);
      const meta = await stack.metadata(key);
      assert.equal(meta?.processed, 'true', `${key} was tagged`);
      assert.equal(meta?.status, 'delivered', key);
      assert.equal(
        (await stack.mail.messagesFor(ALICE)).filter((m) => m.includes(`Subject: Odd key ${i}`)).length,
        1,
        `${key} delivered once`,
      );
    }
  });

  test('multi-recipient with an unknown user: partial, invalid_inboxes, the others delivered', async () => {
    const key = await stack.put(
      rawMail({
        from: OUTSIDE,
        to: [ALICE, 'ghost@example.com'],
        cc: [CAROL, 'x@not-ours.example'],
        subject: 'Team note',
      }),
    );
    const result = await stack.run({ key });
    assert.equal(result.status, 'partial');
    const byRcpt = Object.fromEntries(result.recipients.map((r) => [r.recipient, r]));
    assert.equal(byRcpt[ALICE].outcome, 'delivered');
    assert.equal(byRcpt[CAROL].outcome, 'delivered');
    assert.equal(byRcpt['ghost@example.com'].outcome, 'invalid');
    assert.equal(byRcpt['ghost@example.com'].code, 550);
    assert.equal(byRcpt['x@not-ours.example'], undefined, 'other domains are not ours to deliver');
    assert.equal((await stack.mail.messagesFor(CAROL)).filter((m) => m.includes('Subject: Team note')).length, 1);
    const meta = await stack.metadata(key);
    assert.equal(meta?.status, 'partial');
    assert.equal(meta?.invalid_inboxes, 'ghost@example.com');
  });

  test('envelope recipients (SES notification) reach a Bcc recipient', async () => {
    const key = await stack.put(rawMail({ from: OUTSIDE, to: [ALICE], subject: 'With bcc' }));
    const result = await stack.run({ key, envelopeRecipients: [ALICE, CAROL] });
    assert.equal(result.status, 'delivered');
    assert.equal((await stack.mail.messagesFor(CAROL)).filter((m) => m.includes('Subject: With bcc')).length, 1);
  });

  test('sender blocked by every recipient: tagged blocked, then deleted, nothing delivered', async () => {
    const key = await stack.put(rawMail({ from: 'Promo@Spam.Example', to: [GRACE, BOB], subject: 'Buy now' }));
    const result = await stack.run({ key });
    assert.equal(result.status, 'blocked');
    assert.deepEqual(result.recipients.map((r) => [r.recipient, r.outcome]).sort(), [
      [BOB, 'blocked'],
      [GRACE, 'blocked'],
    ]);
    assert.equal(await stack.metadata(key), undefined, 'the object is deleted');
    for (const r of [GRACE, BOB])
      assert.equal((await stack.mail.messagesFor(r)).filter((m) => m.includes('Buy now')).length, 0);
    // The audit tag is written before the delete: read the order from the history. The tag is
    // a local activity (fast path); the delete a regular one, scheduled only once the workflow
    // task holding the tag completed, so a worker that dies meanwhile never runs the fast path's
    // steps again on a deleted object.
    const history = await stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).fetchHistory();
    assert.deepEqual(activitySteps(history).slice(-2), [
      { type: 'tagEmail', local: true },
      { type: 'deleteEmail', local: false },
    ]);
  });

  test('sender blocked by one recipient: the others still get it, blocked_recipients recorded', async () => {
    const key = await stack.put(rawMail({ from: 'exact@bad.example', to: [GRACE, ALICE], subject: 'Half blocked' }));
    const result = await stack.run({ key });
    assert.equal(result.status, 'partial');
    assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Half blocked')).length, 1);
    assert.equal((await stack.mail.messagesFor(GRACE)).filter((m) => m.includes('Half blocked')).length, 0);
    const meta = await stack.metadata(key);
    assert.equal(meta?.blocked_recipients, GRACE);
    assert.equal(meta?.blocked_sender, 'exact@bad.example');
  });

  test('out of office: one RFC 3834 reply per sender, through SES, none to list mail', async () => {
    const sender = 'colleague@partner.example';
    const repliesTo = async (to: string) =>
      (await stack.ses.emails()).filter((e) => e.destination.to.some((t) => t.includes(to)));
    const first = await stack.run({ key: await stack.put(rawMail({ from: sender, to: [DAVE], subject: 'Meeting?' })) });
    assert.equal(first.status, 'delivered');
    assert.deepEqual(first.autoReplies, [{ recipient: DAVE, to: sender, sent: true }]);
    const replies = await repliesTo(sender);
    assert.equal(replies.length, 1);
    assert.equal(replies[0].subject, 'Auto: Meeting?');
    assert.match(replies[0].from, /dave@example\.com/);
    assert.match(replies[0].body.text ?? '', /I am away until Monday\./);
    assert.equal(
      (await stack.mail.messagesFor(sender)).length,
      0,
      'outbound mail leaves through SES, not the mail server',
    );

    const second = await stack.run({
      key: await stack.put(rawMail({ from: sender, to: [DAVE], subject: 'Meeting again?' })),
    });
    assert.equal(second.autoReplies[0].sent, false);
    assert.match(second.autoReplies[0].reason ?? '', /already replied/);
    assert.equal((await repliesTo(sender)).length, 1, 'at most one reply per period');

    const list = await stack.run({
      key: await stack.put(
        rawMail({
          from: 'news@lists.example',
          to: [DAVE],
          subject: 'Digest',
          headers: { 'List-Id': '<digest.lists.example>', Precedence: 'list' },
        }),
      ),
    });
    assert.equal(list.status, 'delivered');
    assert.equal(list.autoReplies[0].sent, false);
    assert.equal((await repliesTo('news@lists.example')).length, 0);

    // Bcc'd (not in To/Cc): RFC 5230 4.5, no reply.
    const bcc = await stack.run({
      key: await stack.put(rawMail({ from: 'other@partner.example', to: [ALICE], subject: 'Bcc to Dave' })),
      envelopeRecipients: [ALICE, DAVE],
    });
    assert.equal(bcc.status, 'delivered');
    assert.match(bcc.autoReplies[0].reason ?? '', /not named in To, Cc or Bcc/);
    assert.equal((await repliesTo('other@partner.example')).length, 0);
  });

  test('forwarding: own domains go to the internal port, others out through SES in our name; both marked', async () => {
    const key = await stack.put(
      rawMail({
        from: `Some One <${OUTSIDE}>`,
        to: [ERIN],
        subject: 'Please forward',
        headers: { 'DKIM-Signature': 'v=1; d=sender.example; b=abc', Sender: OUTSIDE },
      }),
    );
    const result = await stack.run({ key });
    assert.equal(result.status, 'delivered');
    assert.deepEqual(
      result.forwards.sort((a, b) => a.to.localeCompare(b.to)),
      [
        { recipient: ERIN, to: 'erin.private@elsewhere.example', route: 'outbound', sent: true },
        { recipient: ERIN, to: FRANK, route: 'internal', sent: true },
      ],
    );
    const internalCopy = await stack.internal.messagesFor(FRANK);
    assert.equal(internalCopy.length, 1);
    assert.match(internalCopy[0], /^X-Mailroom-Processed: test-worker; forwarded-for=erin@example\.com/);
    assert.match(
      internalCopy[0],
      /^From: Some One <someone@sender\.example>/m,
      'an internal forward keeps the original From',
    );
    assert.equal((await stack.mail.messagesFor(FRANK)).length, 0, 'internal forwards never take the outbound path');
    assert.equal(
      (await stack.mail.messagesFor('erin.private@elsewhere.example')).length,
      0,
      'outside forwards leave through SES',
    );
    const out = (await stack.ses.emails()).filter((e) => e.subject === 'Please forward');
    assert.equal(out.length, 1);
    assert.equal(out[0].from, '"Some One via example.com" <erin@example.com>');
    assert.deepEqual(out[0].replyTo, ['"Some One" <someone@sender.example>']);
    assert.equal((await stack.mail.messagesFor(ERIN)).filter((m) => m.includes('Please forward')).length, 1);
  });

  test('each rule on its own: a refused forward is recorded, the other forward and the reply still go', async () => {
    const key = await stack.put(rawMail({ from: 'client@partner.example', to: [HANK], subject: 'For Hank' }));
    const result = await stack.run({ key });
    assert.equal(result.status, 'delivered');
    assert.equal(result.forwards.length, 2);
    assert.deepEqual(result.forwards[0].sent, false);
    assert.match(result.forwards[0].reason ?? '', /ghost@example\.org .*550/);
    assert.deepEqual(result.forwards[1], { recipient: HANK, to: FRANK, route: 'internal', sent: true });
    assert.deepEqual(result.autoReplies, [{ recipient: HANK, to: 'client@partner.example', sent: true }]);
    assert.equal((await stack.internal.messagesFor(FRANK)).filter((m) => m.includes('For Hank')).length, 1);
    assert.match((await stack.metadata(key))?.error ?? '', /forward: .*ghost@example\.org/);
  });

  test('SES verdicts: virus FAIL is quarantined (kept, tagged, not delivered); spam FAIL is delivered marked and not answered', async () => {
    const virus = await stack.put(
      sesStored({ from: OUTSIDE, to: [ALICE], subject: 'Invoice.exe' }, { spam: 'PASS', virus: 'FAIL' }),
    );
    const q = await stack.run({ key: virus });
    assert.equal(q.status, 'quarantined');
    assert.equal(q.verdicts, 'spam=PASS virus=FAIL');
    const meta = await stack.metadata(virus);
    assert.equal(meta?.status, 'quarantined');
    assert.equal(meta?.ses_verdicts, 'spam=PASS virus=FAIL');
    assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Invoice.exe')).length, 0);

    const spam = await stack.run({
      key: await stack.put(
        sesStored(
          { from: 'winner@lottery.example', to: [DAVE], subject: 'You won' },
          { spam: 'FAIL', virus: 'PASS', spf: 'PASS', dkim: 'PASS', dmarc: 'PASS' },
        ),
      ),
    });
    assert.equal(spam.status, 'delivered');
    assert.deepEqual(spam.autoReplies, [
      { recipient: DAVE, to: 'winner@lottery.example', sent: false, reason: 'SES spam verdict FAIL' },
    ]);
    const copy = (await stack.mail.messagesFor(DAVE)).find((m) => m.includes('You won'))!;
    assert.equal(parseHeaderBlock(copy).get('x-mailroom-spam')?.[0], 'yes');
  });

  test('an SES bounce mailed by SNS (JSON) is matched and rewritten; a Delivery notification is neither', async () => {
    const id = '0100018c11112222-1a2b3c4d-1111-2222-3333-444455556666-000000';
    await stack.putItem(DEFAULT_TABLES.messages, {
      MessageId: id,
      source: ALICE,
      destinations: ['jane@far.example'],
      subject: 'Invoice',
      timestamp: 1,
    });
    const bounced = await stack.run({
      key: await stack.put(
        snsNotificationMail({
          to: ALICE,
          type: 'Bounce',
          sesMessageId: id,
          recipients: ['jane@far.example'],
          originalSubject: 'Invoice',
        }),
      ),
    });
    assert.deepEqual(bounced.bounce, {
      matched: true,
      bouncedRecipient: 'jane@far.example',
      kind: 'bounce',
      rewritten: true,
    });
    const copy = (await stack.mail.messagesFor(ALICE)).find((m) => m.includes(id))!;
    assert.match(parseHeaderBlock(copy).get('subject')![0], /jane@far\.example/);
    const delivered = await stack.run({
      key: await stack.put(
        snsNotificationMail({ to: DAVE, type: 'Delivery', sesMessageId: id, recipients: ['jane@far.example'] }),
      ),
    });
    assert.equal(delivered.bounce, undefined);
    assert.equal(delivered.autoReplies[0].sent, false);
  });

  test('SES notifications mailed by SNS as relays deliver them (broken lines, escaped envelope, quoted-printable) are matched and rewritten', async () => {
    for (const f of SNS_FIXTURES) {
      await stack.putItem(DEFAULT_TABLES.messages, {
        MessageId: f.messageId,
        source: ALICE,
        destinations: f.destinations,
        subject: f.subject,
        timestamp: 1,
      });
      const raw = readFileSync(snsFixture(f.file));
      const snsId = parseHeaderBlock(raw.toString('utf8')).get('message-id')![0];
      const result = await stack.run({ key: await stack.put(raw) });
      assert.equal(result.status, 'delivered', f.file);
      assert.deepEqual(
        result.bounce,
        {
          matched: true,
          bouncedRecipient: f.recipients[0],
          kind: f.type === 'Complaint' ? 'complaint' : 'bounce',
          rewritten: true,
        },
        f.file,
      );
      assert.deepEqual(result.autoReplies, [], `${f.file}: no rules run for reports`);
      const copy = (await stack.mail.messagesFor(ALICE)).find((m) => m.includes(snsId))!;
      assert.ok(copy, `${f.file} delivered to alice`);
      const h = parseHeaderBlock(copy);
      assert.equal(h.get('x-mailroom-bounced-recipient')?.[0], f.recipients[0], f.file);
      assert.equal(h.get('reply-to')?.[0], `<${f.recipients[0]}>`, f.file);
      assert.equal(h.get('x-original-from')?.[0], 'AWS Notifications <no-reply@sns.amazonaws.com>', f.file);
    }
  });

  test("tags fit S3's 2 KB even when the object already carries 2,000 bytes of metadata", async () => {
    const key = `big-meta-${Date.now()}`;
    await stack.s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: key,
        Body: rawMail({ from: OUTSIDE, to: [ALICE, 'ghost@example.com'], subject: 'Big metadata' }),
        Metadata: { 'x-archive': 'a'.repeat(1500), 'x-note': 'n'.repeat(480) },
      }),
    );
    const result = await stack.run({ key });
    assert.equal(result.status, 'partial');
    const meta = (await stack.metadata(key))!;
    assert.equal(meta.status, 'partial');
    assert.equal(meta.metadata_dropped, 'x-archive');
    assert.equal(meta['x-note'], 'n'.repeat(480));
    assert.ok(Object.entries(meta).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0) <= 2048);
  });

  test('SES bounce is matched to the outbound message and rewritten; unmatched bounce delivered as is', async () => {
    await stack.putItem(DEFAULT_TABLES.messages, {
      MessageId: '0100018c-test-bounce-1',
      source: ALICE,
      destinations: ['nobody@far.example'],
      subject: 'Offer letter',
      timestamp: 1,
    });
    const key = await stack.put(
      sesBounce({
        to: ALICE,
        sesMessageId: '0100018c-test-bounce-1',
        bouncedRecipient: 'nobody@far.example',
        originalSubject: 'Offer letter',
      }),
    );
    const result = await stack.run({ key });
    assert.equal(result.status, 'delivered');
    assert.deepEqual(result.bounce, {
      matched: true,
      bouncedRecipient: 'nobody@far.example',
      kind: 'bounce',
      rewritten: true,
    });
    assert.deepEqual(result.autoReplies, [], 'no rules run for bounces');
    const copy = (await stack.mail.messagesFor(ALICE)).find((m) => m.includes('0100018c-test-bounce-1'))!;
    const h = parseHeaderBlock(copy);
    assert.match(h.get('from')![0], /<nobody@far\.example>/);
    assert.equal(h.get('reply-to')![0], '<nobody@far.example>');
    assert.match(h.get('subject')![0], /nobody@far\.example/);
    assert.equal(h.get('x-original-from')![0], 'MAILER-DAEMON@amazonses.com');

    const unmatchedKey = await stack.put(
      sesBounce({
        to: CAROL,
        sesMessageId: '0100018c-unknown',
        bouncedRecipient: 'x@far.example',
        originalSubject: 'Never sent by us',
      }),
    );
    const unmatched = await stack.run({ key: unmatchedKey });
    assert.deepEqual(unmatched.bounce, {
      matched: false,
      bouncedRecipient: 'x@far.example',
      kind: 'bounce',
      rewritten: false,
    });
    const plain = (await stack.mail.messagesFor(CAROL)).find((m) => m.includes('0100018c-unknown'))!;
    assert.equal(parseHeaderBlock(plain).get('from')![0], 'MAILER-DAEMON@amazonses.com');

    // Issue 21: a report that cites our message but names one of our own users, not an address
    // the message went to, must not speak for that user: delivered as received, with why.
    const forgedKey = await stack.put(
      sesBounce({
        to: ALICE,
        sesMessageId: '0100018c-test-bounce-1',
        bouncedRecipient: 'ceo@example.com',
        originalSubject: 'Offer letter',
      }),
    );
    const forged = await stack.run({ key: forgedKey });
    assert.equal(forged.status, 'delivered');
    assert.equal(forged.bounce?.rewritten, false);
    assert.equal(forged.bounce?.bouncedRecipient, undefined);
    assert.match(forged.bounce?.reason ?? '', /names none of the 1 address\(es\) our message was sent to/);
    const asReceived = (await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('0100018c-test-bounce-1'));
    assert.equal(asReceived.length, 2, 'the rewritten one above and this one');
    const fh = parseHeaderBlock(asReceived[1]);
    assert.equal(fh.get('from')![0], 'MAILER-DAEMON@amazonses.com');
    assert.equal(fh.get('reply-to'), undefined);
    assert.equal(fh.get('x-original-from'), undefined);
  });

  test('mail carrying the marker header is a loop: tagged, not delivered', async () => {
    const key = await stack.put(
      rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Looped', headers: { 'X-Mailroom-Processed': 'other-worker' } }),
    );
    const result = await stack.run({ key });
    assert.equal(result.status, 'loop');
    assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Subject: Looped')).length, 0);
    assert.equal((await stack.metadata(key))?.status, 'loop');
  });

  test('a loop through a peer that strips our marker stops after a few rounds (same id, further travelled each time)', async () => {
    const base = rawMail({
      from: OUTSIDE,
      to: [CAROL],
      subject: 'Round and round',
      messageId: '<peer-loop-1@sender.example>',
    }).toString();
    const statuses: string[] = [];
    for (let round = 1; round <= 5; round++) {
      const hops = Array.from(
        { length: round * 2 },
        (_, i) => `Received: from relay${i}.peer.example by mx.peer.example; ${new Date().toUTCString()}`,
      ).join('\r\n');
      statuses.push((await stack.run({ key: await stack.put(Buffer.from(`${hops}\r\n${base}`)) })).status);
    }
    assert.deepEqual(statuses, ['delivered', 'delivered', 'delivered', 'loop', 'loop']);
    assert.equal((await stack.mail.messagesFor(CAROL)).filter((m) => m.includes('Round and round')).length, 3);
    // The same message again without travelling further (sent twice) is no loop.
    const again = await stack.run({
      key: await stack.put(
        Buffer.from(base.replace('Round and round', 'Sent twice').replace('peer-loop-1', 'twice-1')),
      ),
    });
    const twice = await stack.run({
      key: await stack.put(
        Buffer.from(base.replace('Round and round', 'Sent twice').replace('peer-loop-1', 'twice-1')),
      ),
    });
    assert.deepEqual([again.status, twice.status], ['delivered', 'delivered']);
  });

  test('three forged one-hop copies of a Message-ID do not stop the genuine copy; its own loop still stops', async () => {
    const messageId = '<genuine-1@sender.example>';
    const withHops = (raw: Buffer, n: number) =>
      Buffer.from(
        Array.from(
          { length: n },
          (_, i) => `Received: from relay${i}.far.example by mx.far.example; ${new Date().toUTCString()}\r\n`,
        ).join('') + raw.toString(),
      );
    const forged: string[] = [];
    for (let i = 0; i < 3; i++) {
      const raw = rawMail({ from: 'forger@evil.example', to: [CAROL], subject: 'Genuine offer', messageId });
      forged.push((await stack.run({ key: await stack.put(raw) })).status);
    }
    assert.deepEqual(forged, ['delivered', 'delivered', 'delivered']);
    // The genuine message travelled further (4 more hops) than the three forged copies.
    const genuine = (subject: string, hops: number) =>
      withHops(rawMail({ from: OUTSIDE, to: [CAROL], subject, messageId }), hops);
    const first = await stack.run({ key: await stack.put(genuine('Genuine offer', 4)) });
    assert.equal(
      first.status,
      'delivered',
      'counted apart from the forged copies (same id and subject, another sender)',
    );
    assert.equal(
      (await stack.mail.messagesFor(CAROL)).filter(
        (m) => m.includes('Subject: Genuine offer') && m.includes(`From: ${OUTSIDE}`),
      ).length,
      1,
    );
    // A peer looping it back with "Fwd:" added each pass is still the same message to the counter.
    const rounds: string[] = [];
    for (let round = 1; round <= 3; round++)
      rounds.push(
        (await stack.run({ key: await stack.put(genuine(`${'Fwd: '.repeat(round)}Genuine offer`, 4 + 2 * round)) }))
          .status,
      );
    assert.deepEqual(rounds, ['delivered', 'delivered', 'loop']);
  });

  test('a deferred recipient is retried alone: no second copy for the one already delivered', async () => {
    stack.mail.setRecipientFailure(CAROL, { code: 451, message: '4.3.0 try again later', times: 2 });
    const key = await stack.put(rawMail({ from: OUTSIDE, to: [ALICE, CAROL], subject: 'Retry me' }));
    const result = await stack.run({ key, delivery: { firstDelaySeconds: 1, maxDelaySeconds: 2 } });
    assert.equal(result.status, 'delivered');
    assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Retry me')).length, 1);
    assert.equal((await stack.mail.messagesFor(CAROL)).filter((m) => m.includes('Retry me')).length, 1);
    const history = await stack.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, key)).fetchHistory();
    const deliveries = activitySteps(history).filter((s) =>
      ['fetchAndDeliver', 'deliverEmail', 'deliverAndTag'].includes(s.type),
    );
    assert.equal(deliveries.length, 3, 'one round for both, two more for the deferred recipient only');
    assert.deepEqual(
      deliveries.map((d) => `${d.type}${d.local ? ' (local)' : ''}`),
      ['fetchAndDeliver (local)', 'deliverEmail', 'deliverEmail'],
      "the first round in the fetch's local activity (fast path; it would have tagged an email it ended), the rounds after a 4xx regular activities",
    );
    assert.equal((await stack.metadata(key))?.status, 'delivered', 'tagged by the tag step after the last round');
  });

  test('a recipient that stays deferred until the age ends as failed with the reason, visible in S3', async () => {
    // The run's own age (4 s) stands in for DELIVERY_MAX_AGE (test/integration/deferral.test.ts sets that).
    stack.mail.setRecipientFailure(BOB, { code: 452, message: '4.2.2 mailbox full' });
    const key = await stack.put(rawMail({ from: OUTSIDE, to: [BOB], subject: 'Never fits' }));
    const result = await stack.run({
      key,
      delivery: { firstDelaySeconds: 1, maxDelaySeconds: 1 },
      deferral: { maxAgeSeconds: 4 },
    });
    stack.mail.setRecipientFailure(BOB, null);
    assert.equal(result.status, 'failed');
    assert.equal(result.recipients[0].outcome, 'failed');
    const meta = await stack.metadata(key);
    assert.equal(meta?.status, 'failed');
    assert.equal(meta?.processed, 'true');
    assert.match(
      meta?.error ?? '',
      /bob@example\.com: deferred since .*given up after DELIVERY_MAX_AGE \(4 s\): 452 4\.2\.2 mailbox full/,
    );
  });
});

describe('bad input ends in a clear, visible state', () => {
  test('no recipient in our domain', async () => {
    const key = await stack.put(rawMail({ from: OUTSIDE, to: ['a@elsewhere.example'], subject: 'Wrong door' }));
    const result = await stack.run({ key });
    assert.equal(result.status, 'invalid');
    assert.match(result.reason ?? '', /no recipient in example\.com/);
    assert.equal((await stack.metadata(key))?.status, 'invalid');
  });

  test('bytes that are not an email', async () => {
    const key = await stack.put(Buffer.from([0, 1, 2, 3, 255, 254, 10, 10, 10]));
    const result = await stack.run({ key });
    assert.equal(result.status, 'invalid');
    assert.equal((await stack.metadata(key))?.status, 'invalid');
  });

  test('a domain that is not in domains.txt', async () => {
    const key = await stack.put(rawMail({ from: OUTSIDE, to: [ALICE], subject: 'x' }));
    const result = await stack.run({ key, domain: 'unknown.example', bucket: BUCKET });
    assert.equal(result.status, 'unknown_domain');
    assert.equal((await stack.metadata(key))?.status, 'unknown_domain');
  });

  test('a missing object: the run fails (status missing, result in the details), so a later trigger may run again', async () => {
    await assert.rejects(stack.run({ key: 'does/not/exist' }), /workflow execution failed/i);
    const outcome = await inboundOutcome(stack.env.client, inboundWorkflowId(BUCKET, 'does/not/exist'));
    assert.equal(outcome.result?.status, 'missing');
    assert.match(
      outcome.failure ?? '',
      /s3:\/\/example-com-emails\/does\/not\/exist does not exist \(status missing\)/,
    );
  });

  test('an oversize message is kept in S3 and tagged oversize, not downloaded', async () => {
    const big = Buffer.concat([
      rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Huge' }),
      Buffer.alloc(stack.config.maxMessageBytes + 1, 'a'),
    ]);
    const key = await stack.put(big);
    const result = await stack.run({ key });
    assert.equal(result.status, 'oversize');
    const meta = await stack.metadata(key);
    assert.equal(meta?.status, 'oversize');
    assert.match(meta?.error ?? '', /exceeds MAX_MESSAGE_BYTES/);
  });

  test('an already processed object is left alone', async () => {
    const key = await stack.put(rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Once only' }));
    assert.equal((await stack.run({ key })).status, 'delivered');
    // A new workflow id (as a re-drive would use) still sees processed=true and stops.
    const { workflowId } = await startInbound(
      stack.env.client,
      stack.config.taskQueue,
      { domain: DOMAIN, bucket: BUCKET, key },
      `inbound-redo/${key}`,
    );
    const second = await stack.env.client.workflow.getHandle(workflowId).result();
    assert.equal(second.status, 'already_processed');
    assert.equal((await stack.mail.messagesFor(ALICE)).filter((m) => m.includes('Once only')).length, 1);
  });
});
