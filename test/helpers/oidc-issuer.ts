import { randomBytes, randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  type CryptoKey,
  type JWK,
  type JWTHeaderParameters,
  SignJWT,
  exportJWK,
  generateKeyPair,
} from 'jose';

/**
 * A tiny OpenID Provider on 127.0.0.1:0 for tests: discovery, JWKS, a client_credentials token
 * endpoint, and signing helpers for SETs (RFC 8417) and back-channel logout tokens. Keys are
 * fresh per instance (ES256, plus RS256 unless disabled).
 */

export interface OidcIssuerOptions {
  /** client_id -> client_secret accepted by `/token` (default `{ "tokenwatch": "s3cret" }`). */
  clients?: Record<string, string>;
  /** Also publish an RS256 key (default true). */
  rs256?: boolean;
  /** `expires_in` of issued access tokens (default 300). */
  tokenTtlSec?: number;
}

export interface SignOptions {
  /** Sign with another key (e.g. one the JWKS does not hold). */
  privateKey?: CryptoKey;
}

export interface IssuedToken {
  accessToken: string;
  clientId: string;
  scope: string | undefined;
}

export interface OidcIssuer {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly es256: { kid: string; privateKey: CryptoKey; publicJwk: JWK };
  readonly rs256: { kid: string; privateKey: CryptoKey; publicJwk: JWK } | undefined;
  /** Access tokens handed out by `/token`, oldest first. */
  readonly issuedTokens: readonly IssuedToken[];
  /**
   * Members written over both discovery documents (OIDC and SSF), e.g. a hostile `jwks_uri` or
   * `token_endpoint`; delete a member to serve the genuine value again.
   */
  readonly metadata: Record<string, unknown>;
  /** Path -> `Location`: GETs of these paths are answered 302 (a hostile issuer's redirects). */
  readonly redirects: Record<string, string>;
  /**
   * A SET: header defaults `{alg:"ES256", kid, typ:"secevent+jwt"}`, claims default `iss`, `iat`
   * (now) and a random `jti`. Claims or header fields set to `undefined` are removed.
   */
  signSet(
    claims: Record<string, unknown>,
    header?: Record<string, unknown>,
    opts?: SignOptions,
  ): Promise<string>;
  /**
   * A logout token: header defaults `{alg:"ES256", kid, typ:"logout+jwt"}`, claims default `iss`,
   * `iat`, `exp` (+120 s), random `jti` and the back-channel logout `events` member.
   */
  signLogoutToken(
    claims: Record<string, unknown>,
    header?: Record<string, unknown>,
    opts?: SignOptions,
  ): Promise<string>;
  /** Any JWT with the given header (alg/kid default to the ES256 key) and claims as given. */
  signJwt(
    claims: Record<string, unknown>,
    header?: Record<string, unknown>,
    opts?: SignOptions,
  ): Promise<string>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** An unsigned (`alg: none`) compact JWT, for negative tests. */
export function unsignedJwt(
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', ...header })}.${b64(claims)}.`;
}

export async function startOidcIssuer(options: OidcIssuerOptions = {}): Promise<OidcIssuer> {
  const clients = options.clients ?? { tokenwatch: 's3cret' };
  const ttl = options.tokenTtlSec ?? 300;
  const es = await makeKey('ES256');
  const rs = options.rs256 === false ? undefined : await makeKey('RS256');
  const issuedTokens: IssuedToken[] = [];
  const metadata: Record<string, unknown> = {};
  const redirects: Record<string, string> = {};

  let base = '';
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      json(res, 500, { error: 'server_error', error_description: String(err) });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', base).pathname;
    const to = redirects[path];
    if (req.method === 'GET' && to !== undefined) {
      res.writeHead(302, { location: to });
      return void res.end();
    }
    if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer: base,
        jwks_uri: `${base}/jwks`,
        token_endpoint: `${base}/token`,
        authorization_endpoint: `${base}/authorize`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: rs ? ['ES256', 'RS256'] : ['ES256'],
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
        ...metadata,
      });
    }
    if (req.method === 'GET' && path === '/.well-known/ssf-configuration') {
      return json(res, 200, {
        spec_version: '1_0',
        issuer: base,
        jwks_uri: `${base}/jwks`,
        delivery_methods_supported: ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'],
        ...metadata,
      });
    }
    if (req.method === 'GET' && path === '/jwks') {
      return json(res, 200, { keys: [es.publicJwk, ...(rs ? [rs.publicJwk] : [])] });
    }
    if (req.method === 'POST' && path === '/token') return token(req, res);
    return json(res, 404, { error: 'not_found' });
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams(await readBody(req, 16 * 1024));
    let clientId = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic?.[1]) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      // RFC 6749 §2.3.1: basic credentials are form-urlencoded first.
      clientId = decodeURIComponent(decoded.slice(0, i));
      secret = decodeURIComponent(decoded.slice(i + 1));
    }
    if (!clientId || clients[clientId] === undefined || clients[clientId] !== secret) {
      return json(res, 401, { error: 'invalid_client' });
    }
    if (form.get('grant_type') !== 'client_credentials') {
      return json(res, 400, { error: 'unsupported_grant_type' });
    }
    const accessToken = randomBytes(24).toString('base64url');
    const scope = form.get('scope') ?? undefined;
    issuedTokens.push({ accessToken, clientId, scope });
    return json(res, 200, {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: ttl,
      ...(scope ? { scope } : {}),
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const sign = async (
    claims: Record<string, unknown>,
    header: Record<string, unknown>,
    opts: SignOptions,
  ): Promise<string> => {
    const h = prune({ alg: 'ES256', kid: es.kid, ...header }) as JWTHeaderParameters;
    const key = opts.privateKey ?? (h.alg === 'RS256' && rs ? rs.privateKey : es.privateKey);
    return new SignJWT(prune(claims)).setProtectedHeader(h).sign(key);
  };
  const nowSec = (): number => Math.floor(Date.now() / 1000);

  let closed: Promise<void> | undefined;
  return {
    issuer: base,
    jwksUri: `${base}/jwks`,
    tokenEndpoint: `${base}/token`,
    es256: es,
    rs256: rs,
    issuedTokens,
    metadata,
    redirects,
    signSet: (claims, header = {}, opts = {}) =>
      sign(
        { iss: base, iat: nowSec(), jti: randomUUID(), ...claims },
        { typ: 'secevent+jwt', ...header },
        opts,
      ),
    signLogoutToken: (claims, header = {}, opts = {}) =>
      sign(
        {
          iss: base,
          iat: nowSec(),
          exp: nowSec() + 120,
          jti: randomUUID(),
          events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
          ...claims,
        },
        { typ: 'logout+jwt', ...header },
        opts,
      ),
    signJwt: (claims, header = {}, opts = {}) => sign(claims, header, opts),
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

async function makeKey(
  alg: 'ES256' | 'RS256',
): Promise<{ kid: string; privateKey: CryptoKey; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const kid = `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, privateKey, publicJwk };
}

function prune(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > max) throw new Error('request body too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}
