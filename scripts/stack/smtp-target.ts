// A real SMTP/LMTP server standing in for the internal mail server (Postfix/Dovecot) and
// for the relay to the internet, so delivery code is exercised over the wire: recipient
// rejections, temporary failures and per-recipient storage behave as a real MTA's would.
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SMTPServer } from 'smtp-server';
import { componentLogger } from '../../lib/logger';

const log = componentLogger('smtp-target');

export interface RecipientFailure {
  code: number;
  message?: string;
  /** How many RCPT TO attempts fail before the address is accepted again; undefined = forever. */
  times?: number;
}

export interface SmtpTargetOptions {
  port?: number;
  lmtp?: boolean;
  directory: string;
  localDomains: string[];
  mailboxes: string[];
}

export interface SmtpTarget {
  port: number;
  stop(): Promise<void>;
  /** Raw messages delivered to the address, oldest first. */
  messagesFor(address: string): Promise<string[]>;
  setRecipientFailure(address: string, failure: RecipientFailure | null): void;
  /** Total connections opened since start. */
  readonly connections: number;
}

class SmtpReplyError extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_MESSAGE_BYTES = 60 * 1024 * 1024;

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

export async function startSmtpTarget(options: SmtpTargetOptions): Promise<SmtpTarget> {
  const localDomains = new Set(options.localDomains.map((d) => d.toLowerCase()));
  const mailboxes = new Set(options.mailboxes.map((m) => m.toLowerCase()));
  const failures = new Map<string, RecipientFailure>();
  let connections = 0;
  let counter = 0;
  await mkdir(options.directory, { recursive: true });

  const mailboxDir = (address: string) => join(options.directory, address.toLowerCase());

  async function store(address: string, raw: Buffer): Promise<void> {
    const dir = mailboxDir(address);
    await mkdir(dir, { recursive: true });
    const name = `${Date.now()}-${++counter}.eml`;
    // Readers (tests, the demo) poll the directory: they must never see half a message.
    const tmp = join(dir, `.${name}.tmp`);
    await writeFile(tmp, raw);
    await rename(tmp, join(dir, name));
  }

  function rcptError(address: string): SmtpReplyError | undefined {
    const key = address.toLowerCase();
    const failure = failures.get(key);
    if (failure) {
      if (failure.times !== undefined && --failure.times <= 0) failures.delete(key);
      const fallback = failure.code < 500 ? `4.3.0 <${address}>: Temporary failure, try again later` : `5.0.0 <${address}>: Recipient address rejected`;
      return new SmtpReplyError(failure.code, failure.message ?? fallback);
    }
    if (localDomains.has(domainOf(key)) && !mailboxes.has(key)) {
      return new SmtpReplyError(550, `5.1.1 <${address}>: Recipient address rejected: User unknown in virtual mailbox table`);
    }
    return undefined;
  }

  const server = new SMTPServer({
    lmtp: options.lmtp ?? false,
    name: 'smtp-target.local',
    banner: 'mailroom test target',
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    size: MAX_MESSAGE_BYTES,
    logger: false,
    // Pooled senders keep connections open; a stand-in should not take the default 30 s to stop.
    closeTimeout: 1000,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onRcptTo(address, _session, callback) {
      const err = rcptError(address.address);
      if (err) log.info({ to: address.address, code: err.responseCode }, 'rejected recipient');
      callback(err ?? null);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        if (!stream.sizeExceeded) chunks.push(chunk);
      });
      stream.on('error', (err) => callback(err));
      stream.on('end', () => {
        // smtp-server only advertises SIZE; refusing the oversized message is up to us.
        if (stream.sizeExceeded) return callback(new SmtpReplyError(552, `5.3.4 Message exceeds fixed maximum message size ${MAX_MESSAGE_BYTES}`));
        const raw = Buffer.concat(chunks);
        const recipients = session.envelope.rcptTo.map((r) => r.address);
        Promise.all(recipients.map((r) => store(r, raw))).then(
          () => {
            for (const to of recipients) {
              log.info({ from: session.envelope.mailFrom && session.envelope.mailFrom.address, to, bytes: raw.length, outbound: !localDomains.has(domainOf(to)) }, 'stored message');
            }
            callback(null, 'OK: message stored');
          },
          (err: Error) => {
            log.error({ err }, 'could not store message');
            callback(new SmtpReplyError(451, `4.3.0 Local storage error: ${err.message}`));
          },
        );
      });
    },
  });
  server.on('error', (err) => log.warn({ err }, 'smtp server error'));

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  log.info({ port, lmtp: options.lmtp ?? false, directory: options.directory }, 'listening');

  return {
    port,
    get connections() {
      return connections;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    async messagesFor(address) {
      let names: string[];
      try {
        names = (await readdir(mailboxDir(address))).filter((n) => n.endsWith('.eml') && !n.startsWith('.'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const order = (n: string) => n.slice(0, -4).split('-').map(Number);
      names.sort((a, b) => {
        const [ta, ca] = order(a);
        const [tb, cb] = order(b);
        return ta - tb || ca - cb;
      });
      return Promise.all(names.map((n) => readFile(join(mailboxDir(address), n), 'utf8')));
    },
    setRecipientFailure(address, failure) {
      if (failure) failures.set(address.toLowerCase(), { ...failure });
      else failures.delete(address.toLowerCase());
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '2525' },
      dir: { type: 'string', default: '.local/mail' },
      domains: { type: 'string', default: 'example.com' },
      mailboxes: { type: 'string', default: '' },
      lmtp: { type: 'boolean', default: false },
    },
  });
  const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
  const target = await startSmtpTarget({
    port: Number(values.port),
    lmtp: values.lmtp,
    directory: values.dir,
    localDomains: list(values.domains),
    mailboxes: list(values.mailboxes),
  });
  const shutdown = () => {
    void target.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    log.fatal({ err }, 'smtp-target failed to start');
    process.exit(1);
  });
}
