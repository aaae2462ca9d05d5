// The codec server: lets the Temporal Web UI (and `temporal ... --codec-endpoint`) show
// mailroom's encrypted payloads (lib/temporal/codec.ts) in plaintext to an authorised operator, without
// the key ever leaving this process. Protocol (Temporal's remote codec protocol): POST
// <endpoint>/decode and <endpoint>/encode with a JSON body {"payloads": [{"metadata":
// {"encoding": "<base64>", ...}, "data": "<base64>"}]} (temporal.api.common.v1.Payloads in
// proto JSON form), answered in the same form; only the last path segment is looked at, and
// the X-Namespace header the UI sends is accepted (one key set serves every namespace).
//
// Every encode/decode request must be authorised, either by `Authorization: Bearer
// <CODEC_SERVER_TOKEN>` (CLI, scripts, a proxy) or by the session cookie that <endpoint>/login
// sets after the token was entered there (the Web UI, with "Include cross-origin
// credentials": the UI's own "Pass the user access token" sends the UI login's token, and
// only to https endpoints). Browsers may call it only from CODEC_CORS_ORIGINS.
//
//   MAILROOM_CODEC_KEYS=... CODEC_SERVER_TOKEN=... npm run codec-server     (docs/privacy.md)
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { codecFromEnv, CODEC_KEYS_VAR } from '../lib/temporal/codec';
import { ConfigError } from '../lib/config';
import { componentLogger } from '../lib/observability/logger';
import { listen } from './http';
import { environment } from '../lib/config/env';
import { serviceArgs, type ServiceSpec } from '../lib/cli';

const log = componentLogger('codec-server');

const SERVICE: ServiceSpec = {
  name: 'codec-server',
  summary:
    "Runs the codec server: decrypts mailroom's payloads for the Temporal Web UI and `temporal ... --codec-endpoint`, for whoever has the token, until SIGTERM or SIGINT. docs/privacy.md",
  environment: [
    "MAILROOM_CODEC_KEYS   the workers' keys (required)",
    'CODEC_SERVER_TOKEN    bearer token every request carries; the Web UI signs in with it at <endpoint>/login (required, 16+ characters: openssl rand -hex 32)',
    'CODEC_SERVER_PORT     default 8888 (0 = any free port, logged)',
    'CODEC_SERVER_HOST     default 127.0.0.1',
    'CODEC_CORS_ORIGINS    the Web UI origins allowed (default http://localhost:8233,http://127.0.0.1:8233)',
  ],
  examples: ['MAILROOM_CODEC_KEYS=... CODEC_SERVER_TOKEN=$(openssl rand -hex 32) npm run codec-server'],
};

export const DEFAULT_CODEC_PORT = 8888;
export const DEFAULT_CORS_ORIGINS = ['http://localhost:8233', 'http://127.0.0.1:8233'];
export const SESSION_COOKIE = 'mailroom_codec_session';
const MIN_TOKEN_LENGTH = 16;
const SESSION_SECONDS = 12 * 3600;
const ALLOW_HEADERS = 'Authorization, Content-Type, X-Namespace';

export interface CodecServerOptions {
  port: number;
  /** Default 127.0.0.1; the server decrypts, so expose it no wider than the operators' network. */
  host?: string;
  /** The bearer token every encode/decode request must carry (or the cookie /login derives from it). */
  token: string;
  /** Browser origins (the Web UI's) allowed to call it, e.g. http://localhost:8233. */
  origins: string[];
  codec: PayloadCodec;
  /** Largest request body accepted; default 16 MiB. */
  maxBodyBytes?: number;
}

export interface CodecServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Proto JSON form of a Payload: bytes as base64. */
export interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();
/** Constant-time comparison of two secrets of any length. */
const sameSecret = (a: string, b: string) => timingSafeEqual(sha256(a), sha256(b));

export function payloadFromJson(p: unknown, index: number): Payload {
  if (typeof p !== 'object' || p === null || Array.isArray(p))
    throw new HttpError(400, `payloads[${index}] is not an object`);
  const { metadata, data } = p as JsonPayload;
  if (data !== undefined && data !== null && typeof data !== 'string')
    throw new HttpError(400, `payloads[${index}].data must be a base64 string`);
  if (metadata !== undefined && metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata)))
    throw new HttpError(400, `payloads[${index}].metadata must be an object`);
  const meta: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(metadata ?? {})) {
    if (typeof v !== 'string') throw new HttpError(400, `payloads[${index}].metadata.${k} must be a base64 string`);
    meta[k] = Buffer.from(v, 'base64');
  }
  return { metadata: meta, data: Buffer.from(data ?? '', 'base64') };
}

