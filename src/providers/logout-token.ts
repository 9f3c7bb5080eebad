import { type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';

import type { ProviderEvent } from '../domain/provider-event.js';
import { ERRORS } from '../errors.js';
import type { TokenwatchError } from '../errors.js';
import {
  DEFAULT_JWT_ALGORITHMS,
  type JwtFailure,
  claimFailure,
  classifyJoseError,
  guardKeyResolver,
  malformedFailure,
  readHeader,
  toError,
} from './jwt-errors.js';
import { type NormalizeContext, isRecord, toProviderEvent } from './payload-reader.js';

/**
 * OpenID Connect Back-Channel Logout 1.0: validation of the `logout_token` (§2.4, §2.6) and its
 * mapping to a `session_revoked` event. Replay detection (§2.6 step 10, by `jti`) is the
 * caller's job.
 */

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
export const LOGOUT_TYP = 'logout+jwt';

/** Options for {@link verifyLogoutToken}. */
export interface LogoutTokenOptions {
  /** The OP's issuer identifier. */
  issuer: string;
  /** This RP's client id (the token's `aud` must contain it). */
  audience: string | readonly string[];
  /** Seconds of clock skew for `exp` and a future `iat` (default 60). */
  clockToleranceSec?: number;
  /** Refuse tokens whose `iat` is older than this (default: none, `exp` bounds the lifetime). */
  maxAgeSec?: number;
  /** Accepted JWS algorithms (default: asymmetric only; never `none`). */
  algorithms?: readonly string[];
  /** Longest compact token accepted, in characters (default 16 384). */
  maxTokenLength?: number;
  /** Clock (unix ms), default `Date.now`. */
  now?: () => number;
}

/** A logout token that passed every §2.6 check. */
export interface VerifiedLogoutToken {
  jti: string;
  iss: string;
  /** At least one of `sub` and `sid` is present. */
  sub?: string;
  sid?: string;
  iat: number;
  exp: number;
  payload: JWTPayload;
}

/**
 * Validates a logout token: signature against `keys` (alg never `none`), `iss`, `aud`, `iat`,
 * `exp` (required since the 2023 errata), `jti`, the back-channel logout member of `events` (an
 * object), `sub` and/or `sid`, no `nonce`, and `typ` `logout+jwt` when a `typ` is present.
 *
 * @throws TokenwatchError ERR_WEBHOOK_MALFORMED, ERR_WEBHOOK_TOKEN_INVALID or
 *   ERR_WEBHOOK_SIGNATURE (400; `details.error` "invalid_request" for the §2.8 response and
 *   `details.reason` a stable reason), or ERR_PROVIDER_KEYS_UNAVAILABLE (503).
 */
export async function verifyLogoutToken(
  token: string,
  keys: JWTVerifyGetKey,
  options: LogoutTokenOptions,
): Promise<VerifiedLogoutToken> {
  const now = options.now ?? Date.now;
  const skew = options.clockToleranceSec ?? 60;
  const algorithms = options.algorithms ?? DEFAULT_JWT_ALGORITHMS;
  const maxLength = options.maxTokenLength ?? 16_384;
  if (typeof token !== 'string' || token.length === 0) {
    throw logoutError(malformedFailure('empty logout_token'));
  }
  if (token.length > maxLength) {
    throw logoutError({
      code: 'ERR_WEBHOOK_TOO_LARGE',
      reason: 'too_large',
      message: `logout_token longer than ${maxLength} characters`,
    });
  }
  const read = readHeader(token, algorithms);
  if ('failure' in read) throw logoutError(read.failure);

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, guardKeyResolver(keys), {
      issuer: options.issuer,
      audience: typeof options.audience === 'string' ? options.audience : [...options.audience],
      algorithms: [...algorithms],
      requiredClaims: ['iat', 'exp', 'jti', 'events'],
      clockTolerance: skew,
      ...(options.maxAgeSec !== undefined ? { maxTokenAge: options.maxAgeSec } : {}),
      currentDate: new Date(now()),
    }));
  } catch (err) {
    const f = classifyJoseError(err);
    if (f) throw logoutError(f, err);
    throw err;
  }

  // §2.4: "typ" logout+jwt is RECOMMENDED; absent is accepted, any other value is refused so an
  // explicitly typed JWT of another kind (e.g. an ID Token "JWT", a SET) cannot pass as one.
  const typ = read.header.typ;
  if (typ !== undefined && normalizeTyp(typ) !== `application/${LOGOUT_TYP}`) {
    throw logoutError(claimFailure('wrong_typ', 'typ header is not logout+jwt', 'typ'));
  }
  const { iat, exp, jti, sub, sid } = payload;
  if (typeof iat !== 'number' || iat > now() / 1000 + skew) {
    throw logoutError(claimFailure('iat_in_future', 'iat is missing or in the future', 'iat'));
  }
  if (typeof exp !== 'number') {
    throw logoutError(claimFailure('invalid_claim', 'exp must be a NumericDate', 'exp'));
  }
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) {
    throw logoutError(claimFailure('invalid_claim', 'jti must be a string of 1..256 chars', 'jti'));
  }
  // §2.6 step 5: the events member holds the back-channel logout event, whose value is a JSON object.
  const events = payload.events;
  if (!isRecord(events) || !isRecord(events[BACKCHANNEL_LOGOUT_EVENT])) {
    throw logoutError(
      claimFailure(
        'events_invalid',
        `events lacks the ${BACKCHANNEL_LOGOUT_EVENT} object`,
        'events',
      ),
    );
  }
  // §2.6 step 6: a nonce would make it replayable as an ID Token.
  if (Object.hasOwn(payload, 'nonce')) {
    throw logoutError(claimFailure('nonce_present', 'nonce must not be present', 'nonce'));
  }
  const subOk = typeof sub === 'string' && sub.length > 0;
  const sidOk = typeof sid === 'string' && sid.length > 0;
  if ((sub !== undefined && !subOk) || (sid !== undefined && !sidOk)) {
    throw logoutError(claimFailure('invalid_claim', 'sub and sid must be non-empty strings'));
  }
  if (!subOk && !sidOk) {
    throw logoutError(claimFailure('no_sub_or_sid', 'neither sub nor sid is present'));
  }
  return {
    jti,
    iss: payload.iss as string,
    ...(subOk ? { sub: sub } : {}),
    ...(sidOk ? { sid: sid } : {}),
    iat,
    exp,
    payload,
  };
}

