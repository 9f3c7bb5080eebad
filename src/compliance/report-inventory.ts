import type { ChurnBucket, LifecycleCounts } from './report-types.js';

/** The fields of a record the inventory replay reads. */
export interface ReplayRecord {
  seq: number;
  time: number;
  type: string;
  kind: string | null;
  fingerprint: string | null;
  attrs: Record<string, unknown>;
}

interface NodeState {
  /** A keyspace.baseline stated this node's inventory at some point: its sizes are known. */
  baselined: boolean;
  /** kind → fingerprints known live. */
  live: Map<string, Set<string>>;
  /** kind → tokens the last baseline counted that have not been seen since (known by count only). */
  counted: Map<string, number>;
  /**
   * kind → fingerprints made live since this run's start or the node's last baseline or gap
   * record: the baseline's own `token.present` records (and live writes during its SCAN) come
   * BEFORE its `keyspace.baseline` record, so they are what that record states by fingerprint.
   */
  recent: Map<string, Set<string>>;
}

const ENDS = new Set(['expired', 'deleted', 'evicted', 'vanished']);

/** A zeroed lifecycle counter. */
export function emptyLifecycle(): LifecycleCounts {
  return {
    issued: 0,
    refreshed: 0,
    deleted: 0,
    expired: 0,
    evicted: 0,
    vanished: 0,
    renamed: 0,
    persisted: 0,
    present: 0,
  };
}

/**
 * Replays token records into a per-kind inventory (docs/compliance.md#inventory). A
 * `keyspace.baseline` resets its node to the counts it states (by fingerprint for the tokens
 * this run recorded before it: its own `token.present` records); afterwards writes add
 * fingerprints and ends remove them. Tokens a baseline only counted are removed by count when
 * an end names a fingerprint the replay does not know. Kept per node, because each node's
 * baseline describes that node only. A `token.present` (a token a baseline SCAN found) makes a
 * counted token known by fingerprint, so its later rewrite is a refresh, not a second token.
 * Sizes are unknown (null) until every node has had a baseline: tokens written before
 * tokenwatch first looked are unseen, not absent.
 */
export class InventoryReplay {
  readonly #nodes = new Map<string, NodeState>();
  readonly kinds = new Set<string>();

  /** Applies one record; returns which lifecycle counter it moves, if any. */
  apply(r: ReplayRecord): keyof LifecycleCounts | undefined {
    if (r.type === 'system.started') {
      // A new run: its baselines state what its own records say from here on.
      for (const n of this.#nodes.values()) n.recent = new Map();
      return undefined;
    }
    if (r.type === 'keyspace.gap') {
      this.#node(nodeOf(r)).recent = new Map();
      return undefined;
    }
    if (r.type === 'keyspace.baseline') {
      const counts = r.attrs.counts;
      const before = this.#node(nodeOf(r));
      // What the SCAN found and this run recorded by fingerprint stays known by fingerprint
      // (a later rewrite of it is a refresh); the rest of the counts is known by count only.
      // Fingerprints of an earlier run are dropped: the baseline replaces what it believed.
      const state: NodeState = {
        baselined: true,
        live: before.recent,
        counted: new Map(),
        recent: new Map(),
      };
      if (typeof counts === 'object' && counts !== null) {
        for (const [kind, n] of Object.entries(counts as Record<string, unknown>)) {
          if (typeof n === 'number' && n > 0) {
            const known = state.live.get(kind)?.size ?? 0;
            if (n > known) state.counted.set(kind, n - known);
            this.kinds.add(kind);
          }
        }
      }
      this.#nodes.set(nodeOf(r), state);
      return undefined;
    }
    if (!r.type.startsWith('token.') || r.kind === null || r.fingerprint === null) return undefined;
    const event = r.type.slice('token.'.length);
    const kind = r.kind;
    this.kinds.add(kind);
    const node = this.#node(nodeOf(r));
    const live = set(node, kind);
    switch (event) {
      case 'present': {
        // Known live at the SCAN: a token the baseline counted now has a fingerprint.
        if (!live.has(r.fingerprint)) {
          const c = node.counted.get(kind) ?? 0;
          if (c > 0) node.counted.set(kind, c - 1);
          live.add(r.fingerprint);
        }
        set(node, kind, 'recent').add(r.fingerprint);
        return 'present';
      }
      case 'written':
      case 'appeared': {
        const known = live.has(r.fingerprint);
        live.add(r.fingerprint);
        set(node, kind, 'recent').add(r.fingerprint);
        return known && event === 'written' ? 'refreshed' : 'issued';
      }
      case 'ttl_changed':
        return 'refreshed';
      case 'persisted':
        return 'persisted';
      case 'renamed': {
        const from = r.attrs.renamedFrom as
          { kind?: unknown; fingerprint?: unknown } | null | undefined;
        if (from && typeof from.kind === 'string' && typeof from.fingerprint === 'string') {
          this.#remove(node, from.kind, from.fingerprint);
        }
        live.add(r.fingerprint);
        set(node, kind, 'recent').add(r.fingerprint);
        return 'renamed';
      }
      default:
        if (!ENDS.has(event)) return undefined;
        this.#remove(node, kind, r.fingerprint);
        return event as 'deleted' | 'expired' | 'evicted' | 'vanished';
    }
  }

  /** Whether every node seen so far had a baseline (and at least one node was seen). */
  known(): boolean {
    if (this.#nodes.size === 0) return false;
    for (const n of this.#nodes.values()) if (!n.baselined) return false;
    return true;
  }

  /** Live tokens per kind (every kind seen so far, zeros included); null for all when unknown. */
  sizesOrUnknown(): Record<string, number | null> {
    const s = this.sizes();
    if (this.known()) return s;
    return Object.fromEntries(Object.keys(s).map((k) => [k, null]));
  }

  /** Live tokens per kind as far as the replay knows (every kind seen so far, zeros included). */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of [...this.kinds].sort()) out[k] = 0;
    for (const n of this.#nodes.values()) {
      for (const [k, s] of n.live) out[k] = (out[k] ?? 0) + s.size;
      for (const [k, c] of n.counted) out[k] = (out[k] ?? 0) + c;
    }
    return out;
  }

  total(): number {
    let t = 0;
    for (const v of Object.values(this.sizes())) t += v;
    return t;
  }

  #node(name: string): NodeState {
    let n = this.#nodes.get(name);
    if (!n) {
      n = { baselined: false, live: new Map(), counted: new Map(), recent: new Map() };
      this.#nodes.set(name, n);
    }
    return n;
  }

