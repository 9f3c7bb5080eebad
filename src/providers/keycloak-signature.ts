import { createHmac, timingSafeEqual } from 'node:crypto';

import { TokenwatchError } from '../errors.js';

/**
 * `X-Keycloak-Signature` of the p2-inc keycloak-events HTTP sender / webhooks: the hex HMAC of
 * the raw request body with the webhook's shared secret (RFC 2104; HmacSHA256 by default,
 * HmacSHA1 for backwards compatibility).
 */

export const KEYCLOAK_SIGNATURE_HEADER = 'x-keycloak-signature';

/** Options for {@link verifyKeycloakSignature}. */
export interface KeycloakSignatureOptions {
  /** The webhook's `algorithm`; default `sha256`. */
  algorithm?: 'sha256' | 'sha1';
}

/** Hex HMAC of `rawBody` (what the sender puts in `X-Keycloak-Signature`). */
export function keycloakSignature(
  rawBody: string | Buffer,
  secret: string | Buffer,
  options: KeycloakSignatureOptions = {},
): string {
  return createHmac(options.algorithm ?? 'sha256', secret)
    .update(rawBody)
    .digest('hex');
}

/**
 * Verifies `X-Keycloak-Signature` over the exact raw body bytes, in constant time.
 *
 * @throws TokenwatchError ERR_WEBHOOK_SIGNATURE (401) when the header is missing, repeated,
 *   not hex of the right length, or does not match; ERR_CONFIG_INVALID when `secret` is empty.
 */
export function verifyKeycloakSignature(
  rawBody: string | Buffer,
  header: string | readonly string[] | undefined,
  secret: string | Buffer,
  options: KeycloakSignatureOptions = {},
): void {
  if (secret.length === 0) {
    throw new TokenwatchError('ERR_CONFIG_INVALID', 'Keycloak webhook secret is empty');
  }
  const value = assertKeycloakSignatureHeader(header, options);
  const expected = createHmac(options.algorithm ?? 'sha256', secret)
    .update(rawBody)
    .digest();
  if (!timingSafeEqual(expected, Buffer.from(value, 'hex'))) {
    throw signatureError('X-Keycloak-Signature does not match the body');
  }
}

/**
 * The hex value of a well-formed `X-Keycloak-Signature` header (checked without the body, so a
 * request without one is refused before its body is read).
 *
 * @throws TokenwatchError ERR_WEBHOOK_SIGNATURE (401) when missing, repeated or malformed.
 */
export function assertKeycloakSignatureHeader(
  header: string | readonly string[] | undefined,
  options: KeycloakSignatureOptions = {},
): string {
  if (typeof header !== 'string' || header.length === 0) {
    throw signatureError(
      Array.isArray(header)
        ? 'repeated X-Keycloak-Signature header'
        : 'missing X-Keycloak-Signature',
    );
  }
  const hexLength = (options.algorithm ?? 'sha256') === 'sha1' ? 40 : 64;
  const value = header.trim().replace(/^sha(?:1|256)=/i, '');
  if (value.length !== hexLength || !/^[0-9a-f]+$/i.test(value)) {
    throw signatureError('X-Keycloak-Signature is not a hex HMAC of the expected length');
  }
  return value;
}

function signatureError(message: string): TokenwatchError {
  return new TokenwatchError('ERR_WEBHOOK_SIGNATURE', message);
}
