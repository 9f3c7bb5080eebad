/**
 * The shape of every HMAC fingerprint tokenwatch writes (`hmac-sha256:<key id>:<hex>`, see
 * src/audit/fingerprint.ts): a domain fact, so pure code (the correlator) can recognise one
 * without depending on the ledger.
 */
export const FINGERPRINT_RE = /^hmac-sha256:[A-Za-z0-9_.-]{1,32}:[0-9a-f]{64}$/;

/** What every fingerprint starts with, before its key id. */
export const FINGERPRINT_HEAD = 'hmac-sha256:';
/** 1 for the characters of a key id ([A-Za-z0-9_.-], as FINGERPRINT_RE), by char code below 128. */
const ID_CHAR = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-') {
  ID_CHAR[c.charCodeAt(0)] = 1;
}
/** Value of a lowercase hex digit by char code below 128, -1 for anything else. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;

/**
 * The length of `s`'s `hmac-sha256:<key id>:` when `s` has a fingerprint's shape up to its 64
 * digest chars (which hexDigestInto checks), else -1. Together they accept exactly what
 * FINGERPRINT_RE accepts, without a match array and substrings per call: the hot paths (the
 * inventory, the ledger's compact encoder, the correlator's live columns) read one fingerprint
 * per event.
 */
export function fingerprintPrefixLength(s: string): number {
  const colon = s.length - 65;
  const idLength = colon - FINGERPRINT_HEAD.length;
  if (
    idLength < 1 ||
    idLength > 32 ||
    s.charCodeAt(colon) !== 0x3a ||
    !s.startsWith(FINGERPRINT_HEAD)
  )
    return -1;
  for (let i = FINGERPRINT_HEAD.length; i < colon; i++)
    if (ID_CHAR[s.charCodeAt(i)] !== 1) return -1;
  return colon + 1;
}

/**
 * Decodes the 64 lowercase hex chars of `s` from `at` into 32 bytes of `out` from `outAt`.
 * False at any other char or when `s` ends first (charCodeAt past the end is NaN, no hex
 * digit); `out` is then partly written.
 */
export function hexDigestInto(s: string, at: number, out: Uint8Array, outAt: number): boolean {
  for (let i = at, o = outAt, end = at + 64; i < end; i += 2, o++) {
    const a = s.charCodeAt(i);
    const b = s.charCodeAt(i + 1);
    // In bounds only: an out-of-bounds typed array read is V8's slow path.
    const hi = a < 128 ? (HEX_VALUE[a] as number) : -1;
    const lo = b < 128 ? (HEX_VALUE[b] as number) : -1;
    if ((hi | lo) < 0) return false;
    out[o] = (hi << 4) | lo;
  }
  return true;
}
