import { esc, num, percent, table } from './html-format.js';
import { findingColumns, section } from './report-html-parts.js';
import type { FindingRow } from './report-types.js';

/** Per token kind: what the period's cache-health records say (docs/compliance.md). */
export interface CacheHealthKind {
  /** Reads of the kind seen in MONITOR sampling windows (the sample). */
  sampledReads: number;
  /** Of those, misses (keymiss between the same window markers). */
  sampledMisses: number;
  /** (sampledReads - sampledMisses) / sampledReads; null without sampled reads. */
  hitRatio: number | null;
  /** Standard error of hitRatio, sqrt(p(1-p)/n); null without sampled reads. */
  standardError: number | null;
  /** Every miss of the kind in the period (exact, keymiss). */
  misses: number;
  /** Misses on tokens that had ended recently, by how they ended (revoked, deleted, ...). */
  missesAfterEnd: Record<string, number>;
}

export interface CacheHealthSection {
  /** Sampling windows in the period (cache.read_sample records). */
  windows: number;
  /** Miss summaries in the period (cache.misses records). */
  summaries: number;
  perKind: Record<string, CacheHealthKind>;
  /** orphaned_index_entries findings active in the period (CC6.2). */
  orphanedIndexes: FindingRow[];
}

const counts = (v: unknown): [string, number][] =>
  v !== null && typeof v === 'object'
    ? Object.entries(v as Record<string, unknown>).filter(
        (e): e is [string, number] =>
          typeof e[1] === 'number' && Number.isFinite(e[1]) && e[1] >= 0,
      )
    : [];

/**
 * Adds up the period's `cache.read_sample` and `cache.misses` records. Attributes are read as
 * untrusted JSON (a record only counts through its sealed chain, which section 1 verifies):
 * anything that is not a finite non-negative count is ignored.
 */
export class CacheHealthTally {
  #windows = 0;
  #summaries = 0;
  readonly #kinds = new Map<string, CacheHealthKind>();

  #kind(k: string): CacheHealthKind {
    let e = this.#kinds.get(k);
    if (!e) {
      e = {
        sampledReads: 0,
        sampledMisses: 0,
        hitRatio: null,
        standardError: null,
        misses: 0,
        missesAfterEnd: {},
      };
      this.#kinds.set(k, e);
    }
    return e;
  }

  /** One ledger record; true when it was a cache-health record. */
  add(type: string, attrs: Record<string, unknown>): boolean {
    if (type === 'cache.read_sample') {
      this.#windows += 1;
      const misses = new Map(counts(attrs.misses));
      for (const [k, reads] of counts(attrs.reads)) {
        const e = this.#kind(k);
        e.sampledReads += reads;
        e.sampledMisses += Math.min(reads, misses.get(k) ?? 0);
      }
      return true;
    }
    if (type === 'cache.misses') {
      this.#summaries += 1;
      for (const [k, n] of counts(attrs.misses)) this.#kind(k).misses += n;
      const after = attrs.afterEnd;
      if (after !== null && typeof after === 'object') {
        for (const [k, ends] of Object.entries(after as Record<string, unknown>)) {
          const e = this.#kind(k);
          for (const [end, n] of counts(ends))
            e.missesAfterEnd[end] = (e.missesAfterEnd[end] ?? 0) + n;
        }
      }
      return true;
    }
    return false;
  }

  result(orphanedIndexes: FindingRow[]): CacheHealthSection {
    const perKind: Record<string, CacheHealthKind> = {};
    for (const k of [...this.#kinds.keys()].sort()) {
      const e = this.#kinds.get(k) as CacheHealthKind;
      if (e.sampledReads > 0) {
        const p = (e.sampledReads - e.sampledMisses) / e.sampledReads;
        e.hitRatio = p;
        e.standardError = Math.sqrt((p * (1 - p)) / e.sampledReads);
      }
      perKind[k] = e;
    }
    return { windows: this.#windows, summaries: this.#summaries, perKind, orphanedIndexes };
  }
}

/** The report's cache-health section (HTML). */
export function cacheHealthSectionHtml(n: number, s: CacheHealthSection | undefined): string {
  if (!s) return '';
  const rows = Object.entries(s.perKind);
  const body = table(
    rows,
    [
      { head: 'Kind', cell: ([k]) => esc(k) },
      {
        head: 'Hit ratio (sampled)',
        numeric: true,
        cell: ([, e]) =>
          e.hitRatio === null
            ? '—'
            : `${esc(percent(e.hitRatio))} ± ${esc(percent(2 * (e.standardError ?? 0)))}`,
      },
      { head: 'Sampled reads', numeric: true, cell: ([, e]) => num(e.sampledReads) },
      { head: 'Misses', numeric: true, cell: ([, e]) => num(e.misses) },
      {
        head: 'Misses after revocation',
        numeric: true,
        cell: ([, e]) => num(e.missesAfterEnd.revoked ?? 0),
      },
      {
        head: 'Misses after delete / expiry / eviction',
        numeric: true,
        cell: ([, e]) =>
          `${num(e.missesAfterEnd.deleted ?? 0)} / ${num(e.missesAfterEnd.expired ?? 0)} / ${num(e.missesAfterEnd.evicted ?? 0)}`,
      },
    ],
    'No cache-health records in the period (metrics.keyMisses and metrics.readSampling are off).',
  );
  return section(
    n,
    'cache-health',
    'Cache health and revoked tokens still presented',
    ['CC6.2', 'CC7.2'],
    `Per token kind: the hit ratio estimated from ${num(s.windows)} MONITOR sampling window(s) (± two standard errors), exact misses from keymiss notifications, and misses on tokens that had been revoked or had ended shortly before: clients still presenting revoked credentials.`,
    `${body}<h3>Index entries that outlive their tokens</h3>${table(s.orphanedIndexes, findingColumns, 'None.')}`,
  );
}
