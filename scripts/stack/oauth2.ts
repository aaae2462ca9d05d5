// A local OAuth2 authorization server for tests, the demo and manual trials of OAuth2 IMAP
// accounts: oauth2-mock-server (npm) with a real token lifecycle added through its hooks.
//   - POST /token serves the refresh_token grant only (what mailroom uses): the client must be
//     registered (client secret checked when it has one), the refresh token must have been
//     granted and not revoked, else 400 invalid_grant / 401 invalid_client as RFC 6749 says.
//     Every answer carries a new refresh token (rotation, as Microsoft does); earlier ones stay
//     valid until revoked.
//   - GET /userinfo with "Authorization: Bearer <access token>" answers 200 {sub, email,
//     active} for a token it issued that has neither expired nor been revoked, 401 otherwise.
//     The same with the token in the query (?access_token=), for token validation. Dovecot's
//     oauth2 passdb validates every IMAP login against it (tokeninfo_url, introspection_url).
//   - grant(user) stands in for a user's consent (the authorization code flow in a browser):
//     it returns a fresh refresh token for that mailbox; revoke(user) is "sign out everywhere".
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface OAuth2ClientRegistration {
  clientId: string;
  /** Unset for a public client. */
  clientSecret?: string;
}

export interface LocalOAuth2Options {
  host?: string;
  port?: number;
  clients: OAuth2ClientRegistration[];
  /** Lifetime of access tokens in seconds (default 3600). */
  accessTokenSeconds?: number;
}

export interface LocalOAuth2Server {
  issuer: string;
  tokenUrl: string;
  /** Dovecot's introspection_url (introspection_mode = auth). */
  userinfoUrl: string;
  /** A refresh token for `user`, as the consent flow would hand to the app. */
  grant(user: string, clientId?: string): string;
  /** Revokes every refresh and access token of `user`. */
  revoke(user: string): void;
  accessTokenSeconds: number;
  /** Every token it issued (tests check that none shows up in histories or logs). */
  issued: { accessTokens: string[]; refreshTokens: string[] };
  stats: { refreshes: number; refused: number; introspections: number; introspectionsRefused: number };
  stop(): Promise<void>;
}

interface Grant {
  user: string;
  clientId: string;
  revoked: boolean;
}

interface AccessGrant extends Grant {
  expiresAt: number;
}

function clientCredentials(req: IncomingMessage & { body?: Record<string, unknown> }): {
  id?: string;
  secret?: string;
} {
  const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (basic) {
    const [id, secret] = Buffer.from(basic[1], 'base64').toString('utf8').split(':');
    return { id: decodeURIComponent(id ?? ''), secret: decodeURIComponent(secret ?? '') };
  }
  const b = req.body ?? {};
  return {
    id: typeof b.client_id === 'string' ? b.client_id : undefined,
    secret: typeof b.client_secret === 'string' ? b.client_secret : undefined,
  };
}

