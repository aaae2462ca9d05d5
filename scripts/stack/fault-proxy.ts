// Fault injection for the chaos harness (bench/chaos.ts): proxies that sit in front of the
// local stack's real servers and break them on command. The HTTP proxy speaks just enough
// S3 and DynamoDB to answer throttles and partial batches the way AWS does, so the SDK's
// own retry logic and ours (lib/aws/dynamodb.ts) meet the real thing; the TCP proxy
// cuts or refuses connections to IMAP, SMTP or PostgreSQL.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import { crc32 } from 'node:zlib';
import { componentLogger } from '../../lib/observability/logger';

const log = componentLogger('fault-proxy');

export interface HttpFaults {
  /** Unavailable like a crashed server: not listening (ECONNREFUSED), open connections dropped. */
  down: boolean;
  /** Share of requests (0..1) answered with the service's throttling error instead of being forwarded. */
  errorRate: number;
  /** DynamoDB only: share of BatchGetItem / BatchWriteItem requests (0..1) that return part of their keys or items unprocessed. */
  partialBatchRate: number;
}

export interface HttpFaultProxy {
  endpoint: string;
  port: number;
  set(f: Partial<HttpFaults>): Promise<void>;
  /**
   * Calls `hook` once the upstream server has answered a forwarded request and before the
   * client hears the answer (awaited): the chaos harness kills a worker there, after S3 stored
   * its write but before the worker learnt of it. null removes it.
   */
  onForwarded(hook: ((req: http.IncomingMessage, status: number) => Promise<void> | void) | null): void;
  /**
   * requests: all requests received; errors: throttles injected; partialBatches: BatchGetItems
   * and BatchWriteItems cut short; refusedWhileDown: requests cut off by going down (in flight at that moment, or
   * arriving on a connection accepted just before). Refused connections never reach the proxy.
   */
  readonly stats: { requests: number; errors: number; partialBatches: number; refusedWhileDown: number };
  stop(): Promise<void>;
}

export interface TcpFaultProxy {
  host: string;
  port: number;
  refuse(on: boolean): Promise<void>;
  cut(): void;
  /** Total connections accepted since start (as SmtpTarget.connections). */
  readonly connections: number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: a tiny seeded PRNG, so a chaos run's injected faults can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Listens on 127.0.0.1:port. Coming back up on a fixed port can briefly collide with an
 * outgoing connection that the OS gave the same ephemeral port while we were down, so
 * EADDRINUSE is retried for a while before giving up.
 */
export async function listenOn(server: net.Server, port: number, what: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      return (server.address() as AddressInfo).port;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' || port === 0 || attempt >= 100) {
        throw new Error(
          `${what}: cannot listen on 127.0.0.1:${port}: ${(err as Error).message}; is another process using the port?`,
        );
      }
      await sleep(100);
    }
  }
}

/** Stops listening and drops every open connection, as a crashed server would. */
async function closeHard(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  // close() waits for open connections, so they are destroyed after it has been asked to stop.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const s of sockets) s.destroy();
  await closed;
}

function trackSockets(server: net.Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return sockets;
}

// Connection-level headers belong to each hop; Expect is answered by our own server (Node
// sends 100 Continue). None of them is part of a SigV4 signature.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

function forwardHeaders(raw: string[], drop: string[] = []): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (!HOP_BY_HOP.has(name) && !drop.includes(name)) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const requestId = () => randomBytes(8).toString('hex').toUpperCase();

