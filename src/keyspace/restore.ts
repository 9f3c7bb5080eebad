import type { Ledger } from '../audit/ledger.js';
import type { AuditRecord } from '../audit/record.js';
import type { Inventory } from './inventory.js';

/** Records read per ledger query while replaying. */
const PAGE = 10_000;

/** What the previous run left: its inventory, ready to be reconciled like any other gap. */
export type RestoreResult =
  | { restored: true; tokens: number; records: number; fromSeq: number }
  | { restored: false; why: string };

export interface RestoreOptions {
  ledger: Ledger;
  inventory: Inventory;
  /** Node label in the records (`host:port`, `sentinel:<name>`) and its inventory index. */
  node: string;
  nodeIndex: number;
  /** Seq of the previous run's `system.started`. */
  fromSeq: number;
  /** Give up (plain baseline) beyond this many token records: start-up time stays bounded. */
  maxRecords: number;
}

const SETS = new Set(['present', 'appeared', 'written', 'ttl_changed', 'persisted', 'renamed']);
const ENDS = new Set(['expired', 'deleted', 'evicted', 'vanished']);

/**
 * Rebuilds the inventory of one node as the previous run's ledger records left it, so the
 * restart's blind spot is reconciled like any other gap (issue #16 item 5): the start-up SCAN
 * then records what appeared, vanished or changed TTL while tokenwatch was down.
 *
 * Trusts the ledger's own token records from the previous run's `system.started` on; that run
 * must have completed its baseline (or its own restart reconciliation), else its records do not
 * describe every token and the caller falls back to a plain baseline. The dues are local times
 * (`dueAt`), stored here as they are: the watcher shifts them onto the Redis clock once it has
 * measured the offset (Inventory.shiftDue) and compares them with a tolerance.
 */
export function restoreInventory(o: RestoreOptions): RestoreResult {
  const covered = o.ledger
    .list({ afterSeq: o.fromSeq, type: 'keyspace.*' })
    .some(
      (r) =>
        r.attrs.node === o.node &&
        (r.type === 'keyspace.baseline' ||
          (r.type === 'keyspace.gap' &&
            String(r.attrs.reason).startsWith('tokenwatch_') &&
            r.attrs.unreconciled === undefined)),
    );
  if (!covered) return { restored: false, why: 'the previous run never completed its baseline' };
  let after = o.fromSeq;
  let records = 0;
  for (;;) {
    const page = o.ledger.list({ afterSeq: after, type: 'token.*', limit: PAGE });
    if (page.length === 0) break;
    records += page.length;
    if (records > o.maxRecords) {
      o.inventory.retireNode(o.nodeIndex);
      return {
        restored: false,
        why: `more than ${o.maxRecords} token records since the previous start`,
      };
    }
    for (const r of page) apply(o, r);
    after = (page.at(-1) as AuditRecord).seq;
  }
  let tokens = 0;
  for (const k of o.inventory.kinds()) tokens += o.inventory.size(k);
  return { restored: true, tokens, records, fromSeq: o.fromSeq };
}

function apply(o: RestoreOptions, r: AuditRecord): void {
  const kind = r.kind;
  const fp = r.fingerprint;
  if (!kind || !fp || r.attrs.node !== o.node) return;
  const type = r.type.slice('token.'.length);
  const inv = o.inventory;
  if (ENDS.has(type)) {
    inv.delete(kind, fp, o.nodeIndex);
    return;
  }
  if (!SETS.has(type)) return;
  const from = r.attrs.renamedFrom as { kind?: string; fingerprint?: string } | null | undefined;
  let before = inv.get(kind, fp);
  if (type === 'renamed' && from?.kind && from.fingerprint) {
    // RENAME keeps the TTL: the source's entry is the destination's.
    before = inv.delete(from.kind, from.fingerprint, o.nodeIndex) ?? before;
  }
  const dueAt = r.attrs.dueAt;
  let due: number | null;
  if (type === 'persisted' || dueAt === null) due = null;
  else if (typeof dueAt === 'number') due = dueAt;
  // Unknown: a rename keeps what the source had; anything else is unknown (NaN).
  else due = type === 'renamed' ? (before?.due ?? Number.NaN) : Number.NaN;
  const written = type === 'written' ? r.time : (before?.written ?? 0);
  inv.set(kind, fp, { due, written, node: o.nodeIndex });
}
