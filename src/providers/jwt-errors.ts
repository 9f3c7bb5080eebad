import { decodeProtectedHeader, errors as joseErrors } from 'jose';
import type { JWTVerifyGetKey, ProtectedHeaderParameters } from 'jose';

import { type ErrorCode, TokenwatchError } from '../errors.js';

/**
 * Shared by SET (RFC 8417) and logout-token verification: classifies every way a signed JWT can
 * fail into a tokenwatch error code, an RFC 8935 `err` and a stable `reason`.
 */

/** RFC 8935 §2.4 error codes a SET Recipient returns. */
export type SetErrorCode =
  | 'invalid_request'
  | 'invalid_key'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'authentication_failed'
  | 'access_denied';

/** Stable machine-readable reasons carried in `details.reason`. */
export type JwtFailureReason =
  | 'malformed'
  | 'too_large'
  | 'alg_not_allowed'
  | 'unknown_key'
  | 'bad_signature'
  | 'keys_unavailable'
  | 'wrong_typ'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'expired'
  | 'iat_in_future'
  | 'missing_claim'
  | 'invalid_claim'
  | 'nonce_present'
  | 'no_sub_or_sid'
  | 'events_invalid';

export interface JwtFailure {
  code: ErrorCode;
  reason: JwtFailureReason;
  /** RFC 8935 err; absent when the failure is ours (keys unavailable), not the sender's. */
  setErr?: SetErrorCode;
  claim?: string;
  message: string;
}

/** Asymmetric algorithms accepted by default: a JWKS never holds shared secrets. */
export const DEFAULT_JWT_ALGORITHMS: readonly string[] = [
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
  'Ed25519',
];

/** The protected header, or why it is unacceptable; refuses `alg: none` before any key lookup. */
export function readHeader(
  token: string,
  algorithms: readonly string[],
): { header: ProtectedHeaderParameters } | { failure: JwtFailure } {
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return { failure: malformedFailure('not a compact JWS') };
  }
  // RFC 8725 §3.1: never accept unsecured JWTs; only the configured algorithms.
  if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) {
    return {
      failure: {
        code: 'ERR_WEBHOOK_SIGNATURE',
        reason: 'alg_not_allowed',
        setErr: 'invalid_key',
        message: `alg ${JSON.stringify(header.alg ?? null).slice(0, 40)} is not accepted`,
      },
    };
  }
  return { header };
}

export function malformedFailure(message: string): JwtFailure {
  return {
    code: 'ERR_WEBHOOK_MALFORMED',
    reason: 'malformed',
    setErr: 'invalid_request',
    message,
  };
}

export function claimFailure(
  reason: JwtFailureReason,
  message: string,
  claim?: string,
  setErr: SetErrorCode = 'invalid_request',
): JwtFailure {
  return { code: 'ERR_WEBHOOK_TOKEN_INVALID', reason, setErr, claim, message };
}

const UNAVAILABLE = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

/** Marker thrown by {@link guardKeyResolver} so key-fetch outages are not blamed on the sender. */
class KeysUnavailable extends Error {}

/**
 * Wraps a key resolver (e.g. `createRemoteJWKSet`) so that a JWKS fetch failure (network error,
 * timeout, non-200, invalid JWKS) is told apart from a token signed with an unknown key.
 */
export function guardKeyResolver(keys: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await keys(header, token);
    } catch (err) {
      if (err instanceof joseErrors.JOSEError && !UNAVAILABLE.has(err.code)) throw err;
      throw new KeysUnavailable('signing keys unavailable', { cause: err });
    }
  };
}

/** Classifies an error thrown by `jwtVerify` (with a guarded resolver). */
export function classifyJoseError(err: unknown): JwtFailure | undefined {
  if (err instanceof KeysUnavailable) {
    return {
      code: 'ERR_PROVIDER_KEYS_UNAVAILABLE',
      reason: 'keys_unavailable',
      message: 'the issuer signing keys could not be fetched',
    };
  }
  if (err instanceof joseErrors.JWTExpired) {
    return claimFailure('expired', 'token expired', err.claim);
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'iss':
        return claimFailure('wrong_issuer', 'unexpected issuer', 'iss', 'invalid_issuer');
      case 'aud':
        return claimFailure('wrong_audience', 'unexpected audience', 'aud', 'invalid_audience');
      case 'typ':
        return claimFailure('wrong_typ', 'unexpected typ header', 'typ');
      default:
        return claimFailure(
          err.reason === 'missing' ? 'missing_claim' : 'invalid_claim',
          `${err.reason === 'missing' ? 'missing' : 'invalid'} "${err.claim}" claim`,
          err.claim,
        );
    }
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return {
      code: 'ERR_WEBHOOK_SIGNATURE',
      reason: 'bad_signature',
      setErr: 'authentication_failed',
      message: 'signature verification failed',
    };
  }
  if (
    err instanceof joseErrors.JWKSNoMatchingKey ||
    err instanceof joseErrors.JWKSMultipleMatchingKeys ||
    err instanceof joseErrors.JWKInvalid ||
    err instanceof joseErrors.JOSENotSupported ||
    err instanceof joseErrors.JOSEAlgNotAllowed
  ) {
    return {
      code: 'ERR_WEBHOOK_SIGNATURE',
      reason: err instanceof joseErrors.JOSEAlgNotAllowed ? 'alg_not_allowed' : 'unknown_key',
      setErr: 'invalid_key',
      message: 'no acceptable key for this token',
    };
  }
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) {
    return malformedFailure(err.message);
  }
  return undefined;
}

/** Builds the TokenwatchError for a failure; `extra` lands in `details`. */
export function toError(
  what: string,
  f: JwtFailure,
  extra: Record<string, unknown>,
  cause?: unknown,
): TokenwatchError {
  return new TokenwatchError(f.code, `${what}: ${f.message}`, {
    cause,
    details: { reason: f.reason, ...(f.claim ? { claim: f.claim } : {}), ...extra },
  });
}
