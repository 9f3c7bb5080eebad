import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { Logger } from 'pino';
import type { Counter, Registry } from 'prom-client';
import type { Ledger } from '../audit/ledger.js';
import {
  ADMIN_JWT_ALGORITHMS,
  adminAuthConfigured,
  type AdminConfig,
} from '../config/admin-schema.js';
import { TokenwatchError } from '../errors.js';
import { createIssuerKeys } from '../outbound/issuer-keys.js';
import { adminRequestsCounter } from '../metrics/admin-metrics.js';
import { RefusalLimiter } from './refusal-limiter.js';
import { type FingerprintFn, describeRefused, rawQuery } from './refused-request.js';

/** Admin API route groups: the `route` label of `tokenwatch_admin_requests_total`. */
export type AdminRoute = 'findings' | 'audit_records' | 'reports' | 'exports';
export const ADMIN_ROUTES: readonly AdminRoute[] = [
  'findings',
  'audit_records',
  'reports',
  'exports',
];

/**
 * How an admin request ended at the door (bounded label values). `bad_request`: refused before
 * authentication because it carried a credential in its query string (RFC 6750 §2.3 / RFC 9700
 * §4.3.2: URLs end up in logs and histories).
 */
export type AdminOutcome =
  'allowed' | 'unauthenticated' | 'forbidden' | 'unavailable' | 'bad_request';
const OUTCOMES: readonly AdminOutcome[] = [
  'allowed',
  'unauthenticated',
  'forbidden',
  'unavailable',
  'bad_request',
];

/** Query parameters (and export body members) of the admin routes: kept verbatim when allowed. */
export const ADMIN_PARAMS: ReadonlySet<string> = new Set([
  'from',
  'to',
  'format',
  'type',
  'afterSeq',
  'limit',
  'state',
  'rule',
  'since',
]);

/**
 * The shape each route parameter's value must have to be kept verbatim in `admin.access`: what
 * the routes accept (ISO-8601 times or unix ms, the report and export formats, record types and
 * rule names, sequence numbers). Anything else is recorded as a length and a fingerprint.
 */
const TIME =
  /^(\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?|\d{1,16})$/;
const PARAM_SHAPES: Readonly<Record<string, RegExp>> = {
  from: TIME,
  to: TIME,
  since: TIME,
  format: /^(html|json|csv|jsonl|ocsf)$/,
  type: /^[a-z][a-z0-9_]{0,31}(\.[a-z0-9_]{1,48})*(\.\*)?$|^[a-z][a-z0-9_]{0,31}\*$/,
  rule: /^[a-z][a-z0-9_]{0,63}$/,
  state: /^[a-z]{1,16}$/,
  afterSeq: /^\d{1,16}$/,
  limit: /^\d{1,16}$/,
};

/** Query parameter names that carry credentials: such a request is refused (400). */
const CREDENTIAL_PARAMS = new Set([
  'access_token',
  'token',
  'id_token',
  'refresh_token',
  'bearer',
  'authorization',
  'api_key',
  'apikey',
  'key',
  'password',
  'secret',
  'client_secret',
  'jwt',
]);

/** Names kept verbatim in a refused request's record: the routes' own and the credential ones. */
const KNOWN_REFUSED_PARAMS: ReadonlySet<string> = new Set([...ADMIN_PARAMS, ...CREDENTIAL_PARAMS]);

/** A JWS compact serialisation (three base64url parts): a token wherever it appears. */
const JWT_LIKE = /^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*$/;

/**
 * `typ` values never accepted as an access token whatever the allow-list says: a back-channel
 * logout token (OIDC BCL §2.4) or a SET (RFC 8417 §2.3) carries matching `iss`/`aud` claims and
 * would otherwise pass as one (RFC 8725 §3.11: explicit typing against cross-JWT confusion).
 */
export const REFUSED_JWT_TYPES: readonly string[] = ['logout+jwt', 'secevent+jwt'];

/** RFC 7515 §4.1.9: `typ` compared without the `application/` prefix, case-insensitively. */
export function normalizeTyp(typ: unknown): string | undefined {
  if (typeof typ !== 'string') return undefined;
  const t = typ.toLowerCase();
  return t.startsWith('application/') ? t.slice('application/'.length) : t;
}

/** Who made an admin request. Never a credential: a token's configured name or JWT claims. */
export interface Principal {
  /** Token name, JWT `sub` (else `client_id` / `azp`), or `loopback`. */
  name: string;
  method: 'token' | 'oidc' | 'loopback';
  subject?: string;
  clientId?: string;
}

