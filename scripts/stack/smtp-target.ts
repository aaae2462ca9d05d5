// A real SMTP/LMTP server standing in for the internal mail server (Postfix/Dovecot) and
// for the relay to the internet, so delivery code is exercised over the wire: recipient
// rejections, temporary failures and per-recipient storage behave as a real MTA's would.
// With `auth` it also stands in for a provider's submission server (sending from a user's
// account): AUTH is then required, PLAIN/LOGIN against the given users and XOAUTH2 with an
// access token the local OAuth2 server (scripts/stack/oauth2.ts) confirms at its userinfo URL
// for that same user. Without `auth`, nothing changes: no AUTH offered, none needed.
import { mkdir, open, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  SMTPServer,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerSession,
} from 'smtp-server';
import { componentLogger } from '../../lib/observability/logger';
import { listenOn } from './fault-proxy';

const log = componentLogger('smtp-target');

export interface RecipientFailure {
  code: number;
  message?: string;
  /** How many RCPT TO attempts fail before the address is accepted again; undefined = forever. */
  times?: number;
}

/** What onBeforeAccept sees: the message as stored, before the client is told so. */
export interface AcceptInfo {
  from?: string;
  recipients: string[];
  raw: Buffer;
}

/** One stored copy: the mailbox it went to and the Message-ID in its header. */
export interface Delivery {
  recipient: string;
  messageId?: string;
  file: string;
}

export interface SmtpTargetAuth {
  /** Password logins (AUTH PLAIN / LOGIN). */
  users?: { user: string; password: string }[];
  /**
   * XOAUTH2: each token is checked with GET <url> and "Authorization: Bearer <token>" (the
   * local OAuth2 server's userinfoUrl); accepted when it answers 200 naming the same user in
   * `email` (or `sub`) and not `active: false`.
   */
  oauth2UserinfoUrl?: string;
}

/** One AUTH attempt as the server saw it (never the secret). */
export interface SmtpLogin {
  user: string;
  method: string;
  ok: boolean;
}

export interface SmtpTargetOptions {
  port?: number;
  lmtp?: boolean;
  directory: string;
  localDomains: string[];
  mailboxes: string[];
  /** Require AUTH (default: none offered, as before). */
  auth?: SmtpTargetAuth;
}

export interface SmtpTarget {
  port: number;
  stop(): Promise<void>;
  /** Raw messages delivered to the address, oldest first. */
  messagesFor(address: string): Promise<string[]>;
  setRecipientFailure(address: string, failure: RecipientFailure | null): void;
  /** Total connections opened since start. */
  readonly connections: number;
  /** While set, every RCPT TO is answered with this 4xx: the whole server defers. */
  setTemporaryFailure(failure: { code: number; message?: string } | null): void;
  /** on: stop listening and drop open connections (clients get ECONNREFUSED); off: listen on the same port again. */
  refuse(on: boolean): Promise<void>;
  /**
   * Called after a message is stored and before the 250 is sent; the reply waits for it.
   * This is the window where the server has the message and the client does not know yet.
   */
  onBeforeAccept(hook: ((info: AcceptInfo) => Promise<void> | void) | null): void;
  /** Every stored copy with its recipient and Message-ID, mailbox by mailbox, oldest first. */
  deliveries(): Promise<Delivery[]>;
  /** Every AUTH attempt, oldest first (with `auth`). */
  readonly logins: SmtpLogin[];
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

/** Stored files of one mailbox directory, oldest first (names are `<ms>-<counter>.eml`). */
async function storedFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.eml') && !n.startsWith('.'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const order = (n: string) => n.slice(0, -4).split('-').map(Number);
  return names.sort((a, b) => {
    const [ta, ca] = order(a);
    const [tb, cb] = order(b);
    return ta - tb || ca - cb;
  });
}

const MAX_HEADER_BYTES = 1024 * 1024;

/** The header block only: messages can be tens of MB, and counting deliveries reads thousands. */
async function readHeaderBlock(file: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const chunk = Buffer.alloc(16 * 1024);
    let head = Buffer.alloc(0);
    for (;;) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, head.length);
      head = Buffer.concat([head, chunk.subarray(0, bytesRead)]);
      const text = head.toString('latin1');
      const end = text.search(/\r?\n\r?\n/);
      if (end >= 0) return text.slice(0, end);
      if (bytesRead === 0 || head.length >= MAX_HEADER_BYTES) return text;
    }
  } finally {
    await fh.close();
  }
}

