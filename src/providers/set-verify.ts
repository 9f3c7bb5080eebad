import {
  type JWTPayload,
  type JWTVerifyGetKey,
  type ProtectedHeaderParameters,
  jwtVerify,
} from 'jose';

import type { TokenwatchError } from '../errors.js';
import { isTokenwatchError } from '../errors.js';
import {
  DEFAULT_JWT_ALGORITHMS,
  type JwtFailure,
  type SetErrorCode,
  claimFailure,
  classifyJoseError,
  guardKeyResolver,
  malformedFailure,
  readHeader,
  toError,
} from './jwt-errors.js';
import { isRecord } from './payload-reader.js';

export type { SetErrorCode } from './jwt-errors.js';

/**
 * Verification of Security Event Tokens (RFC 8417) as delivered by push (RFC 8935) or poll
 * (RFC 8936) under the OpenID Shared Signals Framework. Replay detection is the caller's job:
 * it checks the returned `jti` against its store.
 */

/** Options for {@link verifySet}. */
export interface SetVerifyOptions {
  /** Expected `iss` (the transmitter's issuer). */
  issuer: string | readonly string[];
  /** This receiver's audience value(s); the SET's `aud` must contain one. */
  audience: string | readonly string[];
  /** Seconds of clock skew tolerated for `iat` in the future and for `exp`/`nbf` (default 60). */
  clockToleranceSec?: number;
  /** Refuse SETs whose `iat` is older than this many seconds (default: no limit). */
  maxAgeSec?: number;
  /** Accepted JWS algorithms (default: asymmetric only). */
  algorithms?: readonly string[];
  /** Longest compact token accepted, in characters (default 65 536). */
  maxTokenLength?: number;
  /** Clock (unix ms), default `Date.now`. */
  now?: () => number;
}

/** A SET whose signature, `typ`, `iss`, `aud`, `iat`, `jti` and `events` were checked. */
export interface VerifiedSet {
  jti: string;
  iss: string;
  aud: string[];
  /** Issued-at (NumericDate, seconds). */
  iat: number;
  /** Event type URI to event payload; at least one member, every value an object. */
  events: Record<string, Record<string, unknown>>;
  payload: JWTPayload;
  header: ProtectedHeaderParameters;
}

export const SET_TYP = 'secevent+jwt';

/**
 * Verifies a compact-serialized SET against `keys` (e.g. `createRemoteJWKSet(jwks_uri)`).
 *
 * @throws TokenwatchError whose `details.err` is the RFC 8935 error code (`invalid_request`,
 *   `invalid_key`, `invalid_issuer`, `invalid_audience`, `authentication_failed`) and
 *   `details.reason` a stable {@link JwtFailureReason}; `code` is ERR_WEBHOOK_MALFORMED,
 *   ERR_WEBHOOK_TOKEN_INVALID, ERR_WEBHOOK_SIGNATURE or ERR_WEBHOOK_TOO_LARGE (status 400/413),
 *   or ERR_PROVIDER_KEYS_UNAVAILABLE (503, no `err`: the transmitter should retry).
 */
export async function verifySet(
  token: string,
  keys: JWTVerifyGetKey,
  options: SetVerifyOptions,
): Promise<VerifiedSet> {
  const now = options.now ?? Date.now;
  const skew = options.clockToleranceSec ?? 60;
  const algorithms = options.algorithms ?? DEFAULT_JWT_ALGORITHMS;
  const maxLength = options.maxTokenLength ?? 65_536;

  if (typeof token !== 'string' || token.length === 0) {
    throw setError(malformedFailure('empty SET'));
  }
  if (token.length > maxLength) {
    throw setError({
      code: 'ERR_WEBHOOK_TOO_LARGE',
      reason: 'too_large',
      setErr: 'invalid_request',
      message: `SET longer than ${maxLength} characters`,
    });
  }
  const read = readHeader(token.trim(), algorithms);
  if ('failure' in read) throw setError(read.failure);
  const { header } = read;

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token.trim(), guardKeyResolver(keys), {
      issuer: toArray(options.issuer),
      audience: toArray(options.audience),
      // RFC 8417 §2.3: explicit typing "secevent+jwt" keeps SETs from being confused with
      // other JWTs (jose also accepts "application/secevent+jwt").
      typ: SET_TYP,
      algorithms: [...algorithms],
      requiredClaims: ['jti', 'iat', 'events'],
      clockTolerance: skew,
      ...(options.maxAgeSec !== undefined ? { maxTokenAge: options.maxAgeSec } : {}),
      currentDate: new Date(now()),
    }));
  } catch (err) {
    const f = classifyJoseError(err);
    if (f) throw setError(f, err);
    throw err;
  }

  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) {
    throw setError(claimFailure('invalid_claim', 'jti must be a string of 1..256 chars', 'jti'));
  }
  const iat = payload.iat;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) {
    throw setError(claimFailure('invalid_claim', 'iat must be a NumericDate', 'iat'));
  }
  if (iat > now() / 1000 + skew) {
    throw setError(claimFailure('iat_in_future', 'iat is in the future', 'iat'));
  }
  const events = payload.events;
  // RFC 8417 §2.2: "events" is a JSON object of event type URI -> JSON object.
  if (
    !isRecord(events) ||
    Object.keys(events).length === 0 ||
    !Object.values(events).every(isRecord)
  ) {
    throw setError(
      claimFailure('events_invalid', 'events must be an object of event objects', 'events'),
    );
  }
  return {
    jti,
    iss: payload.iss as string,
    aud: toArray(payload.aud ?? []),
    iat,
    events: events as Record<string, Record<string, unknown>>,
    payload,
    header,
  };
}

/**
 * The RFC 8935 §2.3 error body for a failed SET delivery (`400 {err, description}`), or
 * undefined when the error is not the transmitter's fault (answer 5xx so it retries).
 */
export function setErrorBody(err: unknown): { err: SetErrorCode; description: string } | undefined {
  if (!isTokenwatchError(err)) return undefined;
  const code = err.details?.err;
  return typeof code === 'string'
    ? { err: code as SetErrorCode, description: err.message }
    : undefined;
}

function setError(f: JwtFailure, cause?: unknown): TokenwatchError {
  return toError('SET rejected', f, f.setErr ? { err: f.setErr } : {}, cause);
}

function toArray(v: string | readonly string[]): string[] {
  return typeof v === 'string' ? [v] : [...v];
}