/** S3's answer to too many requests: the SDK retries it as a throttle (error code SlowDown, 503). */
function s3SlowDown(res: http.ServerResponse): void {
  const id = requestId();
  const hostId = randomBytes(48).toString('base64');
  const body = Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>${id}</RequestId><HostId>${hostId}</HostId></Error>`,
  );
  // For HEAD, Node sends the headers only; the SDK then has nothing but the status (503) to go on.
  res.writeHead(503, 'Slow Down', {
    'Content-Type': 'application/xml',
    'Content-Length': body.length,
    'x-amz-request-id': id,
    'x-amz-id-2': hostId,
    Date: new Date().toUTCString(),
    Server: 'AmazonS3',
  });
  res.end(body);
}

function dynamoJson(res: http.ServerResponse, status: number, payload: unknown): void {
  const body = Buffer.from(JSON.stringify(payload));
  res.writeHead(status, {
    'Content-Type': 'application/x-amz-json-1.0',
    'Content-Length': body.length,
    'x-amzn-RequestId': requestId(),
    'x-amz-crc32': String(crc32(body)),
  });
  res.end(body);
}

function dynamoThrottle(res: http.ServerResponse): void {
  dynamoJson(res, 400, {
    __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
    message:
      'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
  });
}

interface KeysAndAttributes {
  Keys: unknown[];
  [more: string]: unknown;
}
/** BatchGetItem: keys (with their projection) per table; BatchWriteItem: a list of put/delete requests per table. */
type RequestItems = Record<string, KeysAndAttributes | unknown[]>;
type BatchKind = 'get' | 'write';
const BATCH_TARGETS: Record<string, BatchKind> = {
  'DynamoDB_20120810.BatchGetItem': 'get',
  'DynamoDB_20120810.BatchWriteItem': 'write',
};
/** Where the answer lists what was not done: the same shape as the request. */
const UNPROCESSED: Record<BatchKind, string> = { get: 'UnprocessedKeys', write: 'UnprocessedItems' };

const requestsOf = (entry: KeysAndAttributes | unknown[]): unknown[] | undefined =>
  Array.isArray(entry) ? entry : Array.isArray(entry?.Keys) ? entry.Keys : undefined;
const withRequests = (entry: KeysAndAttributes | unknown[], list: unknown[]): KeysAndAttributes | unknown[] =>
  Array.isArray(entry) ? list : { ...entry, Keys: list };

/** Splits RequestItems into what is still asked for and a random non-empty set of keys or writes (possibly all) left unprocessed. */
function splitBatch(items: RequestItems, rand: () => number): { kept: RequestItems; unprocessed: RequestItems } {
  const all: { table: string; key: unknown }[] = Object.entries(items).flatMap(([table, e]) =>
    requestsOf(e)!.map((key) => ({ table, key })),
  );
  // A fifth of the time nothing is processed at all; otherwise each key is a coin toss.
  const everything = rand() < 0.2;
  const moved = new Set(all.filter(() => everything || rand() < 0.5));
  if (moved.size === 0) moved.add(all[Math.floor(rand() * all.length)]);
  const kept: RequestItems = {};
  const unprocessed: RequestItems = {};
  for (const [table, entry] of Object.entries(items)) {
    const mine = all.filter((k) => k.table === table);
    const stay = mine.filter((k) => !moved.has(k)).map((k) => k.key);
    const go = mine.filter((k) => moved.has(k)).map((k) => k.key);
    // ProjectionExpression, ExpressionAttributeNames, ConsistentRead… travel with the keys, as in DynamoDB.
    if (stay.length) kept[table] = withRequests(entry, stay);
    if (go.length) unprocessed[table] = withRequests(entry, go);
  }
  return { kept, unprocessed };
}

export async function startHttpFaultProxy(o: {
  target: string;
  kind: 's3' | 'dynamodb';
  port?: number;
  seed?: number;
}): Promise<HttpFaultProxy> {
  const target = new URL(o.target);
  if (target.protocol !== 'http:')
    throw new Error(`fault proxy: target ${o.target} must be an http:// URL (the local emulators speak plain HTTP)`);
  const faults: HttpFaults = { down: false, errorRate: 0, partialBatchRate: 0 };
  const stats = { requests: 0, errors: 0, partialBatches: 0, refusedWhileDown: 0 };
  const rand = prng(o.seed ?? 1);
  const agent = new http.Agent({ keepAlive: true });
  const inFlight = new Set<http.ServerResponse>();

  /** Sends the request upstream; `body` replaces the client's (streamed otherwise). */
  function upstream(
    req: http.IncomingMessage,
    body: Buffer | undefined,
    onResponse: (up: http.IncomingMessage) => void,
    onError: (err: Error) => void,
  ): http.ClientRequest {
    // The Host header goes upstream unchanged: the client signed it (SigV4, which the S3 server
    // verifies) with the proxy's address, and rewriting it to the target's would break that.
    const headers = body
      ? [
          ...forwardHeaders(req.rawHeaders, ['content-length', 'accept-encoding']),
          'Content-Length',
          String(body.length),
        ]
      : forwardHeaders(req.rawHeaders);
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
      onResponse,
    );
    up.on('error', onError);
    if (body) up.end(body);
    else pipeline(req, up, () => undefined); // failures surface through up's 'error' or the client's close
    return up;
  }

  function badGateway(res: http.ServerResponse, err: Error): void {
    log.debug({ err: err.message, target: o.target }, 'upstream request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`fault proxy: ${o.target} failed: ${err.message}\n`);
  }

  let forwardedHook: Parameters<HttpFaultProxy['onForwarded']>[0] = null;

  function forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const up = upstream(
      req,
      undefined,
      (upRes) => {
        const reply = () => {
          // The client may have gone meanwhile (the hook killed it): nothing to answer.
          if (res.destroyed || res.writableEnded) {
            upRes.resume();
            return;
          }
          res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, forwardHeaders(upRes.rawHeaders));
          pipeline(upRes, res, () => undefined);
        };
        const hook = forwardedHook;
        if (!hook) return reply();
        Promise.resolve()
          .then(() => hook(req, upRes.statusCode ?? 502))
          .catch((err: Error) => log.warn({ err: err.message }, 'onForwarded hook failed; answering anyway'))
          .finally(reply);
      },
      (err) => badGateway(res, err),
    );
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
  }

  /** Answers a BatchGetItem / BatchWriteItem with part of it unprocessed, merged into the real response for the rest. */
  async function partialBatch(
    kind: BatchKind,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
  ): Promise<void> {
    let request: { RequestItems?: RequestItems };
    try {
      request = JSON.parse(body.toString('utf8')) as { RequestItems?: RequestItems };
    } catch {
      request = {};
    }
    const items = request.RequestItems ?? {};
    const entries = Object.values(items);
    if (entries.length === 0 || !entries.every((e) => (requestsOf(e)?.length ?? 0) > 0)) {
      // Nothing we understand: let dynalite give its own ValidationException.
      await exchangeAndReply(req, res, body);
      return;
    }
    stats.partialBatches++;
    const { kept, unprocessed } = splitBatch(items, rand);
    const field = UNPROCESSED[kind];
    const emptyResponses =
      kind === 'get' ? { Responses: Object.fromEntries(Object.keys(items).map((t) => [t, [] as unknown[]])) } : {};
    if (Object.keys(kept).length === 0) {
      dynamoJson(res, 200, { ...emptyResponses, [field]: unprocessed });
      return;
    }
    // Changing the body invalidates the client's SigV4 signature. That works only because
    // dynalite does not verify signatures; a real DynamoDB endpoint would answer 400.
    await exchangeAndReply(req, res, Buffer.from(JSON.stringify({ ...request, RequestItems: kept })), (status, out) => {
      if (status !== 200) return undefined;
      const parsed = JSON.parse(out.toString('utf8')) as { Responses?: Record<string, unknown[]> } & Record<
        string,
        RequestItems | undefined
      >;
      const merged: RequestItems = { ...(parsed[field] ?? {}) };
      for (const [table, entry] of Object.entries(unprocessed)) {
        merged[table] = merged[table]
          ? withRequests(merged[table], [...requestsOf(merged[table])!, ...requestsOf(entry)!])
          : entry;
      }
      const responses =
        kind === 'get' ? { Responses: { ...emptyResponses.Responses, ...(parsed.Responses ?? {}) } } : {};
      return Buffer.from(JSON.stringify({ ...parsed, ...responses, [field]: merged }));
    });
  }

  /** Forwards a buffered body and replies with the upstream answer, optionally rewritten. */
  async function exchangeAndReply(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
    rewrite?: (status: number, body: Buffer) => Buffer | undefined,
  ): Promise<void> {
    let upRes: http.IncomingMessage;
    let out: Buffer;
    try {
      upRes = await new Promise<http.IncomingMessage>((resolve, reject) => upstream(req, body, resolve, reject));
      out = await readAll(upRes);
    } catch (err) {
      badGateway(res, err as Error);
      return;
    }
    const status = upRes.statusCode ?? 502;
    let changed: Buffer | undefined;
    try {
      changed = rewrite?.(status, out);
    } catch (err) {
      // An answer we cannot merge into goes back as it came: the fault is skipped, nothing is lost.
      log.warn(
        { err: (err as Error).message, target: o.target },
        'could not rewrite upstream response; passing it through',
      );
    }
    const headers = changed
      ? [
          ...forwardHeaders(upRes.rawHeaders, ['content-length', 'x-amz-crc32']),
          'Content-Length',
          String(changed.length),
          'x-amz-crc32',
          String(crc32(changed)),
        ]
      : forwardHeaders(upRes.rawHeaders);
    res.writeHead(status, upRes.statusMessage, headers);
    res.end(changed ?? out);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    stats.requests++;
    if (faults.down) {
      stats.refusedWhileDown++;
      req.socket.destroy();
      return;
    }
    if (faults.errorRate > 0 && rand() < faults.errorRate) {
      stats.errors++;
      // Read the body first: replying to a half-sent upload makes clients see a reset, not the error.
      await readAll(req);
      if (o.kind === 's3') s3SlowDown(res);
      else dynamoThrottle(res);
      return;
    }
    const batch = o.kind === 'dynamodb' ? BATCH_TARGETS[String(req.headers['x-amz-target'])] : undefined;
    if (batch && faults.partialBatchRate > 0 && rand() < faults.partialBatchRate) {
      await partialBatch(batch, req, res, await readAll(req));
      return;
    }
    forward(req, res);
  }

  const server = http.createServer((req, res) => {
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    handle(req, res).catch((err: Error) => badGateway(res, err));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  const sockets = trackSockets(server);
  const port = await listenOn(server, o.port ?? 0, `fault proxy for ${o.target}`);

  // set() calls are applied one after the other, so down/up transitions never interleave.
  let queue = Promise.resolve();
  async function apply(f: Partial<HttpFaults>): Promise<void> {
    for (const k of ['errorRate', 'partialBatchRate'] as const) {
      const v = f[k];
      if (v === undefined) continue;
      if (!(v >= 0 && v <= 1)) throw new Error(`fault proxy: ${k} must be between 0 and 1, got ${v}`);
      faults[k] = v;
    }
    if (f.down === undefined || f.down === faults.down) return;
    faults.down = f.down;
    if (f.down) {
      stats.refusedWhileDown += [...inFlight].filter((r) => !r.writableFinished).length;
      await closeHard(server, sockets);
      log.info({ target: o.target, port }, 'down: refusing connections');
    } else {
      await listenOn(server, port, `fault proxy for ${o.target}`);
      log.info({ target: o.target, port }, 'up again');
    }
  }

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stats,
    onForwarded(hook) {
      forwardedHook = hook;
    },
    set(f) {
      const next = queue.then(() => apply(f));
      queue = next.catch(() => undefined);
      return next;
    },
    async stop() {
      await queue;
      if (server.listening) await closeHard(server, sockets);
      agent.destroy();
    },
  };
}