  #remove(node: NodeState, kind: string, fingerprint: string): void {
    node.recent.get(kind)?.delete(fingerprint);
    if (set(node, kind).delete(fingerprint)) return;
    const c = node.counted.get(kind) ?? 0;
    if (c > 0) node.counted.set(kind, c - 1);
  }
}

function nodeOf(r: ReplayRecord): string {
  return typeof r.attrs.node === 'string' ? r.attrs.node : '';
}

function set(node: NodeState, kind: string, which: 'live' | 'recent' = 'live'): Set<string> {
  const m = node[which];
  let s = m.get(kind);
  if (!s) {
    s = new Set();
    m.set(kind, s);
  }
  return s;
}

/** Chart bucket widths, smallest first: the first that gives at most `max` buckets is used. */
const WIDTHS = [
  60_000,
  300_000,
  900_000,
  3_600_000,
  3 * 3_600_000,
  6 * 3_600_000,
  12 * 3_600_000,
  86_400_000,
  7 * 86_400_000,
  30 * 86_400_000,
];

/** Churn per time bucket over [from, to). Records outside the window count in the edge bucket. */
export class ChurnSeries {
  readonly bucketMs: number;
  readonly buckets: ChurnBucket[];
  readonly #from: number;
  readonly #touched = new Set<ChurnBucket>();

  constructor(from: number, to: number, maxBuckets = 72) {
    const span = Math.max(1, to - from);
    this.bucketMs = WIDTHS.find((w) => span / w <= maxBuckets) ?? Math.ceil(span / maxBuckets);
    this.#from = from;
    const n = Math.max(1, Math.ceil(span / this.bucketMs));
    this.buckets = Array.from({ length: n }, (_, i) => ({
      start: from + i * this.bucketMs,
      issued: 0,
      refreshed: 0,
      ended: 0,
      live: null,
    }));
  }

  add(time: number, counter: keyof LifecycleCounts): void {
    const b = this.#bucket(time);
    if (counter === 'issued') b.issued += 1;
    else if (counter === 'refreshed') b.refreshed += 1;
    else if (
      counter === 'deleted' ||
      counter === 'expired' ||
      counter === 'evicted' ||
      counter === 'vanished'
    )
      b.ended += 1;
  }

  /** Records the inventory after a record at `time` (the last one per bucket wins). */
  live(time: number, total: number | null): void {
    this.#bucket(time).live = total;
    this.#touched.add(this.#bucket(time));
  }

  /** Fills buckets without records with the inventory carried over from the one before. */
  finish(startTotal: number | null): void {
    let carry = startTotal;
    for (const b of this.buckets) {
      if (!this.#touched.has(b)) b.live = carry;
      carry = b.live;
    }
  }

  #bucket(time: number): ChurnBucket {
    const i = Math.min(
      this.buckets.length - 1,
      Math.max(0, Math.floor((time - this.#from) / this.bucketMs)),
    );
    return this.buckets[i] as ChurnBucket;
  }
}
