import type { FastifyRequest } from 'fastify';

/**
 * What the ledger keeps of a request from a refused or unauthenticated party (issue #17,
 * finding 3): route, method, parameter and header NAMES, value lengths, HMAC fingerprints of
 * values, source address and reason; never a value. SOC 2 CC7.2 wants refused access recorded;
 * CC6.1 / CC6.7 forbid keeping the credential or personal data an attacker chose to send, and a
 * record written from a stranger's bytes would put whatever they sent into every export.
 *
 * What is trusted: nothing of the request. A name is itself attacker-chosen text (`?<token>` has
 * the token as its name), so names are kept verbatim only when they are in the route's known
 * vocabulary (or are well-known header names); any other name is replaced by its fingerprint.
 */

/** Turns a secret or attacker-chosen string into `hmac-sha256:<keyId>:<hex>`. */
export type FingerprintFn = (value: string) => string;

/** One query parameter of a refused request. */
export interface RefusedParam {
  /** The name when known to the route, else its fingerprint. */
  name: string;
  length: number;
  fingerprint: string;
}

/** The description of a refused request stored in its audit record. */
export interface RefusedRequest {
  method: string;
  /** The route pattern (never the raw URL: its path parameters are the caller's text). */
  route: string;
  params: RefusedParam[];
  /** Header name (or its fingerprint) -> value length. */
  headers: Record<string, number>;
  /** Fingerprints of credential-bearing header values (Authorization, signature, secret). */
  credentials: Record<string, string>;
  /** Bytes of body read (or declared when it was not read). */
  bodyLength: number | null;
  /** Fingerprint of the body bytes when they were read. */
  bodyFingerprint: string | null;
  remoteAddress: string;
}

/** Header names kept verbatim (RFC 9110 and the providers' documented headers). */
const KNOWN_HEADERS = new Set([
  'accept',
  'accept-encoding',
  'accept-language',
  'authorization',
  'cache-control',
  'connection',
  'content-encoding',
  'content-length',
  'content-type',
  'cookie',
  'date',
  'expect',
  'forwarded',
  'host',
  'if-none-match',
  'keep-alive',
  'origin',
  'pragma',
  'referer',
  'te',
  'transfer-encoding',
  'user-agent',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-keycloak-signature',
  'x-okta-verification-challenge',
  'x-request-id',
]);

/** Headers whose values are credentials: fingerprinted so an auditor can match a known leak. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'x-keycloak-signature']);

const MAX_PARAMS = 16;
const MAX_HEADERS = 32;

export interface DescribeOptions {
  fingerprint: FingerprintFn;
  /** Query parameter names of this route (kept verbatim). */
  knownParams?: ReadonlySet<string>;
  /** Extra header names carrying a credential (e.g. Okta's configured secret header). */
  credentialHeaders?: readonly string[];
  /** Body bytes when they were read. */
  body?: Buffer | undefined;
}

/** The {@link RefusedRequest} of `request`: names, lengths and fingerprints only. */
export function describeRefused(request: FastifyRequest, o: DescribeOptions): RefusedRequest {
  const fp = o.fingerprint;
  const name = (n: string, known: boolean): string => (known ? n : fp(n));
  const params: RefusedParam[] = [];
  const search = rawQuery(request.url);
  if (search !== '') {
    for (const [k, v] of [...new URLSearchParams(search)].slice(0, MAX_PARAMS)) {
      params.push({
        name: name(k, o.knownParams?.has(k) ?? false),
        length: v.length,
        fingerprint: fp(v),
      });
    }
  }
  const credentialHeaders = new Set([...CREDENTIAL_HEADERS, ...(o.credentialHeaders ?? [])]);
  const headers: Record<string, number> = {};
  const credentials: Record<string, string> = {};
  const raw = request.raw.rawHeaders;
  for (let i = 0; i + 1 < raw.length && i / 2 < MAX_HEADERS; i += 2) {
    const h = (raw[i] ?? '').toLowerCase();
    const v = raw[i + 1] ?? '';
    const known = KNOWN_HEADERS.has(h) || credentialHeaders.has(h);
    const key = name(h, known);
    headers[key] = (headers[key] ?? 0) + v.length;
    if (credentialHeaders.has(h)) credentials[h] = fp(v);
  }
  const declared = Number(request.headers['content-length']);
  return {
    method: request.method.slice(0, 16),
    route: request.routeOptions.url ?? 'unknown',
    params,
    headers,
    credentials,
    bodyLength: o.body ? o.body.length : Number.isSafeInteger(declared) ? declared : null,
    bodyFingerprint: o.body && o.body.length > 0 ? fp(o.body.toString('latin1')) : null,
    remoteAddress: request.socket.remoteAddress ?? 'unknown',
  };
}

/** The query part of a request target, without the `?`. */
export function rawQuery(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q + 1);
}
