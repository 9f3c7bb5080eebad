import type { StreamPosition } from './position.js';

/**
 * A token lifecycle event observed in Redis, after the key was matched against a token rule
 * and its secret placeholders were fingerprinted. Never carries a raw key or token.
 */
export type TokenEventType =
  | 'written'
  | 'ttl_changed'
  | 'persisted'
  | 'expired'
  | 'deleted'
  | 'evicted'
  | 'renamed'
  /** Found by reconciliation (SCAN) after a blind spot: present in Redis, unknown to us. */
  | 'appeared'
  /** Found by reconciliation (SCAN) after a blind spot: known to us, gone from Redis. */
  | 'vanished'
  /**
   * Found by a baseline SCAN (start-up, or a node watched for the first time): live in Redis,
   * its write not observed. Evidence that the token exists, with its expiry; not an issuance.
   */
  | 'present';

export const TOKEN_EVENT_TYPES: readonly TokenEventType[] = [
  'written',
  'ttl_changed',
  'persisted',
  'expired',
  'deleted',
  'evicted',
  'renamed',
  'appeared',
  'vanished',
  'present',
];

/** Event types after which the token is no longer live in Redis. */
export const TOKEN_END_TYPES: ReadonlySet<TokenEventType> = new Set([
  'expired',
  'deleted',
  'evicted',
  'vanished',
]);

export interface TokenEvent {
  type: TokenEventType;
  /** Token rule kind, e.g. `access_token`. */
  kind: string;
  /** `hmac-sha256:<keyId>:<hex>` of the token's secret placeholder(s). */
  fingerprint: string;
  /**
   * Join keys carried by the key template: for secret placeholders (token, jti, sid, ...)
   * their fingerprints; for the others (sub, client, tenant, scope, ...) their values.
   */
  keyAttrs: Readonly<Record<string, string>>;
  /** Redis node label (`host:port`). */
  node: string;
  db: number;
  /** When tokenwatch received the notification (unix ms, tokenwatch clock). */
  observedAt: number;
  /** For written / ttl_changed / persisted / appeared / present: absolute expiry (unix ms, tokenwatch clock); null = no TTL; undefined = unknown (key gone before lookup). */
  dueAt?: number | null;
  /** TTL in ms at the time of the event, when known; null = no TTL. */
  ttlMs?: number | null;
  /** For end events: how long the token lived (ms), when its write was observed. */
  lifetimeMs?: number;
  /** For `expired`: observedAt minus dueAt (ms). */
  expiryLagMs?: number;
  /**
   * For `expired` / `vanished`: the due time had passed by more than
   * `redis.expiryBacklogToleranceSeconds` when Redis removed the key (lazy expiry catching up,
   * typically after a SCAN touched it): expiry backlog, not churn. Also set on every `expired`
   * of a lazy-expiry flush (delivered with at least as many such late expirations, or during
   * tokenwatch's own reconciliation SCAN), whose lag alone cannot tell it from one on time.
   */
  backlog?: true;
  /**
   * For `written`: the inventory already held this key (a rewrite of a live token, e.g. one
   * found by the baseline), so the write is not a new token.
   */
  rewrite?: true;
  /** For `renamed`: the other side of the rename (null when it matched no rule). */
  renamedFrom?: { kind: string; fingerprint: string } | null;
  /** Redis event name that produced it (`set`, `expire`, `del`, ...) or `reconcile`. */
  redisEvent: string;
  /**
   * In memory only, never recorded: the fingerprint's 32 digest bytes as latin1
   * (Fingerprinter.digestLatin1), where classification had them. It must be the digest of
   * `fingerprint`; readers that key tokens by digest (the correlator's live view) then decode
   * no hex. Absent on events rebuilt from the ledger.
   */
  digest?: string;
  /**
   * Coordination on (issue #20): where the notification that produced it sits in its node's
   * stream, named alike by every instance. Absent when coordination is off, when no marker was
   * seen yet on this subscription, and for events not made from a notification (baseline, gap).
   */
  position?: StreamPosition;
  /** With `position`: this event's index among those its notification produced (0-based). */
  positionIndex?: number;
}
