import { nearestRank } from './percentiles.js';
import type { Policy } from './policy-record.js';
import type { ReplayRecord } from './report-inventory.js';
import type { FindingRow, TtlSection } from './report-types.js';

type KindTtl = TtlSection['perKind'][string];

interface KindState {
  row: KindTtl;
  ttls: number[];
  tokens: Set<string>;
  over: Set<string>;
  noExpiry: Set<string>;
}

/** Token records that can state the key's TTL (`ttlMs`: a number, or null for no expiry). */
const STATES_TTL = new Set([
  'token.written',
  'token.appeared',
  'token.ttl_changed',
  'token.present',
]);

/**
 * TTL policy conformance (CC6.1) over the token records of a range, each judged by the policy
 * in force when it was recorded. "Over policy" applies the correlator's rule exactly (TTL above
 * maxTtlSeconds + ttlToleranceSeconds, src/correlate/rules/token-policy.ts) and counts tokens,
 * not writes, so the table and the `ttl_exceeds_policy` findings count the same set.
 */
export class TtlTally {
  readonly #kinds = new Map<string, KindState>();
  /** Records judged while no policy was in force. */
  withoutPolicy = 0;

  /** Adds one record, judged by `policy` (null: none known at that record). */
  add(r: ReplayRecord, policy: Policy | null): void {
    if (r.kind === null || r.fingerprint === null) return;
    const persisted = r.type === 'token.persisted';
    if (!persisted && !STATES_TTL.has(r.type)) return;
    const k = this.#kind(r.kind);
    const a = r.attrs;
    if (r.type === 'token.written') k.row.written += 1;
    if (persisted) k.row.persisted += 1;
    const ttlMs = a.ttlMs;
    // `ttlMs: null` states "no expiry" unless the recorder flagged the TTL as not read.
    const noExpiry = persisted || (ttlMs === null && a.ttlUnknown !== true);
    if (typeof ttlMs !== 'number' && !noExpiry) {
      k.row.unknownTtl += 1;
      return;
    }
    k.tokens.add(r.fingerprint);
    if (noExpiry) {
      k.row.noExpiry += 1;
      k.noExpiry.add(r.fingerprint);
    } else if (typeof ttlMs === 'number') {
      k.row.withTtl += 1;
      k.ttls.push(ttlMs);
      if (policy === null) {
        k.row.policyKnown = false;
        this.withoutPolicy += 1;
        return;
      }
      const max = policy.maxTtlSeconds[r.kind] ?? null;
      if (max !== null && ttlMs > (max + policy.ttlToleranceSeconds) * 1000)
        k.over.add(r.fingerprint);
    }
  }

  /**
   * Tokens whose finding was open when the range began: over policy (or without expiry) in
   * the range although no record of the range restated their TTL.
   */
  carriedIn(findings: readonly FindingRow[], firstSeq: number): void {
    for (const f of findings) {
      if (f.openedSeq >= firstSeq || f.kind === null || f.fingerprint === null) continue;
      const set =
        f.rule === 'ttl_exceeds_policy'
          ? 'over'
          : f.rule === 'token_without_expiry'
            ? 'noExpiry'
            : undefined;
      if (set === undefined) continue;
      const k = this.#kind(f.kind);
      k.tokens.add(f.fingerprint);
      k[set].add(f.fingerprint);
    }
  }

  /** Tokens counted vs tokens the findings of the range name, per rule (all kinds). */
  agreement(findings: readonly FindingRow[]): TtlSection['agreement'] {
    const compare = (rule: string, pick: (k: KindState) => Set<string>) => {
      const named = new Set(
        findings.flatMap((f) =>
          f.rule === rule && f.fingerprint !== null ? [`${f.kind ?? ''}/${f.fingerprint}`] : [],
        ),
      );
      const counted = new Set(
        [...this.#kinds].flatMap(([kind, k]) => [...pick(k)].map((fp) => `${kind}/${fp}`)),
      );
      return {
        withoutFinding: [...counted].filter((x) => !named.has(x)).length,
        findingNotCounted: [...named].filter((x) => !counted.has(x)).length,
      };
    };
    return {
      overPolicy: compare('ttl_exceeds_policy', (k) => k.over),
      withoutExpiry: compare('token_without_expiry', (k) => k.noExpiry),
    };
  }

  /** Per-kind rows; `end` is the policy in force at the end of the range. */
  result(end: Policy | null): TtlSection['perKind'] {
    const out: TtlSection['perKind'] = {};
    for (const [kind, k] of [...this.#kinds].sort(([a], [b]) => a.localeCompare(b))) {
      const row = k.row;
      const list = k.ttls.sort((x, y) => x - y);
      row.maxTtlSeconds = list.length > 0 ? (list[list.length - 1] ?? 0) / 1000 : null;
      const p95 = nearestRank(list, 95);
      row.p95TtlSeconds = p95 === null ? null : p95 / 1000;
      if (end === null) row.policyKnown = false;
      row.policyMaxTtlSeconds = end?.maxTtlSeconds[kind] ?? null;
      row.toleranceSeconds = end?.ttlToleranceSeconds ?? null;
      row.tokens = k.tokens.size;
      row.noExpiryTokens = k.noExpiry.size;
      row.overPolicy = row.policyKnown ? k.over.size : null;
      const bad = new Set([...k.over, ...k.noExpiry]).size;
      row.conformance = row.policyKnown && row.tokens > 0 ? (row.tokens - bad) / row.tokens : null;
      out[kind] = row;
    }
    return out;
  }

  #kind(kind: string): KindState {
    let k = this.#kinds.get(kind);
    if (!k) {
      k = {
        row: {
          written: 0,
          withTtl: 0,
          noExpiry: 0,
          unknownTtl: 0,
          persisted: 0,
          maxTtlSeconds: null,
          p95TtlSeconds: null,
          policyMaxTtlSeconds: null,
          toleranceSeconds: null,
          policyKnown: true,
          tokens: 0,
          overPolicy: null,
          noExpiryTokens: 0,
          conformance: null,
        },
        ttls: [],
        tokens: new Set(),
        over: new Set(),
        noExpiry: new Set(),
      };
      this.#kinds.set(kind, k);
    }
    return k;
  }
}
