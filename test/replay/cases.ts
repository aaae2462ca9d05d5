// The representative inbound runs whose histories are kept in test/replay/histories and
// replayed against the current workflow code (test/integration/replay.test.ts): one per
// path through processInboundEmail. Recorded by scripts/record-histories.ts on the test
// stack; only test addresses appear in them.
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { EmailStatus } from '../../contracts/email-status';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { inboundWorkflowId } from '../../contracts/inbound';
import { MAIL_STATUS } from '../../contracts/search-attributes';
import { DEFAULT_TABLES, ensureTables } from '../../scripts/stack/dynamodb';
import { rawMail, sesBounce, sesComplaint, sesStored, snsNotificationMail } from '../../scripts/stack/demo-emails';
import { BUCKET, type InboundStack } from '../support/inbound-stack';

export const ALICE = 'alice@example.com';
export const CAROL = 'carol@example.com';
export const DAVE = 'dave@example.com'; // out of office
export const ERIN = 'erin@example.com'; // forwards to frank (internal) and outside
export const FRANK = 'frank@example.org';
export const GRACE = 'grace@example.com'; // blocks *@spam.example
export const HANK = 'hank@example.com'; // out of office; forwards to an unknown internal address (refused) and to frank
export const MAILBOXES = [ALICE, CAROL, DAVE, ERIN, FRANK, GRACE, HANK];
const SNS_BOUNCE_ID = '0100018c00000001-1a2b3c4d-1111-2222-3333-444455556666-000000';
const COMPLAINT_ID = '0100018c00000002-1a2b3c4d-1111-2222-3333-444455556666-000000';
const OUTSIDE = 'someone@sender.example';

/**
 * Stack options for recording: a small size limit makes the oversize case cheap, and a
 * smaller fast-path limit the large case (histories recorded before FAST_PATH_MAX_BYTES
 * existed were recorded without it; none of their messages is over 50,000 bytes).
 */
export const STACK_ENV = { MAX_MESSAGE_BYTES: '100000', FAST_PATH_MAX_BYTES: '50000' };

export async function seed(stack: InboundStack): Promise<void> {
  await stack.putItem(DEFAULT_TABLES.blocked, {
    email_address: GRACE,
    blocked_patterns: ['*@spam.example', 'exact@bad.example'],
  });
  await stack.putItem(DEFAULT_TABLES.rules, {
    email_address: DAVE,
    ooo_active: true,
    ooo_message: 'Away until Monday.',
    ooo_content_type: 'text',
    forwards: [],
  });
  await stack.putItem(DEFAULT_TABLES.rules, {
    email_address: ERIN,
    ooo_active: false,
    forwards: [FRANK, 'erin.private@elsewhere.example'],
  });
  await stack.putItem(DEFAULT_TABLES.messages, {
    MessageId: '0100018c-replay-bounce',
    source: ALICE,
    destinations: ['nobody@far.example'],
    subject: 'Offer letter',
    timestamp: 1,
  });
  // Issue 11 (inbound mail safety) paths.
  await stack.putItem(DEFAULT_TABLES.rules, {
    email_address: HANK,
    ooo_active: true,
    ooo_message: 'Away.',
    ooo_content_type: 'text',
    forwards: ['ghost@example.org', FRANK],
  });
  await stack.putItem(DEFAULT_TABLES.messages, {
    MessageId: SNS_BOUNCE_ID,
    source: ALICE,
    destinations: ['jane@far.example'],
    subject: 'Invoice',
    timestamp: 1,
  });
  await stack.putItem(DEFAULT_TABLES.messages, {
    MessageId: COMPLAINT_ID,
    source: ALICE,
    destinations: ['rich@far.example'],
    subject: 'Newsletter',
    timestamp: 1,
  });
}

export interface InboundCase {
  /** File name: test/replay/histories/inbound-<name>.json */
  name: string;
  /**
   * The run continues as new: inbound-<name>.json is its first run (the one that continued),
   * inbound-<name>.last-run.json the run that finished.
   */
  continuesAsNew?: boolean;
  /** The status the recorded run must end in (a wrong run is not recorded). */
  expect: EmailStatus;
  /** Runs the case to completion; the key is `replay-<name>`, so the workflow id is stable. */
  run(stack: InboundStack, key: string): Promise<unknown>;
}

/** The InboundResult a failed run (status missing) carries in its failure details. */
function resultOfFailedRun(err: unknown): unknown {
  if (err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure && err.cause.details?.length)
    return err.cause.details[0];
  throw err;
}

const mail = (stack: InboundStack, key: string, m: Parameters<typeof rawMail>[0]) => stack.put(rawMail(m), key);

