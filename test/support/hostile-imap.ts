// A small, deliberately hostile IMAP server for the sync tests (a TCP server on 127.0.0.1 that
// speaks just enough IMAP4rev1 for imapflow: LOGIN, LIST, EXAMINE, UID SEARCH, UID FETCH,
// NOOP, LOGOUT). Each message has a behaviour for when its body is fetched:
//   ok        an honest message;
//   size-lie  RFC822.SIZE says 100 bytes, BODY[] announces the real 64 MiB and starts sending
//             it (with backpressure: what the client does not read, the server does not buffer);
//   drip      an honest literal size, then one byte every `dripMs`, forever;
//   endless   instead of the body, FETCH responses for messages nobody asked for, forever,
//             and no tagged completion;
//   cut       half of the literal, then the connection is closed.
// Folder names are sent as given, so a test can list modified UTF-7 such as `&AAA-` (NUL) or
// `&2AA-` (an unpaired surrogate); subjects are sent as given (escape sequences included);
// `loginRefusal` refuses every login with that NO text (a NUL, escape sequences...).
// Counters tell the test what the server actually sent.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export type HostileBehaviour = 'ok' | 'size-lie' | 'drip' | 'endless' | 'cut';

export interface HostileMessage {
  behaviour: HostileBehaviour;
  subject?: string;
  /** Real size of the body for size-lie (default 64 MiB). */
  bytes?: number;
}

export interface HostileImapServer {
  port: number;
  host: string;
  user: string;
  password: string;
  /** Bytes written for each behaviour's bodies (summed over connections). */
  bodyBytesSent: Record<HostileBehaviour, number>;
  connections: number;
  /** LOGIN commands received. */
  logins: number;
  /** Sockets still open (the client gave up on the others). */
  openConnections(): number;
  stop(): Promise<void>;
}

const UID_VALIDITY = 4242;

function bodyOf(folder: string, uid: number, m: HostileMessage): Buffer {
  return Buffer.from(
    [
      `From: Sender ${uid} <sender${uid}@hostile.example>`,
      'To: victim@example.test',
      `Subject: ${m.subject ?? `${folder} ${m.behaviour} ${uid}`}`,
      'Date: Mon, 01 Jan 2024 00:00:00 +0000',
      `Message-ID: <${folder}-${uid}@hostile.example>`,
      '',
      `Body of ${folder} message ${uid} (${m.behaviour}).`,
      '',
    ].join('\r\n'),
  );
}

