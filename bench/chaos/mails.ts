// The emails a chaos scenario pushes through the pipeline, each with its ground truth
// (bench/chaos/ground-truth.ts). Deterministic: the same scenario gets the same mix.
import { rawMail } from '../../scripts/stack/demo-emails';
import type { Expectation } from './ground-truth';

export const DOMAIN = 'example.com';
export const MAILBOXES = Array.from({ length: 10 }, (_, i) => `user${i}@${DOMAIN}`);
/** Blocks *@spam.example: mail from there must never reach this mailbox. */
export const BLOCKER = `blocker@${DOMAIN}`;
/** Out-of-office recipient: answers (at most once per sender) and is delivered to. */
export const AWAY = `away@${DOMAIN}`;
/** Forwards everything to LOOP_PEER, which forwards it straight back (the mail loop). */
export const LOOPER = `looper@${DOMAIN}`;
export const LOOP_PEER = 'looper@peer.example';
/** Forwards to STRIPPING_PEER, whose server sends it back without our marker header. */
export const LOOPER2 = `looper2@${DOMAIN}`;
export const STRIPPING_PEER = 'rebuilder@peer.example';
export const ALL_MAILBOXES = [...MAILBOXES, BLOCKER, AWAY, LOOPER, LOOPER2];

export interface ChaosMail {
  raw: Buffer;
  expectation: Omit<Expectation, 'key'>;
  /** Status the email must end with, when the scenario knows it (hostile input). */
  status?: string;
}

function rng(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/** An ordinary mix: mostly 1-3 mailboxes, some blocked senders, some out-of-office. */
export function ordinaryMails(tag: string, n: number, seed = 7): ChaosMail[] {
  const rnd = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const messageId = `<chaos-${tag}-${i}@sender.example>`;
    const to = [
      ...new Set(
        Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => MAILBOXES[Math.floor(rnd() * MAILBOXES.length)]),
      ),
    ];
    const kind = rnd();
    const body = 'Lorem ipsum dolor sit amet. '.repeat(kind < 0.05 ? 4000 : 20);
    if (kind < 0.08) {
      // Blocked for one recipient, delivered to the other.
      return {
        raw: rawMail({ from: `promo${i}@spam.example`, to: [BLOCKER, to[0]], subject: `Offer ${i}`, messageId, body }),
        expectation: { messageId, deliverTo: [to[0]], mustNotReach: [BLOCKER] },
      };
    }
    if (kind < 0.12) {
      // Blocked for every recipient: tagged, then deleted.
      return {
        raw: rawMail({ from: `promo${i}@spam.example`, to: [BLOCKER], subject: `Offer ${i}`, messageId }),
        expectation: { messageId, deliverTo: [], mustNotReach: [BLOCKER] },
        status: 'blocked',
      };
    }
    if (kind < 0.2) {
      return {
        raw: rawMail({
          from: `client${i % 7}@sender.example`,
          to: [AWAY, ...to],
          subject: `Question ${i}`,
          messageId,
          body,
        }),
        expectation: { messageId, deliverTo: [AWAY, ...to], mustNotReach: [] },
      };
    }
    return {
      raw: rawMail({ from: `person${i}@sender.example`, to, subject: `Message ${i}`, messageId, body }),
      expectation: { messageId, deliverTo: to, mustNotReach: [] },
    };
  });
}

const VICTIM = 'victim@evil.example';

