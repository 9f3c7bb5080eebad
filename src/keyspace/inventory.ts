/**
 * The live token inventory: per kind, fingerprint -> expiry and write time. Updated by keyspace
 * events and made to equal Redis by reconciliation after every blind spot.
 */
export interface InventoryEntry {
  /** Expiry as Redis states it (PEXPIRETIME, unix ms on the Redis clock); null = no TTL; NaN = unknown. */
  due: number | null;
  /** When the write was observed, unix ms; 0 when it was found by SCAN. */
  written: number;
  /** Index of the Redis node that holds it. */
  node: number;
}

/** What a reconciliation changed, per token. */
export interface ReconcileChange {
  kind: string;
  fingerprint: string;
  change: 'appeared' | 'vanished' | 'ttl_changed';
  before?: InventoryEntry;
  due: number | null;
}

export type Snapshot = Map<string, Map<string, number | null>>;

export class Inventory {
  readonly #kinds = new Map<string, Map<string, InventoryEntry>>();
  /** Tokens touched by live events per node while that node is being reconciled. */
  readonly #touched = new Map<number, Set<string>>();

  constructor(kinds: readonly string[]) {
    for (const k of kinds) this.#kinds.set(k, new Map());
  }

  #map(kind: string): Map<string, InventoryEntry> {
    let m = this.#kinds.get(kind);
    if (!m) {
      m = new Map();
      this.#kinds.set(kind, m);
    }
    return m;
  }

  get(kind: string, fp: string): InventoryEntry | undefined {
    return this.#kinds.get(kind)?.get(fp);
  }

  set(kind: string, fp: string, entry: InventoryEntry): void {
    this.#map(kind).set(fp, entry);
    this.#touch(entry.node, kind, fp);
  }

  delete(kind: string, fp: string, node: number): InventoryEntry | undefined {
    this.#touch(node, kind, fp);
    const m = this.#kinds.get(kind);
    const e = m?.get(fp);
    if (e) m?.delete(fp);
    return e;
  }

  size(kind: string): number {
    return this.#kinds.get(kind)?.size ?? 0;
  }

  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, m] of this.#kinds) out[k] = m.size;
    return out;
  }

  kinds(): string[] {
    return [...this.#kinds.keys()];
  }

  *entries(kind: string): IterableIterator<[string, InventoryEntry]> {
    const m = this.#kinds.get(kind);
    if (m) yield* m.entries();
  }

  /** Start tracking live events for `node` so a snapshot does not overwrite newer facts. */
  beginReconcile(node: number): void {
    this.#touched.set(node, new Set());
  }

  /** Abandon a reconciliation (e.g. the node dropped again mid-SCAN). */
  abortReconcile(node: number): void {
    this.#touched.delete(node);
  }

  /**
   * Make the inventory for `node` equal to the SCAN snapshot, except for tokens that live
   * events touched since beginReconcile (those events are newer than what SCAN may have seen).
   */
  applySnapshot(node: number, snapshot: Snapshot): ReconcileChange[] {
    const touched = this.#touched.get(node) ?? new Set<string>();
    this.#touched.delete(node);
    const changes: ReconcileChange[] = [];
    for (const kind of new Set([...this.#kinds.keys(), ...snapshot.keys()])) {
      const live = this.#map(kind);
      const seen = snapshot.get(kind) ?? new Map<string, number | null>();
      for (const [fp, entry] of live) {
        if (entry.node !== node || seen.has(fp) || touched.has(`${kind}\0${fp}`)) continue;
        live.delete(fp);
        changes.push({ kind, fingerprint: fp, change: 'vanished', before: entry, due: entry.due });
      }
      for (const [fp, due] of seen) {
        if (touched.has(`${kind}\0${fp}`)) continue;
        const before = live.get(fp);
        if (before && before.node !== node) {
          // Cluster failover or slot migration: the same token, now served by this node.
          live.set(fp, { ...before, node, due });
          continue;
        }
        if (!before) {
          live.set(fp, { due, written: 0, node });
          changes.push({ kind, fingerprint: fp, change: 'appeared', due });
        } else if (!sameDue(before.due, due)) {
          live.set(fp, { ...before, due });
          changes.push({ kind, fingerprint: fp, change: 'ttl_changed', before, due });
        }
      }
    }
    return changes;
  }

  /**
   * A token written on `node` (RESTORE during slot migration) that the inventory holds for
   * another node: move it without a lifecycle event. True when it was moved.
   */
  claim(kind: string, fp: string, node: number): boolean {
    const e = this.#kinds.get(kind)?.get(fp);
    if (!e || e.node === node) return false;
    e.node = node;
    this.#touch(node, kind, fp);
    return true;
  }

  /**
   * Removes every token still assigned to a node that left the topology (after the remaining
   * nodes reconciled, whatever they did not claim is gone) and returns them.
   */
  retireNode(node: number): { kind: string; fingerprint: string; entry: InventoryEntry }[] {
    const out: { kind: string; fingerprint: string; entry: InventoryEntry }[] = [];
    for (const [kind, m] of this.#kinds) {
      for (const [fp, e] of m) {
        if (e.node !== node) continue;
        m.delete(fp);
        out.push({ kind, fingerprint: fp, entry: e });
      }
    }
    return out;
  }

  #touch(node: number, kind: string, fp: string): void {
    const t = this.#touched.get(node);
    if (t) t.add(`${kind}\0${fp}`);
  }
}

/** PEXPIRETIME is absolute and exact, so equal expiries compare equal (NaN = unknown never does). */
function sameDue(a: number | null, b: number | null): boolean {
  return a === b;
}