export const INBOUND_CASES: InboundCase[] = [
  {
    name: 'plain',
    expect: 'delivered',
    run: async (s, key) => s.run({ key: await mail(s, key, { from: OUTSIDE, to: [ALICE], subject: 'Plain hello' }) }),
  },
  {
    name: 'multi-recipient-unknown-user',
    expect: 'partial',
    run: async (s, key) =>
      s.run({
        key: await mail(s, key, { from: OUTSIDE, to: [ALICE, 'ghost@example.com'], cc: [CAROL], subject: 'Team note' }),
      }),
  },
  {
    name: 'blocked',
    expect: 'blocked',
    run: async (s, key) =>
      s.run({ key: await mail(s, key, { from: 'promo@spam.example', to: [GRACE], subject: 'Buy now' }) }),
  },
  {
    name: 'partially-blocked',
    expect: 'partial',
    run: async (s, key) =>
      s.run({ key: await mail(s, key, { from: 'exact@bad.example', to: [GRACE, ALICE], subject: 'Half blocked' }) }),
  },
  {
    name: 'out-of-office',
    expect: 'delivered',
    run: async (s, key) =>
      s.run({ key: await mail(s, key, { from: 'colleague@partner.example', to: [DAVE], subject: 'Meeting?' }) }),
  },
  {
    name: 'forwarded',
    expect: 'delivered',
    run: async (s, key) => s.run({ key: await mail(s, key, { from: OUTSIDE, to: [ERIN], subject: 'Please forward' }) }),
  },
  {
    name: 'ses-bounce-matched',
    expect: 'delivered',
    run: async (s, key) =>
      s.run({
        key: await s.put(
          sesBounce({
            to: ALICE,
            sesMessageId: '0100018c-replay-bounce',
            bouncedRecipient: 'nobody@far.example',
            originalSubject: 'Offer letter',
          }),
          key,
        ),
      }),
  },
  {
    name: 'loop',
    expect: 'loop',
    run: async (s, key) =>
      s.run({
        key: await mail(s, key, {
          from: OUTSIDE,
          to: [ALICE],
          subject: 'Looped',
          headers: { 'X-Mailroom-Processed': 'other-worker' },
        }),
      }),
  },
  {
    name: 'deferred-then-delivered',
    expect: 'delivered',
    run: async (s, key) => {
      s.mail.setRecipientFailure(CAROL, { code: 451, message: '4.3.0 try again later', times: 1 });
      return s.run({
        key: await mail(s, key, { from: OUTSIDE, to: [ALICE, CAROL], subject: 'Retry me' }),
        delivery: { firstDelaySeconds: 1, maxDelaySeconds: 2 },
      });
    },
  },
  {
    name: 'invalid',
    expect: 'invalid',
    run: async (s, key) =>
      s.run({ key: await mail(s, key, { from: OUTSIDE, to: ['a@elsewhere.example'], subject: 'Wrong door' }) }),
  },
  {
    name: 'oversize',
    expect: 'oversize',
    run: async (s, key) =>
      s.run({
        key: await s.put(
          Buffer.concat([
            rawMail({ from: OUTSIDE, to: [ALICE], subject: 'Huge' }),
            Buffer.alloc(s.config.maxMessageBytes + 1, 'a'),
          ]),
          key,
        ),
      }),
  },
  // No object under the key (a trigger before the upload, or a wrong key). Since the
  // 'missing-object-fails-run' patch the run fails (so a later trigger may start the id again)
  // and carries its result in the failure's details.
  {
    name: 'missing',
    expect: 'missing',
    run: async (s, key) => s.run({ key }).catch((err: unknown) => resultOfFailedRun(err)),
  },
  {
    name: 'unknown-domain',
    expect: 'unknown_domain',
    run: async (s, key) =>
      s.run({
        key: await mail(s, key, { from: OUTSIDE, to: [ALICE], subject: 'x' }),
        domain: 'unknown.example',
        bucket: BUCKET,
      }),
  },
  // Issue 11 (inbound mail safety): the paths behind patched('inbound-mail-safety').
  {
    name: 'quarantined',
    expect: 'quarantined',
    run: async (s, key) =>
      s.run({
        key: await s.put(
          sesStored({ from: OUTSIDE, to: [ALICE], subject: 'Invoice.exe' }, { spam: 'PASS', virus: 'FAIL' }),
          key,
        ),
      }),
  },
  {
    name: 'spam-delivered-marked',
    expect: 'delivered',
    run: async (s, key) =>
      s.run({
        key: await s.put(
          sesStored({ from: OUTSIDE, to: [DAVE], subject: 'You won' }, { spam: 'FAIL', virus: 'PASS' }),
          key,
        ),
      }),
  },
  {
    name: 'sns-bounce-matched',
    expect: 'delivered',
    run: async (s, key) =>
      s.run({
        key: await s.put(
          snsNotificationMail({
            to: ALICE,
            type: 'Bounce',
            sesMessageId: SNS_BOUNCE_ID,
            recipients: ['jane@far.example'],
            originalSubject: 'Invoice',
          }),
          key,
        ),
      }),
  },
  {
    name: 'complaint-matched',
    expect: 'delivered',
    run: async (s, key) =>
      s.run({
        key: await s.put(
          sesComplaint({
            to: ALICE,
            sesMessageId: COMPLAINT_ID,
            complainedRecipient: 'rich@far.example',
            originalSubject: 'Newsletter',
          }),
          key,
        ),
      }),
  },
  {
    name: 'automatic-not-answered',
    expect: 'delivered',
    run: async (s, key) =>
      s.run({
        key: await mail(s, key, {
          from: 'robot@sender.example',
          to: [DAVE, ERIN],
          subject: 'Your report',
          headers: { 'Auto-Submitted': 'auto-generated' },
        }),
      }),
  },
  {
    name: 'rules-each-on-its-own',
    expect: 'delivered',
    run: async (s, key) => s.run({ key: await mail(s, key, { from: OUTSIDE, to: [HANK], subject: 'For Hank' }) }),
  },
  // Issue 14 (patched('inbound-fast-path')): a message over FAST_PATH_MAX_BYTES takes the
  // regular, heartbeating activities after the local fetch found it large. The other cases'
  // fast-path histories are recorded beside theirs (inbound-<case>.fast-path.json).
  {
    name: 'large-regular-path',
    expect: 'delivered',
    run: async (s, key) =>
      s.run({
        key: await mail(s, key, {
          from: OUTSIDE,
          to: [ALICE, ERIN],
          subject: 'Scanned contract',
          body: 'Lorem ipsum dolor sit amet.\r\n'.repeat(2500),
        }),
      }),
  },
  {
    name: 'looped-recipient',
    expect: 'partial',
    run: async (s, key) => {
      // Three rounds through a peer that strips our marker (each further travelled), then a
      // fourth that also names Alice: Carol's copy is a loop, Alice's is not.
      const round = (n: number, to: string[]) =>
        Buffer.from(
          `${Array.from({ length: n * 2 }, (_, i) => `Received: from r${i}.peer.example by mx.peer.example; Mon, 30 Nov 2026 10:00:00 +0000`).join('\r\n')}\r\n${rawMail({ from: OUTSIDE, to, subject: 'Round trip', messageId: '<replay-loop@sender.example>' }).toString()}`,
        );
      for (let n = 1; n <= 3; n++) await s.run({ key: await s.put(round(n, [CAROL]), `${key}-round-${n}`) });
      return s.run({ key: await s.put(round(4, [CAROL, ALICE]), key) });
    },
  },
  // Issue 21 (patched('inbound-current-2026-12b')): deferral. The delays are the run's own
  // (input.delivery) so the cases take seconds.
  {
    name: 'deferred-until-max-age',
    expect: 'failed',
    run: async (s, key) => {
      s.mail.setRecipientFailure(CAROL, { code: 451, message: '4.3.0 try again later', times: 1000 });
      try {
        return await s.run({
          key: await mail(s, key, { from: OUTSIDE, to: [CAROL], subject: 'Never arrives' }),
          delivery: { firstDelaySeconds: 1, maxDelaySeconds: 2 },
          deferral: { maxAgeSeconds: 5 },
        });
      } finally {
        s.mail.setRecipientFailure(CAROL, null);
      }
    },
  },
  {
    // DynamoDB unavailable for the lookups' first round (here: its blocklist table gone, which
    // the SDK reports like any other error: retried, then deferred), back for the next.
    name: 'dynamodb-outage-deferred',
    expect: 'delivered',
    run: async (s, key) => {
      await s.dynamo.send(new DeleteTableCommand({ TableName: DEFAULT_TABLES.blocked }));
      const k = await mail(s, key, { from: OUTSIDE, to: [ALICE], subject: 'Waits for DynamoDB' });
      const running = s.run({ key: k, delivery: { firstDelaySeconds: 5, maxDelaySeconds: 5 } });
      const handle = s.env.client.workflow.getHandle(inboundWorkflowId(BUCKET, k));
      try {
        for (let i = 0; i < 600; i++) {
          const { typedSearchAttributes } = await handle.describe().catch(() => ({ typedSearchAttributes: undefined }));
          if (typedSearchAttributes?.get(MAIL_STATUS) === 'deferred') break;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      } finally {
        await ensureTables(s.dynamo, DEFAULT_TABLES);
        await seed(s);
      }
      return running;
    },
  },
  {
    name: 'continued-as-new',
    expect: 'delivered',
    continuesAsNew: true,
    run: async (s, key) => {
      s.mail.setRecipientFailure(CAROL, { code: 451, message: '4.3.0 try again later', times: 2 });
      return s.run({
        key: await mail(s, key, { from: OUTSIDE, to: [ALICE, CAROL], subject: 'Waits twice' }),
        delivery: { firstDelaySeconds: 1, maxDelaySeconds: 1 },
        deferral: { roundsPerRun: 2 },
      });
    },
  },
];