/** A base64 attachment of `bytes` bytes, as a MIME message from `from` to `to`. */
function withAttachment(tag: string, i: number, to: string, bytes: number): ChaosMail {
  const messageId = `<chaos-${tag}-att${i}@sender.example>`;
  const b = `att-${i}`;
  const data = Buffer.alloc(bytes, i).toString('base64').replace(/.{76}/g, '$&\r\n');
  const raw = Buffer.concat([
    rawMail({
      from: 'big@sender.example',
      to: [to],
      subject: `Attachment of ${Math.round(bytes / 2 ** 20)} MB`,
      messageId,
      headers: { 'Content-Type': `multipart/mixed; boundary="${b}"` },
      body: '',
    }),
    Buffer.from(
      `--${b}\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--${b}\r\nContent-Type: application/octet-stream; name="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
    ),
    Buffer.from(data),
    Buffer.from(`\r\n--${b}--\r\n`),
  ]);
  return { raw, expectation: { messageId, deliverTo: [to], mustNotReach: [] } };
}

/**
 * Malformed, oversize and hostile input. Each names the status it must end in; none may
 * reach VICTIM (header injection) and the loop must stop by itself.
 */
export function hostileMails(tag: string, maxMessageBytes: number): ChaosMail[] {
  const id = (n: string) => `<chaos-${tag}-${n}@sender.example>`;
  const out: ChaosMail[] = [];
  // Broken MIME: undeclared boundary end, invalid base64, a header line without a colon.
  out.push({
    raw: Buffer.from(
      [
        `From: broken@sender.example`,
        `To: ${MAILBOXES[0]}`,
        `Subject: broken MIME`,
        `Message-ID: ${id('mime')}`,
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="never-closed"',
        'this line is not a header',
        '',
        '--never-closed',
        'Content-Transfer-Encoding: base64',
        '',
        '!!!not base64!!!',
        '--never-closed',
        'Content-Type: text/html; charset=bogus-charset',
        '',
        '<p>unterminated',
      ].join('\r\n'),
    ),
    expectation: { messageId: id('mime'), deliverTo: [MAILBOXES[0]], mustNotReach: [] },
    status: 'delivered',
  });
  // Not a message at all.
  out.push({
    raw: Buffer.from('\x00\x01binary garbage without any header block\r\n'),
    expectation: { messageId: id('garbage'), deliverTo: [], mustNotReach: [] },
    status: 'invalid',
  });
  // Header injection: encoded CR LF in subject and display name, aimed at the auto-reply.
  out.push({
    raw: rawMail({
      from: `=?UTF-8?Q?Eve=0D=0ABcc:_${VICTIM.replace('@', '=40')}?= <eve@sender.example>`,
      to: [AWAY],
      subject: `=?UTF-8?Q?Hi=0D=0ABcc:_${VICTIM.replace('@', '=40')}=0D=0A=0D=0Ainjected_body?=`,
      messageId: id('inject'),
    }),
    expectation: { messageId: id('inject'), deliverTo: [AWAY], mustNotReach: [VICTIM] },
    status: 'delivered',
  });
  // A real Bcc header naming an outside address, and an address with a quoted CR LF.
  out.push({
    raw: rawMail({
      from: 'eve@sender.example',
      to: [MAILBOXES[1], `"x\\\r\n Bcc: ${VICTIM}"@${DOMAIN}`],
      subject: 'Bcc smuggling',
      messageId: id('bcc'),
      headers: { Bcc: VICTIM },
    }),
    expectation: { messageId: id('bcc'), deliverTo: [MAILBOXES[1]], mustNotReach: [VICTIM] },
  });
  // Big but allowed, and over MAX_MESSAGE_BYTES (kept in S3 for an operator).
  const allowed = Math.floor((maxMessageBytes * 0.7 * 3) / 4 / 2 ** 20) * 2 ** 20;
  out.push({ ...withAttachment(tag, 1, MAILBOXES[2], allowed), status: 'delivered' });
  const tooBig = withAttachment(tag, 2, MAILBOXES[3], 30 * 2 ** 20);
  out.push(
    tooBig.raw.length > maxMessageBytes
      ? { ...tooBig, expectation: { ...tooBig.expectation, deliverTo: [] }, status: 'oversize' }
      : { ...tooBig, status: 'delivered' },
  );
  // The mail loop: LOOPER forwards to LOOP_PEER, whose server sends it straight back.
  out.push({
    raw: rawMail({ from: 'friend@sender.example', to: [LOOPER], subject: 'Round and round', messageId: id('loop') }),
    expectation: { messageId: id('loop'), deliverTo: [LOOPER], mustNotReach: [] },
    status: 'delivered',
  });
  // The same loop through a peer that drops our marker: only the hop count stops it, and
  // LOOPER2 gets a copy per hop until then (as with any MTA's hop limit), so its copies
  // are not counted as deliveries here; the scenario reports the hops instead.
  out.push({
    raw: rawMail({
      from: 'friend@sender.example',
      to: [LOOPER2],
      subject: 'Round and round, unmarked',
      messageId: id('loop2'),
    }),
    expectation: { messageId: id('loop2'), deliverTo: [], mustNotReach: [] },
    status: 'delivered',
  });
  return out;
}
