import type { Finding } from '../../domain/finding.js';
import type { TokenEvent } from '../../domain/token-event.js';
import type { FindingBook } from '../finding-book.js';
import { secs, tokenFields } from '../format.js';
import type { ResolvedCorrelatorOptions } from '../options.js';
import { clearOpen, setOpen } from '../token-store.js';
import type { TokenRecord } from '../token-store.js';

/**
 * `token_without_expiry` and `ttl_exceeds_policy` (CC6.1: credentials must expire, and not
 * later than policy allows). Evaluated on every event that tells us the key's TTL.
 */
export class TokenPolicyRule {
  readonly #opts: ResolvedCorrelatorOptions;
  readonly #book: FindingBook;

  constructor(opts: ResolvedCorrelatorOptions, book: FindingBook) {
    this.#opts = opts;
    this.#book = book;
  }

  evaluate(rec: TokenRecord, ev: TokenEvent, seq: number | undefined, now: number): Finding[] {
    const out: Finding[] = [];
    const push = (f: Finding | undefined) => void (f && out.push(f));

    if (rec.dueAt === null && !this.#book.isOpen(rec.open.token_without_expiry)) {
      const f = this.#book.open(
        {
          rule: 'token_without_expiry',
          key: rec.fingerprint,
          summary: `A ${rec.kind} token is stored in Redis without an expiry (${ev.type}).`,
          ...tokenFields(rec),
          evidence: [seq],
          attributes: { event: ev.type, redisEvent: ev.redisEvent },
        },
        now,
      );
      if (f) setOpen(rec, 'token_without_expiry', f.id);
      push(f);
    } else if (typeof rec.dueAt === 'number' && rec.open.token_without_expiry !== undefined) {
      push(
        this.#book.resolve(
          rec.open.token_without_expiry,
          now,
          `The ${rec.kind} token now has an expiry.`,
          { resolution: 'ttl_set', dueAt: rec.dueAt },
          [seq],
        ),
      );
      clearOpen(rec, 'token_without_expiry');
    }

    const max = this.#opts.kinds.get(rec.kind)?.maxTtlSeconds;
    const ttlMs =
      typeof ev.ttlMs === 'number'
        ? ev.ttlMs
        : typeof rec.dueAt === 'number'
          ? rec.dueAt - ev.observedAt
          : undefined;
    // A key without TTL is token_without_expiry's business; only a known, finite TTL is judged here.
    if (max === undefined || ttlMs === undefined || rec.dueAt === null) return out;
    const exceeds = ttlMs > (max + this.#opts.ttlToleranceSeconds) * 1000;
    if (exceeds && !this.#book.isOpen(rec.open.ttl_exceeds_policy)) {
      const f = this.#book.open(
        {
          rule: 'ttl_exceeds_policy',
          key: rec.fingerprint,
          summary: `A ${rec.kind} token has a TTL of ${secs(ttlMs)} s, above the policy maximum of ${max} s.`,
          ...tokenFields(rec),
          evidence: [seq],
          attributes: { ttlSeconds: secs(ttlMs), maxTtlSeconds: max, event: ev.type },
        },
        now,
      );
      if (f) setOpen(rec, 'ttl_exceeds_policy', f.id);
      push(f);
    } else if (exceeds && rec.open.ttl_exceeds_policy !== undefined) {
      this.#book.update(rec.open.ttl_exceeds_policy, { ttlSeconds: secs(ttlMs) }, [seq]);
    } else if (!exceeds && rec.open.ttl_exceeds_policy !== undefined) {
      push(
        this.#book.resolve(
          rec.open.ttl_exceeds_policy,
          now,
          `The ${rec.kind} token's TTL is back within policy (${secs(ttlMs)} s).`,
          { resolution: 'ttl_fixed', ttlSeconds: secs(ttlMs) },
          [seq],
        ),
      );
      clearOpen(rec, 'ttl_exceeds_policy');
    }
    return out;
  }
}