/** RFC 6750 §3: the realm every challenge names. */
const REALM = 'tokenwatch';

/** A refused admin request; `challenge` becomes the WWW-Authenticate header. */
export class AdminAuthError extends TokenwatchError {
  readonly challenge: string | undefined;
  constructor(
    code: 'ERR_UNAUTHORIZED' | 'ERR_FORBIDDEN' | 'ERR_AUTH_UNAVAILABLE' | 'ERR_BAD_REQUEST',
    message: string,
    challenge?: string,
  ) {
    super(code, message);
    this.name = 'AdminAuthError';
    this.challenge = challenge;
  }
}

export interface AdminAuthOptions {
  config: AdminConfig | undefined;
  ledger: Ledger;
  registry: Registry;
  logger: Logger;
  now: () => number;
  /** Key resolver for JWT access tokens (tests); default: discovery of `admin.oidc.issuer`. */
  keys?: JWTVerifyGetKey;
  /** Refusals recorded one by one per source and window (default 20 per 60 s); see RefusalLimiter. */
  refusals?: { perWindow: number; windowMs: number; total?: number };
  /** HMAC fingerprints of what refused callers sent (the app's Fingerprinter). */
  fingerprint: FingerprintFn;
}

const sha256 = (v: string): Buffer => createHash('sha256').update(v, 'utf8').digest();

/** True when `candidate` equals one of `hashes`, comparing every one in constant time. */
function matchHash(candidate: Buffer, hashes: readonly Buffer[]): number {
  let found = -1;
  hashes.forEach((h, i) => {
    if (timingSafeEqual(candidate, h) && found < 0) found = i;
  });
  return found;
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}

/**
 * What an ALLOWED request's record keeps of its query or body: members the routes know, as
 * strings, bounded; any other member only as its name's fingerprint and its value's length (an
 * authenticated caller can still paste a secret into a stray parameter).
 */
function validated(q: unknown, fp: FingerprintFn): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof q !== 'object' || q === null) return out;
  for (const [k, v] of Object.entries(q).slice(0, 16)) {
    const text =
      typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
    if (!ADMIN_PARAMS.has(k)) out[fp(k)] = `length:${text.length}`;
    else if (PARAM_SHAPES[k]?.test(text) === true) out[k] = text;
    // A route parameter whose value is not of its shape (a near-miss credential, a canary): the
    // route refuses it with 400, and the ledger keeps what it keeps of a refused caller's value.
    else out[k] = `invalid length:${text.length} ${fp(text)}`;
  }
  return out;
}

/**
 * Authentication and accounting of the admin API (docs/compliance.md#admin-api):
 * static bearer tokens compared by SHA-256 in constant time, or OAuth access tokens (JWT)
 * verified against the configured issuer's JWKS with a required scope; without either
 * configured, loopback clients only. Every decision is counted, and every admin request is an
 * `admin.access` audit record: an allowed one is committed before the request is served (Vault
 * audit devices fail closed the same way), a refused one is queued.
 */
export class AdminAuth {
  readonly #o: AdminAuthOptions;
  readonly #hashes: Buffer[];
  readonly #names: string[];
  readonly #keys: JWTVerifyGetKey | undefined;
  readonly #metricsHashes: Buffer[];
  readonly #requests: Counter<'route' | 'outcome'>;
  readonly #principals = new WeakMap<FastifyRequest, Principal>();
  readonly #challenges = new WeakMap<FastifyRequest, string>();
  readonly #refusals: RefusalLimiter;
  readonly #sweep: NodeJS.Timeout;

