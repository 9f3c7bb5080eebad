/**
 * The vocabulary of the compact record blob (record-codec.ts, docs/ledger-format.md#storage-encoding):
 * its value tags, and the dictionaries of attribute keys and string values stored as one byte.
 * KEYS and WORDS are append-only: never reorder or remove an entry (stored blobs index them).
 */
export const KEYS: readonly string[] = [
  'backlog', 'db', 'dueAt', 'expiryLagMs', 'gapEnd', 'gapStart', 'key', 'lifetimeMs', 'node',
  'redisEvent', 'renamedFrom', 'rewrite', 'ttlMs', 'ttlUnknown', 'via', 'token', 'jti', 'sid',
  'sub', 'scope', 'client', 'user', 'tenant', 'sessionId', 'tokenId',
]; // prettier-ignore
export const WORDS: readonly string[] = [
  'redis', 'provider', 'correlator', 'system', 'admin', 'access_token', 'refresh_token',
  'session', 'id_token', 'authorization_code', 'device_code', 'set', 'expire', 'expired', 'del',
  'evicted', 'rename_from', 'rename_to', 'persist', 'reconcile', 'scan', 'unlink', 'getex',
  'getdel', 'restore', 'token.written', 'token.ttl_changed', 'token.persisted', 'token.expired',
  'token.deleted', 'token.evicted', 'token.renamed', 'token.appeared', 'token.vanished',
  'token.present',
]; // prettier-ignore
export const KEY_INDEX = new Map(KEYS.map((k, i) => [k, i]));
/** `"key":` of each dictionary key, and each word as a JSON string: decoding is verification's hot loop. */
export const KEY_JSON = KEYS.map((k) => `${JSON.stringify(k)}:`);
export const WORD_JSON = WORDS.map((w) => JSON.stringify(w));
export const WORD_INDEX = new Map(WORDS.map((w, i) => [w, i]));

export const T_NULL = 0;
export const T_FALSE = 1;
export const T_TRUE = 2;
export const T_UINT = 3;
export const T_NEG = 4;
export const T_AFTER = 5;
export const T_BEFORE = 6;
export const T_STR = 7;
export const T_WORD = 8;
export const T_FP = 9;
export const T_SELF = 10;
export const T_OBJ = 11;
export const T_JSON = 12;
export const INLINE_KEY = 0xff;