/**
 * The `session_revoked` event for a verified logout token: `sessionId` is the fingerprint of
 * `sid`, `subject` the `sub`, `id` the token's `jti`.
 */
export function logoutTokenToEvent(
  token: VerifiedLogoutToken,
  ctx: NormalizeContext,
): ProviderEvent {
  const aud = token.payload.aud;
  return toProviderEvent(
    'oidc',
    {
      id: token.jti,
      type: 'session_revoked',
      occurredAt: token.iat * 1000,
      outcome: 'success',
      vendorType: BACKCHANNEL_LOGOUT_EVENT,
      subject: token.sub,
      clientId: typeof aud === 'string' ? aud : Array.isArray(aud) ? aud[0] : undefined,
      sessionId: token.sid,
      attributes: { issuer: token.iss },
    },
    ctx,
  );
}

function logoutError(f: JwtFailure, cause?: unknown): TokenwatchError {
  // §2.8: an invalid logout request gets 400 with an OAuth error, "invalid_request".
  return toError(
    'logout_token rejected',
    f,
    ERRORS[f.code].status < 500 ? { error: 'invalid_request' } : {},
    cause,
  );
}

function normalizeTyp(typ: string): string {
  const t = typ.toLowerCase();
  return t.includes('/') ? t : `application/${t}`;
}