function quoted(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function envelope(folder: string, uid: number, m: HostileMessage): string {
  const addr = (name: string, mailbox: string, host: string) =>
    `((${quoted(name)} NIL ${quoted(mailbox)} ${quoted(host)}))`;
  const from = addr(`Sender ${uid}`, `sender${uid}`, 'hostile.example');
  return `(${quoted('Mon, 01 Jan 2024 00:00:00 +0000')} ${quoted(m.subject ?? `${folder} ${m.behaviour} ${uid}`)} ${from} ${from} ${from} ${addr('', 'victim', 'example.test')} NIL NIL NIL ${quoted(`<${folder}-${uid}@hostile.example>`)})`;
}

/** Parses "1:3,5,7:*" against the known UIDs. */
function uidsIn(set: string, known: number[]): number[] {
  const max = known.length ? Math.max(...known) : 0;
  const out = new Set<number>();
  for (const part of set.split(',')) {
    const [a, b] = part.split(':');
    const lo = a === '*' ? max : Number(a);
    const hi = b === undefined ? lo : b === '*' ? max : Number(b);
    for (const u of known) if (u >= Math.min(lo, hi) && u <= Math.max(lo, hi)) out.add(u);
  }
  return [...out].sort((x, y) => x - y);
}

export async function startHostileImap(options: {
  folders: Record<string, HostileMessage[]>;
  user?: string;
  password?: string;
  dripMs?: number;
  /** Refuse every login with `NO [AUTHENTICATIONFAILED] <this text>`. */
  loginRefusal?: string;
}): Promise<HostileImapServer> {
  const user = options.user ?? 'victim@example.test';
  const password = options.password ?? 'hostile-secret';
  const dripMs = options.dripMs ?? 100;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const state = {
    bodyBytesSent: { ok: 0, 'size-lie': 0, drip: 0, endless: 0, cut: 0 } as Record<HostileBehaviour, number>,
    connections: 0,
    logins: 0,
  };

  const handle = (socket: Socket) => {
    sockets.add(socket);
    state.connections++;
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let selected: string | null = null;
    let buffer = '';
    let busy = false; // a hostile answer is in progress: the rest of the session is ignored
    const write = (line: string) => {
      if (!socket.destroyed) socket.write(`${line}\r\n`);
    };
    const alive = () => !socket.destroyed && socket.writable;
    /** Writes `total` bytes of filler in chunks, honouring backpressure, until done or the client is gone. */
    const stream = async (total: number, count: (n: number) => void) => {
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let left = total;
      while (left > 0 && alive()) {
        const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= part.length;
        count(part.length);
        if (!socket.write(part))
          await new Promise<void>((r) => {
            socket.once('drain', r);
            socket.once('close', r);
          });
      }
    };
    const sleep = (ms: number) =>
      new Promise<void>((r) => {
        const t = setTimeout(() => {
          timers.delete(t);
          r();
        }, ms);
        timers.add(t);
      });

    const messages = () => (selected ? (options.folders[selected] ?? []) : []);
    const uidOf = (i: number) => i + 1;

    const fetch = async (tag: string, set: string, items: string) => {
      const list = messages();
      const known = list.map((_, i) => uidOf(i));
      const wantBody = /BODY(\.PEEK)?\[\]/i.test(items);
      for (const uid of uidsIn(set, known)) {
        const seq = uid; // no expunges: sequence number = UID
        const m = list[uid - 1];
        const body = bodyOf(selected!, uid, m);
        if (!wantBody) {
          const size = m.behaviour === 'size-lie' ? 100 : body.length;
          write(
            `* ${seq} FETCH (UID ${uid} FLAGS () INTERNALDATE "01-Jan-2024 00:00:00 +0000" RFC822.SIZE ${size} ENVELOPE ${envelope(selected!, uid, m)})`,
          );
          continue;
        }
        switch (m.behaviour) {
          case 'ok':
            socket.write(`* ${seq} FETCH (UID ${uid} BODY[] {${body.length}}\r\n`);
            socket.write(body);
            write(')');
            state.bodyBytesSent.ok += body.length;
            break;
          case 'size-lie': {
            const total = m.bytes ?? 64 * 1024 * 1024;
            busy = true;
            socket.write(`* ${seq} FETCH (UID ${uid} BODY[] {${total}}\r\n`);
            await stream(total, (n) => (state.bodyBytesSent['size-lie'] += n));
            if (alive()) write(')');
            break;
          }
          case 'drip':
            busy = true;
            socket.write(`* ${seq} FETCH (UID ${uid} BODY[] {${body.length}}\r\n`);
            for (let i = 0; i < body.length && alive(); i++) {
              socket.write(body.subarray(i, i + 1));
              state.bodyBytesSent.drip++;
              await sleep(dripMs);
            }
            return;
          case 'endless': {
            // Instead of the body: FETCH responses for messages nobody asked for, without end.
            busy = true;
            for (let n = 1; alive(); n++) {
              const line = `* ${seq} FETCH (UID ${100000 + n} FLAGS (\\Seen))\r\n`;
              state.bodyBytesSent.endless += line.length;
              if (!socket.write(line))
                await new Promise<void>((r) => {
                  socket.once('drain', r);
                  socket.once('close', r);
                });
              if (n % 200 === 0) await sleep(1);
            }
            return;
          }
          case 'cut':
            busy = true;
            socket.write(`* ${seq} FETCH (UID ${uid} BODY[] {${body.length}}\r\n`);
            socket.write(body.subarray(0, Math.floor(body.length / 2)));
            state.bodyBytesSent.cut += Math.floor(body.length / 2);
            await sleep(20);
            socket.destroy();
            return;
        }
      }
      write(`${tag} OK UID FETCH completed`);
    };

    const command = async (line: string) => {
      const m = /^(\S+)\s+(UID\s+)?(\S+)\s*(.*)$/i.exec(line);
      if (!m) return;
      const [, tag, uidPrefix, verbRaw, rest] = m;
      const verb = verbRaw.toUpperCase();
      switch (verb) {
        case 'CAPABILITY':
          write('* CAPABILITY IMAP4rev1');
          write(`${tag} OK CAPABILITY completed`);
          return;
        case 'LOGIN': {
          const args = [...rest.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((a) =>
            (a[1] ?? a[2]).replace(/\\(.)/g, '$1'),
          );
          state.logins++;
          if (options.loginRefusal !== undefined) write(`${tag} NO [AUTHENTICATIONFAILED] ${options.loginRefusal}`);
          else if (args[0] === user && args[1] === password) write(`${tag} OK [CAPABILITY IMAP4rev1] LOGIN completed`);
          else write(`${tag} NO [AUTHENTICATIONFAILED] Authentication failed.`);
          return;
        }
        case 'LIST':
          // LIST "" "" asks only for the hierarchy delimiter.
          if (/""\s*$/.test(rest)) write('* LIST (\\Noselect) "/" ""');
          else for (const f of Object.keys(options.folders)) write(`* LIST (\\HasNoChildren) "/" ${quoted(f)}`);
          write(`${tag} OK LIST completed`);
          return;
        case 'LSUB':
          write(`${tag} OK LSUB completed`);
          return;
        case 'EXAMINE':
        case 'SELECT': {
          const name = rest.trim().replace(/^"(.*)"$/, '$1');
          if (!(name in options.folders)) {
            write(`${tag} NO [NONEXISTENT] Mailbox doesn't exist: ${name}`);
            return;
          }
          selected = name;
          const n = messages().length;
          write('* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)');
          write(`* ${n} EXISTS`);
          write('* 0 RECENT');
          write(`* OK [UIDVALIDITY ${UID_VALIDITY}] UIDs valid`);
          write(`* OK [UIDNEXT ${n + 1}] Predicted next UID`);
          write(`${tag} OK [READ-ONLY] ${verb} completed`);
          return;
        }
        case 'CLOSE':
        case 'UNSELECT':
          selected = null;
          write(`${tag} OK ${verb} completed`);
          return;
        case 'SEARCH': {
          const known = messages().map((_, i) => uidOf(i));
          const range = /UID\s+(\S+)/i.exec(rest)?.[1] ?? '1:*';
          write(
            `* SEARCH${uidsIn(range, known)
              .map((u) => ` ${u}`)
              .join('')}`,
          );
          write(`${tag} OK SEARCH completed`);
          return;
        }
        case 'FETCH': {
          if (!uidPrefix) {
            write(`${tag} BAD only UID FETCH here`);
            return;
          }
          const f = /^(\S+)\s+(.*)$/.exec(rest);
          await fetch(tag, f?.[1] ?? '', f?.[2] ?? '');
          return;
        }
        case 'NOOP':
          write(`${tag} OK NOOP completed`);
          return;
        case 'LOGOUT':
          write('* BYE logging out');
          write(`${tag} OK LOGOUT completed`);
          socket.end();
          return;
        default:
          write(`${tag} BAD unknown command ${verb}`);
      }
    };

    let queue = Promise.resolve();
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let nl: number;
      while ((nl = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        queue = queue
          .then(() => (busy ? undefined : command(line)))
          .catch(() => {
            socket.destroy();
          });
      }
    });
    write('* OK [CAPABILITY IMAP4rev1] hostile test server ready');
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    user,
    password,
    get bodyBytesSent() {
      return state.bodyBytesSent;
    },
    get connections() {
      return state.connections;
    },
    get logins() {
      return state.logins;
    },
    openConnections: () => sockets.size,
    async stop() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