/**
 * The request body, temporal.api.common.v1.Payloads in proto JSON: what the SDKs, the CLI and
 * the Web UI send. Proto JSON leaves empty fields out, so a query without arguments arrives as
 * `{}` (or `{"payloads": null}`, or no body at all): all mean no payloads. Unknown fields are
 * ignored, as proto JSON parsers do.
 */
export function payloadsFromBody(text: string): Payload[] {
  if (text.trim() === '') return [];
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, 'body must be a JSON object: {"payloads": [...]}');
  const raw = (body as { payloads?: unknown }).payloads;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new HttpError(400, 'body must be {"payloads": [...]}: payloads is not a list');
  return raw.map(payloadFromJson);
}

export function payloadToJson(p: Payload): JsonPayload {
  const out: JsonPayload = {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
  };
  if (p.data && p.data.length > 0) out.data = Buffer.from(p.data).toString('base64');
  return out;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `request body over ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body style="font-family:sans-serif;max-width:40em;margin:3em auto">${body}</body></html>`;
}

export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  if (!opts.token || opts.token.length < MIN_TOKEN_LENGTH)
    throw new ConfigError(`the codec server token must be at least ${MIN_TOKEN_LENGTH} characters`);
  const origins = new Set(opts.origins);
  const limit = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  // The cookie carries a value derived from the token, not the token itself.
  const session = createHmac('sha256', opts.token).update('mailroom codec session v1').digest('base64url');

  const authorised = (req: IncomingMessage): boolean => {
    const auth = req.headers.authorization;
    if (auth) {
      const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
      return !!m && sameSecret(m[1].trim(), opts.token);
    }
    const cookie = cookies(req).get(SESSION_COOKIE);
    return cookie !== undefined && sameSecret(cookie, session);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<{ status: number; payloads?: number }> => {
    const url = new URL(req.url ?? '/', 'http://codec.invalid');
    const action = url.pathname.replace(/\/+$/, '').split('/').pop() ?? '';
    const origin = req.headers.origin;
    // The /login page posting to itself (also behind a proxy that keeps Host or sets X-Forwarded-Host).
    const originHost = origin ? URL.canParse(origin) && new URL(origin).host : undefined;
    const sameOrigin =
      !!originHost && (originHost === req.headers.host || originHost === req.headers['x-forwarded-host']);
    if (origin !== undefined && !sameOrigin) {
      if (!origins.has(origin)) {
        send(res, 403, { error: `origin ${origin} is not allowed (CODEC_CORS_ORIGINS)` });
        return { status: 403 };
      }
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }

    if (req.method === 'OPTIONS') {
      // CORS preflight: browsers send it without credentials, so it is answered without them.
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': ALLOW_HEADERS,
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return { status: 204 };
    }

    if (action === 'health' && req.method === 'GET') {
      send(res, 200, { status: 'ok' });
      return { status: 200 };
    }

    if (action === 'login') return login(req, res, url.pathname);

    if (action !== 'encode' && action !== 'decode') {
      send(res, 404, { error: 'not found: POST <endpoint>/encode or <endpoint>/decode' });
      return { status: 404 };
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST, OPTIONS');
      send(res, 405, { error: 'use POST' });
      return { status: 405 };
    }
    if (!authorised(req)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="mailroom-codec"');
      send(res, 401, {
        error: 'unauthorised: send Authorization: Bearer <CODEC_SERVER_TOKEN>, or sign in at <endpoint>/login',
      });
      return { status: 401 };
    }
    const input = payloadsFromBody((await readBody(req, limit)).toString('utf8'));
    let output: Payload[];
    try {
      output = action === 'decode' ? await opts.codec.decode(input) : await opts.codec.encode(input);
    } catch (err) {
      throw new HttpError(422, (err as Error).message);
    }
    res.setHeader('Cache-Control', 'no-store');
    send(res, 200, { payloads: output.map(payloadToJson) });
    return { status: 200, payloads: input.length };
  };

  const login = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<{ status: number }> => {
    res.setHeader('Cache-Control', 'no-store');
    const form = page(
      'mailroom codec server',
      `<h1>mailroom codec server</h1><p>Enter the codec server token (CODEC_SERVER_TOKEN). This browser then gets a session cookie (12 h), which the Temporal Web UI sends to decode payloads.</p><form method="post"><input type="password" name="token" autofocus size="50" autocomplete="off"> <button>Sign in</button></form>`,
    );
    if (req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(form);
      return { status: 200 };
    }
    if (req.method !== 'POST') {
      send(res, 405, { error: 'use GET or POST' });
      return { status: 405 };
    }
    const token = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8')).get('token') ?? '';
    if (!sameSecret(token, opts.token)) {
      res
        .writeHead(401, { 'Content-Type': 'text/html; charset=utf-8' })
        .end(form.replace('<form', '<p style="color:#b00">Wrong token.</p><form'));
      return { status: 401 };
    }
    // Scoped to the endpoint's directory; SameSite=Strict: only same-site pages (the Web UI on
    // the same host name) make the browser send it.
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    const secure = req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : ''; // behind a TLS proxy
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Set-Cookie': `${SESSION_COOKIE}=${session}; Path=${dir}; Max-Age=${SESSION_SECONDS}; HttpOnly; SameSite=Strict${secure}`,
    });
    res.end(
      page(
        'signed in',
        '<h1>Signed in</h1><p>Reload the Temporal Web UI: payloads show decoded. You can close this tab.</p><p>If the UI still shows base64 (a UI not configured to send credentials): open its data encoder settings, the glasses icon in its top bar, enter this server as the endpoint and turn on <b>Include cross-origin credentials</b>.</p>',
      ),
    );
    return { status: 200 };
  };

  const server = createServer((req, res) => {
    const started = Date.now();
    handle(req, res)
      .catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (status === 500) log.error({ err }, 'codec request failed');
        if (!res.headersSent) send(res, status, { error: status === 500 ? 'internal error' : (err as Error).message });
        else res.end();
        return { status, payloads: undefined };
      })
      .then(
        ({ status, payloads }) => {
          // Never the payloads themselves: only what was asked and how it went.
          log.debug(
            {
              method: req.method,
              path: req.url,
              status,
              payloads,
              namespace: req.headers['x-namespace'],
              ms: Date.now() - started,
            },
            'codec request',
          );
        },
        () => undefined,
      );
  });
  const port = await listen(server, opts.port, opts.host ?? '127.0.0.1', 'CODEC_SERVER_PORT');
  const host = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';
  return {
    server,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

/** Reads CODEC_SERVER_* and MAILROOM_CODEC_KEYS; throws a ConfigError naming what is missing. */
export function codecServerOptionsFromEnv(env: NodeJS.ProcessEnv = environment()): CodecServerOptions {
  // It only shows payloads to an operator, who must be able to read an unencrypted one too
  // (written before encryption, or by a client without the codec: what the workers refuse).
  const codec = codecFromEnv(env, { allowPlaintext: true });
  if (!codec)
    throw new ConfigError(`${CODEC_KEYS_VAR} is not set: the codec server needs the keys the workers encrypt with`);
  const token = env.CODEC_SERVER_TOKEN?.trim();
  if (!token)
    throw new ConfigError(
      'CODEC_SERVER_TOKEN is not set: every request must carry it as a bearer token; generate one with: openssl rand -hex 32',
    );
  if (token.length < MIN_TOKEN_LENGTH)
    throw new ConfigError(`CODEC_SERVER_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters`);
  const port = Number(env.CODEC_SERVER_PORT ?? DEFAULT_CODEC_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(`CODEC_SERVER_PORT: "${env.CODEC_SERVER_PORT}" is not a port`);
  const origins = (env.CODEC_CORS_ORIGINS ?? DEFAULT_CORS_ORIGINS.join(','))
    .split(',')
    .map((o) => o.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  return { port, host: env.CODEC_SERVER_HOST?.trim() || '127.0.0.1', token, origins, codec };
}

async function main(): Promise<void> {
  const options = codecServerOptionsFromEnv();
  const codec = await startCodecServer(options);
  log.info({ url: codec.url, origins: options.origins }, 'codec server listening');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await codec.close();
  log.info('codec server stopped');
}

if (require.main === module) {
  const early = serviceArgs(SERVICE);
  if (early !== undefined) process.exitCode = early;
  else
    main().catch((err) => {
      if (err instanceof ConfigError) console.error(err.message);
      else log.fatal({ err }, 'codec server failed');
      process.exit(1);
    });
}
