import { type JWTVerifyGetKey, createRemoteJWKSet } from 'jose';
import { None, allowInsecureRequests, discovery } from 'openid-client';

import { secureUrlProblem } from '../config/providers-schema.js';
import { TokenwatchError } from '../errors.js';
import { readBounded, withTimeout } from './bounded-fetch.js';
import { confineUrl } from './origin-guard.js';

/** Where an issuer's signing keys are looked up. */
export interface IssuerKeysOptions {
  issuer: string;
  /**
   * `ssf`: SSF 1.0 §7.2 transmitter metadata (`/.well-known/ssf-configuration`); `oidc` / `oauth2`:
   * openid-client discovery (OpenID Connect Discovery 1.0 / RFC 8414).
   */
  discovery: 'ssf' | 'oidc' | 'oauth2';
  /** Use this JWKS and skip discovery. */
  jwksUri?: string | undefined;
  /** Client id handed to openid-client discovery (only named, never authenticated). */
  clientId?: string | undefined;
  timeoutMs?: number;
}

/** After a failed discovery, wait this long before trying again (each SET would otherwise). */
const RETRY_AFTER_MS = 5_000;
const MAX_METADATA_BYTES = 256 * 1024;

/**
 * A key resolver for `jwtVerify` that finds the issuer's JWKS through its metadata on first use,
 * then caches it (jose refetches on an unknown `kid`, at most every 30 s). Discovery failures
 * surface as plain errors, which the JWT verifiers classify as "keys unavailable" (503, retry)
 * rather than a sender fault.
 */
export function createIssuerKeys(options: IssuerKeysOptions): JWTVerifyGetKey {
  const timeoutMs = options.timeoutMs ?? 5_000;
  let keys: Promise<JWTVerifyGetKey> | undefined;
  let failedAt = -Infinity;

  const resolve = async (): Promise<JWTVerifyGetKey> => {
    const uri = options.jwksUri ?? (await discoverJwksUri(options, timeoutMs));
    const problem = secureUrlProblem(uri);
    if (problem) throw new Error(`jwks_uri ${problem}`);
    // A discovered jwks_uri is the metadata's word, not ours: it must be on the issuer's origin
    // (a JWKS elsewhere is configured explicitly as jwksUri). Whoever could point it at their own
    // host would choose the keys our tokens are verified with.
    if (options.jwksUri === undefined)
      confineUrl(uri, { base: new URL(new URL(options.issuer).origin) }, 'offsite_url');
    return createRemoteJWKSet(new URL(uri), { timeoutDuration: timeoutMs });
  };

  return async (header, token) => {
    if (!keys) {
      if (Date.now() - failedAt < RETRY_AFTER_MS)
        throw new Error('issuer discovery failed recently');
      keys = resolve();
      keys.catch(() => {
        keys = undefined;
        failedAt = Date.now();
      });
    }
    const get = await keys;
    return get(header, token);
  };
}

async function discoverJwksUri(o: IssuerKeysOptions, timeoutMs: number): Promise<string> {
  const issuer = new URL(o.issuer);
  if (o.discovery === 'ssf') return ssfJwksUri(o.issuer, timeoutMs);
  const insecure = issuer.protocol === 'http:';
  const config = await discovery(issuer, o.clientId ?? 'tokenwatch', undefined, None(), {
    algorithm: o.discovery,
    timeout: Math.ceil(timeoutMs / 1000),
    // Plain http only reaches here for loopback issuers (tests); the schema refuses the rest.
    ...(insecure ? { execute: [allowInsecureRequests] } : {}),
  });
  const uri = config.serverMetadata().jwks_uri;
  if (!uri) throw new Error('issuer metadata has no jwks_uri');
  return uri;
}

/** SSF 1.0 §7.2: the well-known segment goes between the host and the issuer's path. */
async function ssfJwksUri(issuer: string, timeoutMs: number): Promise<string> {
  const u = new URL(issuer);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  const url = `${u.origin}/.well-known/ssf-configuration${path}`;
  const res = await fetch(url, {
    headers: { accept: 'application/json' },
    redirect: 'error',
    signal: withTimeout(undefined, timeoutMs),
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`SSF metadata: HTTP ${res.status}`);
  }
  const parsed: unknown = JSON.parse(await readBounded(res, MAX_METADATA_BYTES));
  const doc = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as {
    issuer?: unknown;
    jwks_uri?: unknown;
  };
  // §7.2.1: the issuer in the metadata MUST be identical to the one it was fetched for.
  if (doc.issuer !== issuer) {
    throw new TokenwatchError('ERR_PROVIDER_KEYS_UNAVAILABLE', 'SSF metadata issuer mismatch');
  }
  if (typeof doc.jwks_uri !== 'string') throw new Error('SSF metadata has no jwks_uri');
  return doc.jwks_uri;
}