export async function startLocalOAuth2Server(options: LocalOAuth2Options): Promise<LocalOAuth2Server> {
  // oauth2-mock-server is an ES module; a dynamic import keeps this file CommonJS-compatible.
  const { OAuth2Server } = await import('oauth2-mock-server');
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  const refreshTokens = new Map<string, Grant>();
  const accessTokens = new Map<string, AccessGrant>();
  const clients = new Map(options.clients.map((c) => [c.clientId, c]));
  const issued = { accessTokens: [] as string[], refreshTokens: [] as string[] };
  const stats = { refreshes: 0, refused: 0, introspections: 0, introspectionsRefused: 0 };
  const self = { accessTokenSeconds: options.accessTokenSeconds ?? 3600 };

  const mint = (user: string, clientId: string): string => {
    const token = `rt-${randomBytes(24).toString('base64url')}`;
    refreshTokens.set(token, { user, clientId, revoked: false });
    issued.refreshTokens.push(token);
    return token;
  };

  // The grant behind this token request, when it is a valid one.
  const grantOf = (req: IncomingMessage & { body?: Record<string, unknown> }): Grant | undefined => {
    const token = req.body?.refresh_token;
    const grant = typeof token === 'string' ? refreshTokens.get(token) : undefined;
    return grant && !grant.revoked ? grant : undefined;
  };

  server.service.on(
    'beforeTokenSigning',
    (token: { payload: Record<string, unknown> }, req: IncomingMessage & { body?: Record<string, unknown> }) => {
      const grant = grantOf(req);
      if (!grant) return;
      token.payload.sub = grant.user;
      token.payload.email = grant.user;
      token.payload.exp = Math.floor(Date.now() / 1000) + self.accessTokenSeconds;
    },
  );

  server.service.on(
    'beforeResponse',
    (
      response: { statusCode: number; body: Record<string, unknown> | '' },
      req: IncomingMessage & { body?: Record<string, unknown> },
    ) => {
      const refuse = (statusCode: number, error: string, description: string) => {
        stats.refused++;
        response.statusCode = statusCode;
        response.body = { error, error_description: description };
      };
      const { id, secret } = clientCredentials(req);
      const client = id ? clients.get(id) : undefined;
      if (!client || (client.clientSecret !== undefined && client.clientSecret !== secret))
        return refuse(401, 'invalid_client', 'The OAuth client was not found or its secret is wrong.');
      if (req.body?.grant_type !== 'refresh_token')
        return refuse(400, 'unsupported_grant_type', 'Only the refresh_token grant is served here.');
      const grant = grantOf(req);
      if (!grant) return refuse(400, 'invalid_grant', 'Token has been expired or revoked.');
      if (grant.clientId !== client.clientId)
        return refuse(400, 'invalid_grant', 'The refresh token was issued to another client.');
      if (typeof response.body !== 'object') return;
      const access = response.body.access_token as string;
      accessTokens.set(access, { ...grant, expiresAt: Date.now() + self.accessTokenSeconds * 1000 });
      issued.accessTokens.push(access);
      stats.refreshes++;
      response.body.expires_in = self.accessTokenSeconds;
      response.body.refresh_token = mint(grant.user, grant.clientId);
      delete response.body.id_token;
    },
  );

  server.service.on(
    'beforeUserinfo',
    (response: { statusCode: number; body: Record<string, unknown> | '' }, req: IncomingMessage) => {
      stats.introspections++;
      // Dovecot's token validation appends the token to the URL (tokeninfo_url); introspection
      // (introspection_mode = auth) sends it as a bearer token.
      const bearer =
        /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ??
        new URL(req.url ?? '/', 'http://x').searchParams.get('access_token') ??
        undefined;
      const grant = bearer ? accessTokens.get(bearer) : undefined;
      if (!grant || grant.revoked || grant.expiresAt <= Date.now()) {
        stats.introspectionsRefused++;
        response.statusCode = 401;
        response.body = {
          error: 'invalid_token',
          error_description: !grant ? 'unknown token' : grant.revoked ? 'revoked' : 'expired',
        };
        return;
      }
      response.body = { sub: grant.user, email: grant.user, active: true, exp: Math.floor(grant.expiresAt / 1000) };
    },
  );

  const host = options.host ?? '127.0.0.1';
  await server.start(options.port ?? 0, host);
  const issuer = `http://${host}:${server.address().port}`;
  server.issuer.url = issuer;
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    userinfoUrl: `${issuer}/userinfo`,
    grant(user: string, clientId = options.clients[0].clientId) {
      if (!clients.has(clientId)) throw new Error(`unknown OAuth2 client ${clientId}`);
      return mint(user, clientId);
    },
    revoke(user: string) {
      for (const g of refreshTokens.values()) if (g.user === user) g.revoked = true;
      for (const g of accessTokens.values()) if (g.user === user) g.revoked = true;
    },
    get accessTokenSeconds() {
      return self.accessTokenSeconds;
    },
    set accessTokenSeconds(n: number) {
      self.accessTokenSeconds = n;
    },
    issued,
    stats,
    stop: () => server.stop(),
  };
}