export async function startTcpFaultProxy(o: {
  target: { host: string; port: number };
  port?: number;
}): Promise<TcpFaultProxy> {
  const where = `${o.target.host}:${o.target.port}`;
  /** Open sockets, each marked as the client's side or ours towards the target. */
  const open = new Map<net.Socket, 'client' | 'upstream'>();
  let connections = 0;

  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(o.target.port, o.target.host);
    const pair = [client, upstream];
    open.set(client, 'client');
    open.set(upstream, 'upstream');
    for (const s of pair) {
      // Whatever ends one side ends the other; errors are expected here (that is the point).
      s.once('close', () => {
        open.delete(s);
        for (const other of pair) if (other !== s) other.destroy();
      });
      s.on('error', (err) => log.debug({ err: err.message, target: where }, 'proxied connection failed'));
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.on('error', (err) => log.warn({ err, target: where }, 'tcp fault proxy error'));
  const port = await listenOn(server, o.port ?? 0, `tcp fault proxy for ${where}`);

  /** Like a network cut or a server restart: the client side gets a reset, upstream a close. */
  function cut(): void {
    for (const [s, side] of [...open]) {
      if (side === 'client') s.resetAndDestroy();
      else s.destroy();
    }
  }

  let queue = Promise.resolve();
  let refusing = false;
  async function setRefusing(on: boolean): Promise<void> {
    if (on === refusing) return;
    refusing = on;
    if (on) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      cut();
      await closed;
    } else {
      await listenOn(server, port, `tcp fault proxy for ${where}`);
    }
    log.info({ target: where, port, refusing: on }, on ? 'refusing connections' : 'accepting connections again');
  }

  return {
    host: '127.0.0.1',
    port,
    get connections() {
      return connections;
    },
    cut,
    refuse(on) {
      const next = queue.then(() => setRefusing(on));
      queue = next.catch(() => undefined);
      return next;
    },
    async stop() {
      await queue;
      if (!server.listening) return cut();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      cut();
      await closed;
    },
  };
}
