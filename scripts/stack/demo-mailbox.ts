// Demo mail for an IMAP mailbox (the demo's Dovecot accounts, `npm run stack:dovecot`): a few
// dozen plausible messages spread over several folders, appended over IMAP like a mail client
// would, with some already read or flagged.
import { randomBytes } from 'node:crypto';
import { ImapFlow } from 'imapflow';

export const DEMO_FOLDERS = ['INBOX', 'Archive', 'Sent', 'Newsletters'] as const;

const SUBJECTS: Record<(typeof DEMO_FOLDERS)[number], string[]> = {
  INBOX: [
    'Lunch on Friday?',
    'Invoice 2026-114',
    'Re: project plan',
    'Your parcel is on its way',
    'Team offsite agenda',
    'Quick question about the API',
    'Photos from the weekend',
    'Reminder: dentist at 10:30',
  ],
  Archive: ['Signed contract', 'Flight confirmation', 'Tax documents 2025', 'Welcome aboard!', 'Lease renewal'],
  Sent: ['Re: Lunch on Friday?', 'Draft proposal', 'Meeting notes', 'Re: Invoice 2026-114'],
  Newsletters: ['This week in TypeScript', 'Temporal community digest', 'Your monthly statement is ready'],
};

function demoMessage(user: string, folder: string, subject: string, n: number, date: Date): Buffer {
  const from = folder === 'Sent' ? user : `${['alex', 'sam', 'kim', 'noor', 'lee'][n % 5]}@sender.example`;
  const to = folder === 'Sent' ? `${['alex', 'sam', 'kim'][n % 3]}@sender.example` : user;
  return Buffer.from(
    [
      `From: ${from}`,
      `To: ${to}`,
      `Subject: ${subject}`,
      `Date: ${date.toUTCString()}`,
      `Message-ID: <demo-${folder.toLowerCase()}-${n}-${randomBytes(4).toString('hex')}@mailroom.demo>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Hello,\r\n\r\nthis is "${subject}", message ${n} in ${folder}.\r\n\r\n-- \r\nmailroom demo`,
      '',
    ].join('\r\n'),
  );
}

/** Appends `count` demo messages to `user`'s mailbox, spread over DEMO_FOLDERS; returns the count per folder. */
export async function fillDemoMailbox(
  server: { host: string; port: number },
  login: { user: string; password: string },
  count = 30,
): Promise<Record<string, number>> {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    auth: { user: login.user, pass: login.password },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => {});
  await client.connect();
  const perFolder: Record<string, number> = {};
  try {
    for (const folder of DEMO_FOLDERS) {
      if (folder === 'INBOX') continue;
      await client.mailboxCreate(folder).catch((err: { serverResponseCode?: string }) => {
        if (err.serverResponseCode !== 'ALREADYEXISTS') throw err;
      });
    }
    // INBOX gets the most, newsletters the least: 40 %, 25 %, 20 %, 15 %.
    const shares = [0.4, 0.25, 0.2, 0.15];
    const counts = shares.map((s) => Math.floor(count * s));
    counts[0] += count - counts.reduce((a, b) => a + b, 0);
    let n = 0;
    for (const [i, folder] of DEMO_FOLDERS.entries()) {
      const subjects = SUBJECTS[folder];
      for (let k = 0; k < counts[i]; k++) {
        n++;
        const date = new Date(Date.now() - (count - n) * 3_600_000);
        const flags = folder === 'INBOX' && k % 3 === 0 ? [] : k % 5 === 0 ? ['\\Seen', '\\Flagged'] : ['\\Seen'];
        await client.append(
          folder,
          demoMessage(login.user, folder, subjects[k % subjects.length], n, date),
          flags,
          date,
        );
      }
      perFolder[folder] = counts[i];
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
  return perFolder;
}

/** One new message in INBOX (the demo adds one now and then, so the schedule has something to sync). */
export async function appendDemoMessage(
  server: { host: string; port: number },
  login: { user: string; password: string },
  subject: string,
): Promise<void> {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    auth: { user: login.user, pass: login.password },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.append('INBOX', demoMessage(login.user, 'INBOX', subject, Date.now() % 1000, new Date()));
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/** Appends a message as it is (\Seen) to one of the login's folders: the demo's provider filing what an account sent. */
export async function appendToFolder(
  server: { host: string; port: number },
  login: { user: string; password: string },
  folder: string,
  raw: Buffer,
): Promise<void> {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    auth: { user: login.user, pass: login.password },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.append(folder, raw, ['\\Seen'], new Date());
  } finally {
    await client.logout().catch(() => client.close());
  }
}