  constructor(o: AdminAuthOptions) {
    this.#o = o;
    const limits = o.refusals ?? { perWindow: 20, windowMs: 60_000 };
    this.#refusals = new RefusalLimiter({
      ...limits,
      maxSources: 10_000,
      now: o.now,
      onSummary: (summary) => {
        this.#o.ledger.append({
          time: o.now(),
          source: 'admin',
          type: 'admin.access_suppressed',
          attrs: { ...summary },
        });
      },
    });
    this.#sweep = setInterval(() => this.#refusals.sweep(), limits.windowMs);
    this.#sweep.unref();
    const a = o.config;
    this.#hashes = (a?.tokens ?? []).map((t) => Buffer.from(t.sha256, 'hex'));
    this.#names = (a?.tokens ?? []).map((t) => t.name);
    this.#metricsHashes = (a?.metrics?.tokenSha256 ?? []).map((h) => Buffer.from(h, 'hex'));
    this.#keys =
      o.keys ??
      (a?.oidc
        ? createIssuerKeys({
            issuer: a.oidc.issuer,
            discovery: a.oidc.discovery,
            jwksUri: a.oidc.jwksUri,
          })
        : undefined);
    this.#requests = adminRequestsCounter(o.registry, [...ADMIN_ROUTES, 'metrics'], OUTCOMES);
  }

  /** Writes the summaries of refusals still only counted (before the ledger closes). */
  close(): void {
    clearInterval(this.#sweep);
    try {
      this.#refusals.flush();
    } catch (err) {
      this.#o.logger.error({ err: (err as Error).message }, 'cannot record suppressed refusals');
    }
  }

  /** True when credentials are required (otherwise loopback clients only). */
  get authenticated(): boolean {
    return adminAuthConfigured(this.#o.config);
  }

  /** Adds the WWW-Authenticate header to refused requests, and guards /metrics when configured. */
  register(app: FastifyInstance): void {
    app.addHook('onSend', (request, reply, payload, done) => {
      const challenge = this.#challenges.get(request);
      if (challenge !== undefined && reply.statusCode >= 400)
        reply.header('www-authenticate', challenge);
      done(null, payload);
    });
    if (this.#o.config?.metrics) {
      app.addHook('onRequest', (request, reply, done) => {
        if (request.url.split('?')[0] !== '/metrics') return done();
        if (this.#metricsAllowed(request)) {
          this.#requests.inc({ route: 'metrics', outcome: 'allowed' });
          return done();
        }
        this.#requests.inc({ route: 'metrics', outcome: 'unauthenticated' });
        this.#refuseMetrics(reply); // answered here: done() is not called
      });
    }
  }

  /** The guard of one route group: resolves when the request may proceed, throws otherwise. */
  guard(route: AdminRoute): (request: FastifyRequest) => Promise<void> {
    return (request) => this.check(route, request);
  }

  /** Who the guard let through (undefined before the guard ran). */
  principalOf(request: FastifyRequest): Principal | undefined {
    return this.#principals.get(request);
  }

  /**
   * An `onRequest` hook: refuses a credential in the query string, and a missing or malformed
   * Authorization header, before the body is read (the full check runs in the handler).
   */
  precheck(route: AdminRoute): (request: FastifyRequest) => Promise<void> {
    return async (request) => {
      try {
        this.#refuseQueryCredentials(request);
        if (adminAuthConfigured(this.#o.config)) bearerOf(request.headers.authorization);
      } catch (err) {
        if (err instanceof AdminAuthError) this.#refused(route, request, err);
        throw err;
      }
      return Promise.resolve();
    };
  }

  async check(route: AdminRoute, request: FastifyRequest): Promise<void> {
    let principal: Principal;
    try {
      this.#refuseQueryCredentials(request);
      principal = await this.#authenticate(request);
    } catch (err) {
      if (err instanceof AdminAuthError) this.#refused(route, request, err);
      throw err;
    }
    try {
      await this.#o.ledger.appendDurable([this.#accessRecord(request, principal, 'allowed')]);
    } catch (err) {
      // Fail closed: an admin read that cannot be recorded is not served.
      this.#requests.inc({ route, outcome: 'unavailable' });
      throw err;
    }
    this.#requests.inc({ route, outcome: 'allowed' });
    this.#principals.set(request, principal);
  }

  #refused(route: AdminRoute, request: FastifyRequest, err: AdminAuthError): void {
    const outcome: AdminOutcome =
      err.status === 400
        ? 'bad_request'
        : err.status === 401
          ? 'unauthenticated'
          : err.status === 403
            ? 'forbidden'
            : 'unavailable';
    this.#requests.inc({ route, outcome });
    if (err.challenge !== undefined) this.#challenges.set(request, err.challenge);
    this.#record(request, outcome, err.message);
  }

  /**
   * RFC 6750 §2.3 allows `access_token` in the query; we do not (RFC 9700 §4.3.2): URLs land in
   * proxy logs and histories. A credential-named parameter, a JWT-shaped value or the value of a
   * configured admin token anywhere in the query is refused with 400, before authentication.
   */
  #refuseQueryCredentials(request: FastifyRequest): void {
    const search = rawQuery(request.url);
    if (search === '') return;
    for (const [k, v] of new URLSearchParams(search)) {
      const named = CREDENTIAL_PARAMS.has(k.toLowerCase());
      const shaped = JWT_LIKE.test(v) || JWT_LIKE.test(k);
      const known =
        this.#hashes.length > 0 &&
        (matchHash(sha256(v), this.#hashes) >= 0 || matchHash(sha256(k), this.#hashes) >= 0);
      if (named || shaped || known) {
        throw new AdminAuthError(
          'ERR_BAD_REQUEST',
          'credentials are not accepted in the query string; send Authorization: Bearer',
        );
      }
    }
  }

  async #authenticate(request: FastifyRequest): Promise<Principal> {
    const a = this.#o.config;
    if (!adminAuthConfigured(a)) {
      const ip = request.socket.remoteAddress ?? '';
      if (!isLoopback(ip)) {
        throw new AdminAuthError(
          'ERR_FORBIDDEN',
          'the admin API is only served to loopback clients until admin authentication is configured',
        );
      }
      return { name: 'loopback', method: 'loopback' };
    }
    const token = bearerOf(request.headers.authorization);
    const i = matchHash(sha256(token), this.#hashes);
    if (i >= 0) return { name: this.#names[i] ?? 'token', method: 'token' };
    if (!a.oidc || !this.#keys || token.split('.').length !== 3)
      throw invalidToken('unknown token');
    const payload = await this.#verifyJwt(token, a.oidc);
    const scopes = scopesOf(payload);
    const subject = typeof payload.sub === 'string' ? payload.sub : undefined;
    const clientId =
      typeof payload.client_id === 'string'
        ? payload.client_id
        : typeof payload.azp === 'string'
          ? payload.azp
          : undefined;
    if (!scopes.includes(a.oidc.requiredScope)) {
      throw new AdminAuthError(
        'ERR_FORBIDDEN',
        `the access token lacks the scope ${a.oidc.requiredScope}`,
        `Bearer realm="${REALM}", error="insufficient_scope", scope="${a.oidc.requiredScope}"`,
      );
    }
    return { name: subject ?? clientId ?? 'unknown', method: 'oidc', subject, clientId };
  }

  async #verifyJwt(token: string, oidc: NonNullable<AdminConfig['oidc']>): Promise<JWTPayload> {
    // RFC 9068 §4: the header typ is checked before any key is fetched.
    let typ: string | undefined;
    try {
      typ = normalizeTyp(decodeProtectedHeader(token).typ);
    } catch {
      throw invalidToken('the access token does not verify');
    }
    const allowed = oidc.acceptedTypes.map((t) => normalizeTyp(t));
    if (typ === undefined || REFUSED_JWT_TYPES.includes(typ) || !allowed.includes(typ))
      throw invalidToken('the token type (typ) is not accepted for access tokens');
    try {
      const { payload } = await jwtVerify(token, this.#keys as JWTVerifyGetKey, {
        issuer: oidc.issuer,
        audience: oidc.audience,
        algorithms: oidc.algorithms ?? [...ADMIN_JWT_ALGORITHMS],
        clockTolerance: oidc.clockToleranceSeconds,
        requiredClaims: ['exp'],
        currentDate: new Date(this.#o.now()),
      });
      // A SET or logout token signed by the same issuer is not an access token, whatever typ.
      if (payload.events !== undefined || payload.nonce !== undefined)
        throw invalidToken('the token is not an access token');
      return payload;
    } catch (err) {
      if (err instanceof AdminAuthError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw invalidToken('the access token expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed)
        throw invalidToken(`the access token's ${err.claim} claim is not accepted`);
      if (
        err instanceof joseErrors.JWSSignatureVerificationFailed ||
        err instanceof joseErrors.JWKSNoMatchingKey ||
        err instanceof joseErrors.JWKSMultipleMatchingKeys ||
        err instanceof joseErrors.JWSInvalid ||
        err instanceof joseErrors.JWTInvalid ||
        err instanceof joseErrors.JOSEAlgNotAllowed ||
        err instanceof joseErrors.JOSENotSupported
      ) {
        throw invalidToken('the access token does not verify');
      }
      this.#o.logger.warn(
        { err: (err as Error).message },
        'admin API: identity provider keys unavailable',
      );
      throw new AdminAuthError(
        'ERR_AUTH_UNAVAILABLE',
        'the identity provider could not be reached to verify the token; retry later',
      );
    }
  }

  #metricsAllowed(request: FastifyRequest): boolean {
    const m = this.#o.config?.metrics;
    const header = request.headers.authorization ?? '';
    const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (bearer?.[1] && matchHash(sha256(bearer[1]), this.#metricsHashes) >= 0) return true;
    const basic = /^Basic[ ]+([A-Za-z0-9+/]+=*)\s*$/i.exec(header);
    if (!basic?.[1] || m?.username === undefined || m.passwordSha256 === undefined) return false;
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const userOk = timingSafeEqual(sha256(decoded.slice(0, colon)), sha256(m.username));
    const passOk = timingSafeEqual(
      sha256(decoded.slice(colon + 1)),
      Buffer.from(m.passwordSha256, 'hex'),
    );
    return userOk && passOk;
  }

  #refuseMetrics(reply: FastifyReply): void {
    const m = this.#o.config?.metrics;
    const challenges = [
      ...(m?.username !== undefined ? [`Basic realm="${REALM}", charset="UTF-8"`] : []),
      ...(this.#metricsHashes.length > 0 ? [`Bearer realm="${REALM}"`] : []),
    ];
    void reply
      .code(401)
      .header('www-authenticate', challenges.join(', '))
      .send({ error: { code: 'ERR_UNAUTHORIZED', message: 'metrics require credentials' } });
  }

  #record(request: FastifyRequest, outcome: AdminOutcome, reason: string): void {
    // A flood of refusals is recorded one by one up to a bound per source, then in aggregate.
    if (!this.#refusals.admit(request.socket.remoteAddress ?? 'unknown', outcome)) return;
    try {
      // A refused caller's request is kept as names, lengths and fingerprints only.
      const described = describeRefused(request, {
        fingerprint: this.#o.fingerprint,
        knownParams: KNOWN_REFUSED_PARAMS,
      });
      this.#o.ledger.append({
        time: this.#o.now(),
        source: 'admin',
        type: 'admin.access',
        attrs: { ...described, outcome, reason },
      });
    } catch (err) {
      this.#o.logger.error(
        { err: (err as Error).message },
        'cannot record a refused admin request',
      );
    }
  }

  #accessRecord(request: FastifyRequest, principal: Principal, outcome: AdminOutcome) {
    const fp = this.#o.fingerprint;
    const query = validated(request.query, fp);
    const body = request.method === 'POST' ? validated(request.body, fp) : {};
    const from = query.from ?? body.from;
    const to = query.to ?? body.to;
    return {
      time: this.#o.now(),
      source: 'admin' as const,
      type: 'admin.access',
      attrs: {
        principal: principal.name,
        authMethod: principal.method,
        subject: principal.subject,
        clientId: principal.clientId,
        method: request.method,
        route: request.routeOptions.url ?? 'unknown',
        query,
        body: Object.keys(body).length > 0 ? body : undefined,
        range: from !== undefined || to !== undefined ? { from, to } : undefined,
        outcome,
        remoteAddress: request.socket.remoteAddress,
      },
    };
  }
}

/**
 * The bearer token of an Authorization header (RFC 6750 §2.1), or a 401: without credentials (or
 * with another scheme) a challenge without an error code (§3.1), malformed `invalid_token`.
 */
function bearerOf(header: string | undefined): string {
  if (!header || !/^bearer\b/i.test(header)) {
    throw new AdminAuthError(
      'ERR_UNAUTHORIZED',
      'admin API credentials required (Authorization: Bearer)',
      `Bearer realm="${REALM}"`,
    );
  }
  const token = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header)?.[1];
  if (!token) throw invalidToken('malformed bearer token');
  return token;
}

function invalidToken(description: string): AdminAuthError {
  return new AdminAuthError(
    'ERR_UNAUTHORIZED',
    description,
    `Bearer realm="${REALM}", error="invalid_token", error_description="${description.replace(/["\\]/g, '')}"`,
  );
}

/** Scopes of an access token: `scope` (RFC 8693 / RFC 9068, space separated) or `scp`. */
function scopesOf(p: JWTPayload): string[] {
  const out: string[] = [];
  if (typeof p.scope === 'string') out.push(...p.scope.split(' ').filter(Boolean));
  const scp = p.scp;
  if (typeof scp === 'string') out.push(...scp.split(' ').filter(Boolean));
  if (Array.isArray(scp)) out.push(...scp.filter((s): s is string => typeof s === 'string'));
  return out;
}
