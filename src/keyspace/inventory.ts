import { TokenTable, tokenKey } from './token-table.js';

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
  /** The inventory's key of the token (its fingerprint digest), to find what SCAN saw of it. */
  digest?: string;
  /** What the key's template carries (fingerprints of secrets, other values), when known. */
  keyAttrs?: Readonly<Record<string, string>>;
  /** `vanished` long after its due time: Redis expired it while we were blind (not churn). */
  backlog?: true;
}

/** Live tokens of one kind split by due time (`now` on each node's Redis clock). */
export interface DueCounts {
  /** Due in the future, or no TTL, or expiry unknown. */
  live: number;
  /** Due time passed, key not yet deleted by Redis (lazy expiry). */
  pastDue: number;
}

/**
 * What SCAN found, per kind: fingerprint digest (Fingerprinter.digestLatin1, the inventory's own
 * key for a fingerprint of the current HMAC key) -> due.
 */
export type Snapshot = Map<string, Map<string, number | null>>;

/**
 * Entries live in a compact per-kind TokenTable (a million tokens in ~65 MB of typed arrays
 * rather than ~220 MB as objects in a Map); get() and entries() hand out fresh InventoryEntry copies,
 * so changing one changes nothing here: set(), delete() and claim() do.
 */
export class Inventory {
  readonly #kinds = new Map<string, TokenTable>();
  /** Tokens touched by live events per node while that node is being reconciled. */
  readonly #touched = new Map<number, Set<string>>();

  readonly #prefix: string;

  /** `prefix`: Fingerprinter.prefix, the fingerprints whose digests snapshots carry. */
  constructor(kinds: readonly string[], prefix: string) {
    this.#prefix = prefix;
    for (const k of kinds) this.#kinds.set(k, new TokenTable(prefix));
  }

  #table(kind: string): TokenTable {
    let t = this.#kinds.get(kind);
    if (!t) {
      t = new TokenTable(this.#prefix);
      this.#kinds.set(kind, t);
    }
    return t;
  }

  /**
   * `digest`, where the caller has it (ClassifiedKey.digest): Fingerprinter.digestLatin1 of the
   * secret whose fingerprint under the current key is `fp`, the table's key for `fp`; spares
   * decoding `fp`'s hex. It must be that digest: nothing here checks the two agree.
   */
  get(kind: string, fp: string, digest?: string): InventoryEntry | undefined {
    return this.#kinds.get(kind)?.getKey(this.#keyOf(fp, digest));
  }

  set(kind: string, fp: string, entry: InventoryEntry, digest?: string): void {
    const key = this.#keyOf(fp, digest);
    this.#table(kind).setKey(key, entry.due, entry.written, entry.node);
    this.#touch(entry.node, kind, key);
  }

  delete(kind: string, fp: string, node: number, digest?: string): InventoryEntry | undefined {
    const key = this.#keyOf(fp, digest);
    this.#touch(node, kind, key);
    return this.#kinds.get(kind)?.deleteKey(key);
  }

  /** The tables' key for `fp`: the caller's digest when it has one, else decoded (tokenKey). */
  #keyOf(fp: string, digest: string | undefined): string {
    return digest ?? tokenKey(this.#prefix, fp);
  }