/** The first Message-ID header, unfolded, as `<id>`; senders prepend Received and the like, so it need not come first. */
export function messageIdOf(headerBlock: string): string | undefined {
  const unfolded = headerBlock.replace(/\r?\n[ \t]+/g, ' ');
  const value = /^message-id:[ \t]*(.*)$/im.exec(unfolded)?.[1].trim();
  if (!value) return undefined;
  return /<[^>]*>/.exec(value)?.[0] ?? value;
}

export async function startSmtpTarget(options: SmtpTargetOptions): Promise<SmtpTarget> {
  const localDomains = new Set(options.localDomains.map((d) => d.toLowerCase()));
  const mailboxes = new Set(options.mailboxes.map((m) => m.toLowerCase()));
  const failures = new Map<string, RecipientFailure>();
  let temporaryFailure: { code: number; message?: string } | null = null;
  let beforeAccept: ((info: AcceptInfo) => Promise<void> | void) | null = null;
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
    if (temporaryFailure)
      return new SmtpReplyError(
        temporaryFailure.code,
        temporaryFailure.message ?? `4.3.0 <${address}>: Temporary failure, try again later`,
      );
    const key = address.toLowerCase();
    const failure = failures.get(key);
    if (failure) {
      if (failure.times !== undefined && --failure.times <= 0) failures.delete(key);
      const fallback =
        failure.code < 500
          ? `4.3.0 <${address}>: Temporary failure, try again later`
          : `5.0.0 <${address}>: Recipient address rejected`;
      return new SmtpReplyError(failure.code, failure.message ?? fallback);
    }
    if (localDomains.has(domainOf(key)) && !mailboxes.has(key)) {
      return new SmtpReplyError(
        550,
        `5.1.1 <${address}>: Recipient address rejected: User unknown in virtual mailbox table`,
      );
    }
    return undefined;
  }

  const logins: SmtpLogin[] = [];
  const auth = options.auth;
  const passwords = new Map((auth?.users ?? []).map((u) => [u.user.toLowerCase(), u.password]));

  /** Whether the OAuth2 server vouches for `token` as `user`. */
  async function tokenValid(url: string, user: string, token: string): Promise<boolean> {
    try {
      const res = await fetch(url, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status !== 200) return false;
      const body = (await res.json()) as { email?: string; sub?: string; active?: boolean };
      return body.active !== false && (body.email ?? body.sub ?? '').toLowerCase() === user.toLowerCase();
    } catch (err) {
      log.warn({ err }, 'OAuth2 userinfo check failed');
      return false;
    }
  }

  const server = new SMTPServer({
    lmtp: options.lmtp ?? false,
    name: 'smtp-target.local',
    banner: 'mailroom test target',
    ...(auth
      ? {
          authOptional: false,
          // Plain TCP on 127.0.0.1: AUTH without TLS, as the local Dovecot allows.
          allowInsecureAuth: true,
          authMethods: ['PLAIN', 'LOGIN', ...(auth.oauth2UserinfoUrl ? ['XOAUTH2'] : [])],
          disabledCommands: ['STARTTLS'],
          onAuth(
            a: SMTPServerAuthentication,
            _session: SMTPServerSession,
            callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
          ) {
            const user = a.username ?? '';
            const done = (ok: boolean) => {
              logins.push({ user, method: a.method, ok });
              log.info({ user, method: a.method, ok }, 'AUTH');
            };
            if (a.method === 'XOAUTH2') {
              const url = auth.oauth2UserinfoUrl;
              void (url ? tokenValid(url, user, a.accessToken ?? '') : Promise.resolve(false)).then((ok) => {
                done(ok);
                // A refused token gets the JSON challenge XOAUTH2 clients expect, then 535.
                callback(null, ok ? { user } : { data: { status: '401', schemes: 'bearer', scope: 'mail' } });
              });
              return;
            }
            const ok = typeof a.password === 'string' && passwords.get(user.toLowerCase()) === a.password;
            done(ok);
            if (ok) callback(null, { user });
            else callback(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
          },
        }
      : { authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'] }),
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
    onData(stream, session, reply) {
      // In flight until its answer has had a moment to reach the client (refuse() waits for it).
      dataInFlight++;
      let answered = false;
      const callback: typeof reply = (...args) => {
        reply(...args);
        if (!answered) setTimeout(() => dataInFlight--, 50);
        answered = true;
      };
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        if (!stream.sizeExceeded) chunks.push(chunk);
      });
      stream.on('error', (err) => callback(err));
      stream.on('end', () => {
        // smtp-server only advertises SIZE; refusing the oversized message is up to us.
        if (stream.sizeExceeded)
          return callback(
            new SmtpReplyError(552, `5.3.4 Message exceeds fixed maximum message size ${MAX_MESSAGE_BYTES}`),
          );
        const raw = Buffer.concat(chunks);
        const recipients = session.envelope.rcptTo.map((r) => r.address);
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined;
        Promise.all(recipients.map((r) => store(r, raw))).then(
          async () => {
            for (const to of recipients) {
              log.info({ from, to, bytes: raw.length, outbound: !localDomains.has(domainOf(to)) }, 'stored message');
            }
            const hook = beforeAccept;
            if (hook) {
              try {
                await hook({ from, recipients, raw });
              } catch (err) {
                // The message is stored either way; a failing hook must not turn that into a deferral.
                log.warn({ err }, 'onBeforeAccept hook failed; accepting anyway');
              }
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
  // Our own record of open sockets, so refuse() can drop them at once (close() would wait).
  const sockets = new Set<Socket>();
  let dataInFlight = 0;
  server.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  let refusing = false;
  let refuseQueue = Promise.resolve();
  async function setRefusing(on: boolean): Promise<void> {
    if (on === refusing) return;
    refusing = on;
    if (on) {
      const closed = new Promise<void>((resolve) => server.server.close(() => resolve()));
      // A message stored but not yet answered would be sent again by the client, a duplicate
      // no sender can avoid (RFC 1047): the transactions under way finish first (at most 3 s),
      // as a server going down finishes them; then every connection is dropped.
      const deadline = Date.now() + 3000;
      while (dataInFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const s of sockets) s.destroy();
      await closed;
    } else {
      await listenOn(server.server, port, 'smtp-target');
    }
    log.info({ port }, on ? 'refusing connections' : 'accepting connections again');
  }
  log.info({ port, lmtp: options.lmtp ?? false, directory: options.directory }, 'listening');

  return {
    port,
    get connections() {
      return connections;
    },
    logins,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    async messagesFor(address) {
      const names = await storedFiles(mailboxDir(address));
      return Promise.all(names.map((n) => readFile(join(mailboxDir(address), n), 'utf8')));
    },
    async deliveries() {
      const out: Delivery[] = [];
      const entries = await readdir(options.directory, { withFileTypes: true });
      for (const mailbox of entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort()) {
        const files = (await storedFiles(join(options.directory, mailbox))).map((n) =>
          join(options.directory, mailbox, n),
        );
        // In slices, so thousands of stored copies do not open thousands of files at once.
        for (let i = 0; i < files.length; i += 64) {
          const slice = files.slice(i, i + 64);
          const ids = await Promise.all(slice.map(async (file) => messageIdOf(await readHeaderBlock(file))));
          slice.forEach((file, j) => out.push({ recipient: mailbox, messageId: ids[j], file }));
        }
      }
      return out;
    },
    setTemporaryFailure(failure) {
      if (failure && !(failure.code >= 400 && failure.code < 500)) {
        throw new Error(
          `smtp-target: a temporary failure needs a 4xx code, got ${failure.code}; use setRecipientFailure for permanent rejections`,
        );
      }
      temporaryFailure = failure ? { ...failure } : null;
    },
    refuse(on) {
      const next = refuseQueue.then(() => setRefusing(on));
      refuseQueue = next.catch(() => undefined);
      return next;
    },
    onBeforeAccept(hook) {
      beforeAccept = hook;
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
      // user:password,user:password (AUTH PLAIN/LOGIN required once given)
      'auth-users': { type: 'string', default: '' },
      // the local OAuth2 server's userinfo URL: XOAUTH2 offered and checked against it
      'oauth2-userinfo-url': { type: 'string', default: '' },
    },
  });
  const list = (s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const target = await startSmtpTarget({
    port: Number(values.port),
    lmtp: values.lmtp,
    directory: values.dir,
    localDomains: list(values.domains),
    mailboxes: list(values.mailboxes),
    auth:
      values['auth-users'] || values['oauth2-userinfo-url']
        ? {
            users: list(values['auth-users']).map((pair) => {
              const i = pair.indexOf(':');
              return { user: pair.slice(0, i), password: pair.slice(i + 1) };
            }),
            oauth2UserinfoUrl: values['oauth2-userinfo-url'] || undefined,
          }
        : undefined,
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
