/**
 * The shape of every HMAC fingerprint tokenwatch writes (`hmac-sha256:<key id>:<hex>`, see
 * src/audit/fingerprint.ts): a domain fact, so pure code (the correlator) can recognise one
 * without depending on the ledger.
 */
export const FINGERPRINT_RE = /^hmac-sha256:[A-Za-z0-9_.-]{1,32}:[0-9a-f]{64}$/;