  size(kind: string): number {
    return this.#kinds.get(kind)?.size ?? 0;
  }

  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, t] of this.#kinds) out[k] = t.size;
    return out;
  }

  kinds(): string[] {
    return [...this.#kinds.keys()];
  }

  *entries(kind: string): IterableIterator<[string, InventoryEntry]> {
    const t = this.#kinds.get(kind);
    if (t) yield* t.entries();
  }

  /** Live and past-due tokens per kind; `redisNow(node)` is that node's clock now (ms). */
  dueCounts(redisNow: (node: number) => number): Record<string, DueCounts> {
    const out: Record<string, DueCounts> = {};
    for (const [k, t] of this.#kinds) {
      const pastDue = t.countPastDue(redisNow);
      out[k] = { live: t.size - pastDue, pastDue };
    }
    return out;
  }

  /**
   * A baseline SCAN found a token on `node`: store it (write time unknown) unless a live event
   * touched it since beginReconcile or it is known already. True when stored: then the token is
   * the baseline's to record (`token.present`); otherwise a live event recorded it.
   */
  seed(node: number, kind: string, digest: string, due: number | null): boolean {
    const t = this.#table(kind);
    const touched = this.#touched.get(node);
    if ((touched && touched.has(`${kind}\0${digest}`)) || t.getKey(digest)) return false;
    t.setKey(digest, due, 0, node);
    return true;
  }

  /** A live event touched the token since beginReconcile(node). */
  isTouched(node: number, kind: string, digest: string): boolean {
    return this.#touched.get(node)?.has(`${kind}\0${digest}`) ?? false;
  }

  /** Whether applying SCAN's `due` for this token on `node` would record a change. */
  wouldChange(
    node: number,
    kind: string,
    digest: string,
    due: number | null,
    toleranceMs = 0,
  ): boolean {
    const before = this.#kinds.get(kind)?.getKey(digest);
    return !before || (before.node === node && !sameDue(before.due, due, toleranceMs));
  }

  /**
   * Adds `deltaMs` to every finite due of `node` (dues restored from the ledger are local times;
   * the watcher moves them onto its Redis clock once it has measured the offset).
   */
  shiftDue(node: number, deltaMs: number): void {
    for (const t of this.#kinds.values()) {
      const keys: string[] = [];
      for (const [key, n] of t.nodes()) if (n === node) keys.push(key);
      for (const key of keys) {
        const e = t.getKey(key);
        if (e && typeof e.due === 'number' && Number.isFinite(e.due))
          t.setKey(key, e.due + deltaMs, e.written, node);
      }
    }
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
   * `report` false (the baseline, whose changes nobody reads) skips building the change list.
   */
  applySnapshot(
    node: number,
    snapshot: Snapshot,
    report = true,
    toleranceMs = 0,
  ): ReconcileChange[] {
    const touched = this.#touched.get(node) ?? new Set<string>();
    this.#touched.delete(node);
    const changes: ReconcileChange[] = [];
    for (const kind of new Set([...this.#kinds.keys(), ...snapshot.keys()])) {
      const live = this.#table(kind);
      const seen = snapshot.get(kind) ?? new Map<string, number | null>();
      const gone: string[] = [];
      for (const [key, n] of live.nodes()) {
        if (n !== node || seen.has(key) || (touched.size > 0 && touched.has(`${kind}\0${key}`)))
          continue;
        gone.push(key);
      }
      for (const key of gone) {
        const before = live.deleteKey(key);
        if (report && before) {
          const fingerprint = live.fingerprintOf(key);
          changes.push({
            kind,
            fingerprint,
            change: 'vanished',
            before,
            due: before.due,
            digest: key,
          });
        }
      }
      for (const [key, due] of seen) {
        if (touched.size > 0 && touched.has(`${kind}\0${key}`)) continue;
        const before = live.getKey(key);
        if (before && before.node !== node) {
          // Cluster failover or slot migration: the same token, now served by this node.
          live.setKey(key, due, before.written, node);
          continue;
        }
        if (!before) {
          live.setKey(key, due, 0, node);
          if (report) {
            const fingerprint = live.fingerprintOf(key);
            changes.push({ kind, fingerprint, change: 'appeared', due, digest: key });
          }
        } else if (before.due !== due && sameDue(before.due, due, toleranceMs)) {
          // Restored from the ledger (local time through a clock offset): the same expiry.
          live.setKey(key, due, before.written, node);
        } else if (!sameDue(before.due, due)) {
          live.setKey(key, due, before.written, node);
          if (report) {
            const fingerprint = live.fingerprintOf(key);
            changes.push({ kind, fingerprint, change: 'ttl_changed', before, due, digest: key });
          }
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
    const t = this.#kinds.get(kind);
    const key = this.#keyOf(fp, undefined);
    const e = t?.getKey(key);
    if (!t || !e || e.node === node) return false;
    t.setKey(key, e.due, e.written, node);
    this.#touch(node, kind, key);
    return true;
  }

  /**
   * Removes every token still assigned to a node that left the topology (after the remaining
   * nodes reconciled, whatever they did not claim is gone) and returns them.
   */
  retireNode(node: number): { kind: string; fingerprint: string; entry: InventoryEntry }[] {
    const out: { kind: string; fingerprint: string; entry: InventoryEntry }[] = [];
    for (const [kind, t] of this.#kinds) {
      const keys: string[] = [];
      for (const [key, n] of t.nodes()) if (n === node) keys.push(key);
      for (const key of keys) {
        const entry = t.deleteKey(key);
        if (entry) out.push({ kind, fingerprint: t.fingerprintOf(key), entry });
      }
    }
    return out;
  }

  /** `key`: the table's key of the token (tokenKey). */
  #touch(node: number, kind: string, key: string): void {
    const t = this.#touched.get(node);
    if (t) t.add(`${kind}\0${key}`);
  }
}

/**
 * PEXPIRETIME is absolute and exact, so equal expiries compare equal (NaN = unknown never does);
 * `toleranceMs` only for dues that went through a clock offset (restored from the ledger).
 */
function sameDue(a: number | null, b: number | null, toleranceMs = 0): boolean {
  if (a === null || b === null) return a === b;
  return a === b || Math.abs(a - b) <= toleranceMs;
}
