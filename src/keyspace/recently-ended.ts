import { END_REASONS, type EndReason } from '../metrics/cache-health-metrics.js';

/** Digest bytes kept per token: 96 bits, collision-free in practice for millions of entries. */
const DIGEST_BYTES = 12;
const FP_HEX = /^hmac-sha256:[A-Za-z0-9_.-]+:([0-9a-f]{64})$/;

export interface RecentlyEndedOptions {
  maxEntries: number;
  horizonMs: number;
}

/**
 * Tokens that left Redis (or were revoked by their provider) recently, so that a miss on their
 * key can be told apart from a miss on a key that never held a token. Bounded and compact: a
 * truncated HMAC digest (never a key, token or fingerprint text) -> end and time packed in one
 * number; the oldest entry goes first when full (Map keeps insertion order), and entries older
 * than the horizon are ignored and dropped on the way.
 *
 * Trust: the digests come from our own HMAC of keys we observed and from provider events whose
 * delivery was authenticated (src/providers/); nothing here is read back from Redis.
 */
export class RecentlyEnded {
  readonly #o: RecentlyEndedOptions;
  readonly #map = new Map<string, number>();
  #evictions = 0;

  constructor(options: RecentlyEndedOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#map.size;
  }

  get evictions(): number {
    return this.#evictions;
  }

  /**
   * Records an end for a token digest (TokenRules.identify / Fingerprinter.digestLatin1).
   * `revoked` is sticky: the DEL that usually follows a revocation does not downgrade it.
   */
  end(digest: string, end: EndReason, at: number): void {
    const k = digest.slice(0, DIGEST_BYTES);
    const prev = this.#map.get(k);
    if (prev !== undefined) {
      const prevEnd = END_REASONS[prev % 4];
      if (prevEnd === 'revoked' && end !== 'revoked' && at - unpackAt(prev) <= this.#o.horizonMs)
        end = 'revoked';
      this.#map.delete(k); // re-insert at the young end
    }
    this.#map.set(k, pack(at, end));
    while (this.#map.size > this.#o.maxEntries) {
      const oldest = this.#map.keys().next().value as string;
      this.#map.delete(oldest);
      this.#evictions++;
    }
  }

  /** The same, for a fingerprint `hmac-sha256:<keyId>:<hex>` under the current key `prefix`. */
  endFingerprint(fingerprint: string, prefix: string, end: EndReason, at: number): void {
    if (!fingerprint.startsWith(prefix)) return; // an old key id: cannot match a current digest
    const m = FP_HEX.exec(fingerprint);
    if (!m) return;
    this.end(Buffer.from(m[1] as string, 'hex').toString('latin1'), end, at);
  }

  /** How the token with this digest ended, if within the horizon at `now`. */
  get(digest: string, now: number): EndReason | undefined {
    const k = digest.slice(0, DIGEST_BYTES);
    const v = this.#map.get(k);
    if (v === undefined) return undefined;
    if (now - unpackAt(v) > this.#o.horizonMs) {
      this.#map.delete(k);
      return undefined;
    }
    return END_REASONS[v % 4];
  }

  /** A token written again is live: a later miss is a plain miss again. */
  forget(digest: string): void {
    this.#map.delete(digest.slice(0, DIGEST_BYTES));
  }
}

function pack(at: number, end: EndReason): number {
  return Math.max(0, Math.floor(at)) * 4 + END_REASONS.indexOf(end);
}

function unpackAt(v: number): number {
  return Math.floor(v / 4);
}
