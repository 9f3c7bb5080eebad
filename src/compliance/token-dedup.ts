import {
  afterCut,
  parsePosition,
  type Acquired,
  type Ended,
  type LedgerOwnership,
  type Position,
} from '../audit/ownership-records.js';
import type { LedgerStore } from '../audit/store/ledger-store.js';
import { yieldToLoop } from './yield-to-loop.js';

/**
 * Token events across several instances' ledgers, each counted once (issue #20,
 * docs/ha-evidence.md#merged-report): by `node/pos` across ledgers, and a fenced epoch's records
 * after its successor's replay point left to the successor's copies.
 */

export /** Token events of every ledger, each counted once (docs/ha-evidence.md#merged-report). */
interface MergedTokenCounts {
  /** `token.<event>` → kind → records counted. */
  byType: Record<string, Record<string, number>>;
  counted: number;
  /** Records whose `node/pos` another ledger (or this one) already gave: not counted again. */
  duplicates: number;
  /** Records of a fenced epoch after the next epoch's `from`: the next owner's copies count. */
  fencedExcluded: number;
  /** Counted records without `pos` (an uncoordinated instance, a reconcile, a baseline SCAN). */
  withoutPosition: number;
  /** With `collect`: per ledger id, the seqs of the records not counted, by reason. */
  notCounted?: Record<string, { duplicates: number[]; fencedExcluded: number[] }>;
}

/**
 * Where each fenced epoch's records stop counting: the `from` of the next epoch's acquisition
 * (the position after which the next owner replayed from its own buffer).
 */
function fencedCuts(owners: readonly LedgerOwnership[]): Map<string, Position> {
  const fenced: Ended[] = [];
  const acquired = new Map<string, Acquired>();
  for (const l of owners)
    for (const r of l.records) {
      if (r.type === 'fenced') fenced.push(r);
      else if (r.type === 'acquired') acquired.set(`${r.node}/${r.epoch}`, r);
    }
  const cuts = new Map<string, Position>();
  for (const f of fenced) {
    const next = acquired.get(`${f.node}/${f.epoch + 1}`);
    const p = next?.from ? parsePosition(next.from) : undefined;
    if (p) cuts.set(`${f.node}/${f.epoch}`, p);
  }
  return cuts;
}

/**
 * Counts the token records of each ledger's records in [from, to) (the seq range a report or an
 * export of the period reads), each event once. With `collect`, the seqs not counted, per ledger.
 * `owners` are the ownership records that cut fenced epochs: only those of intact ledgers (a
 * forged `from` in a damaged one would drop another ledger's real events).
 */
export async function countTokens(
  ledgers: readonly { ledger: string; store: LedgerStore }[],
  owners: readonly LedgerOwnership[],
  from: number,
  to: number,
  collect = false,
): Promise<MergedTokenCounts> {
  const cuts = fencedCuts(owners);
  const seen = new Set<string>();
  const t: MergedTokenCounts = {
    byType: {},
    counted: 0,
    duplicates: 0,
    fencedExcluded: 0,
    withoutPosition: 0,
  };
  for (const l of ledgers) {
    const skipped = collect ? { duplicates: [] as number[], fencedExcluded: [] as number[] } : null;
    if (skipped) (t.notCounted ??= {})[l.ledger] = skipped;
    const range = l.store.seqRangeForWindow(from, to);
    if (!range) continue;
    for (const page of l.store.replayPages(range.firstSeq, range.lastSeq + 1)) {
      for (const r of page) {
        if (!r.type.startsWith('token.')) continue;
        const node = r.attrs.node;
        const pos = r.attrs.pos;
        const place = typeof pos === 'string' ? parsePosition(pos) : undefined;
        if (typeof node === 'string' && place) {
          const key = `${node}/${pos as string}`;
          if (seen.has(key)) {
            t.duplicates += 1;
            skipped?.duplicates.push(r.seq);
            continue;
          }
          // The epoch of the owner that wrote the record (attrs.epoch), not the marker's in pos.
          const epoch = r.attrs.epoch;
          const cut = typeof epoch === 'number' ? cuts.get(`${node}/${epoch}`) : undefined;
          if (cut && afterCut(place, cut)) {
            // Not marked seen: the next owner's copy of the same event is the one counted.
            t.fencedExcluded += 1;
            skipped?.fencedExcluded.push(r.seq);
            continue;
          }
          seen.add(key);
        } else {
          t.withoutPosition += 1;
        }
        const kinds = (t.byType[r.type] ??= {});
        const kind = r.kind ?? '(none)';
        kinds[kind] = (kinds[kind] ?? 0) + 1;
        t.counted += 1;
      }
      await yieldToLoop();
    }
  }
  return t;
}
