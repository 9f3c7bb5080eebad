import type { Redis } from 'ioredis';
import type { KeyEventApplier } from './event-applier.js';
import type { Inventory, ReconcileChange, Snapshot } from './inventory.js';
import type { WatcherSink } from './node-watcher.js';
import { scanSnapshot, type FoundToken, type ScanResult } from './reconcile.js';
import type { TokenRules } from './token-rules.js';

/**
 * Restored dues went through two clock-offset estimates (previous run, this one): within this
 * they are the same expiry, not a TTL change.
 */
const RESTORE_TOLERANCE_MS = 1000;

/** `token.present` records queued between two looks at the ledger's queue. */
const PRESENT_CHUNK = 200;

/** What a node's reconciliation needs from its watcher. */
export interface ReconcileContext {
  nodeIndex: number;
  commands: Redis;
  rules: TokenRules;
  inventory: Inventory;
  sink: WatcherSink;
  scanCount: number;
  maxKeyBytes: number;
  expiryBacklogToleranceMs: number;
  now: () => number;
  events: KeyEventApplier;
  /** Resolves once every notification received so far is applied. */
  idle: () => Promise<void>;
  /**
   * The node's watcher closed (e.g. a master that left the topology): a SCAN answered late must
   * change nothing any more, since the node's tokens may be retired already.
   */
  closed?: () => boolean;
}

export interface Reconciled {
  scan: ScanResult;
  /** The gap's changes (empty for a baseline), with key attributes and backlog marks. */
  changes: ReconcileChange[];
  /** `token.present` records written. */
  present: number;
  end: number;
}

/**
 * One SCAN of a node compared with the inventory:
 * - `baseline`: the inventory knows nothing of the node; every token found is recorded as
 *   `token.present` (the baseline is evidence: SOC 2 CC6.1/CC6.2 cover tokens that predate
 *   tokenwatch too), page by page, waiting on the ledger's queue;
 * - `gap`: a blind spot; what changed is returned (appeared, vanished, ttl_changed);
 * - `restore`: a restart's blind spot against the inventory the ledger left (dues compared
 *   within RESTORE_TOLERANCE_MS); changes as for a gap, unchanged tokens as `token.present`
 *   (nothing in this run knows them yet).
 * Live events received before a page is handled are applied first, and a token they touched
 * since the SCAN began is theirs to record.
 */
export async function reconcileNode(
  o: ReconcileContext,
  mode: 'baseline' | 'gap' | 'restore',
): Promise<Reconciled> {
  const node = o.nodeIndex;
  const inv = o.inventory;
  const tolerance = mode === 'restore' ? RESTORE_TOLERANCE_MS : 0;
  // A gap's candidate changes (tokens new to the inventory or with another due): their keys, to
  // record their key attributes. Only candidates: a million unchanged keys are not kept.
  const candidates = new Map<string, Buffer>();
  let present = 0;
  const record = (f: FoundToken, at: number): void => {
    const c = o.rules.classify(f.key.toString('latin1'));
    if (!c) return;
    o.events.present(c, f.due, at);
    present += 1;
  };
  const onPage = async (page: FoundToken[]): Promise<void> => {
    if (mode === 'gap') {
      for (const f of page)
        if (inv.wouldChange(node, f.kind, f.digest, f.due)) candidates.set(key(f), f.key);
      return;
    }
    await o.idle();
    for (let i = 0; i < page.length; i += PRESENT_CHUNK) {
      // In chunks, so a page never overflows a small ledger queue on its own.
      await o.sink.drain?.();
      stopIfClosed(o);
      const at = o.now();
      for (const f of page.slice(i, i + PRESENT_CHUNK)) {
        if (mode === 'baseline') {
          if (inv.seed(node, f.kind, f.digest, f.due)) record(f, at);
        } else if (inv.wouldChange(node, f.kind, f.digest, f.due, tolerance)) {
          candidates.set(key(f), f.key);
        } else if (!inv.isTouched(node, f.kind, f.digest)) {
          record(f, at);
        }
      }
    }
  };
  inv.beginReconcile(node);
  o.events.beginOwnScan(o.now());
  let scan: ScanResult;
  try {
    scan = await scanSnapshot(o.commands, o.rules, {
      count: o.scanCount,
      maxKeyBytes: o.maxKeyBytes,
      expiries: (keys) => o.events.expiries(keys),
      onPage,
    });
  } catch (err) {
    o.events.endOwnScan(o.now());
    inv.abortReconcile(node);
    throw err;
  }
  // Redis publishes a page's notifications before its reply; one turn of the event loop reads
  // what is already on the subscriber socket, so every notification the SCAN caused is in.
  await new Promise((r) => setImmediate(r));
  o.events.endOwnScan(o.now());
  // Apply every notification that arrived during the SCAN before comparing.
  await o.idle();
  if (o.closed?.()) {
    inv.abortReconcile(node);
    stopIfClosed(o);
  }
  const changes = inv.applySnapshot(node, scan.snapshot, mode !== 'baseline', tolerance);
  const end = o.now();
  const offsetMs = o.events.offsetMs;
  for (const ch of changes) {
    if (ch.change === 'vanished') {
      const due = ch.before?.due;
      // Gone long after its due time: Redis expired it (lazily) while we were blind.
      if (typeof due === 'number' && due - offsetMs + o.expiryBacklogToleranceMs < end)
        ch.backlog = true;
      continue;
    }
    const k = ch.digest === undefined ? undefined : candidates.get(`${ch.kind}\0${ch.digest}`);
    const c = k ? o.rules.classify(k.toString('latin1')) : undefined;
    if (c) ch.keyAttrs = c.keyAttrs;
  }
  return { scan, changes, present, end };
}

const key = (f: FoundToken): string => `${f.kind}\0${f.digest}`;

function stopIfClosed(o: ReconcileContext): void {
  if (o.closed?.()) throw new Error('the node watcher closed during the reconciliation');
}

/** Per kind: tokens found, of them without TTL, and already past due (`redisNow`, Redis clock). */
export function baselineCounts(
  snapshot: Snapshot,
  redisNow: number,
): {
  counts: Record<string, number>;
  noTtl: Record<string, number>;
  pastDue: Record<string, number>;
} {
  const counts: Record<string, number> = {};
  const noTtl: Record<string, number> = {};
  const pastDue: Record<string, number> = {};
  for (const [kind, m] of snapshot) {
    counts[kind] = m.size;
    let none = 0;
    let past = 0;
    for (const due of m.values()) {
      if (due === null) none += 1;
      else if (due <= redisNow) past += 1;
    }
    noTtl[kind] = none;
    pastDue[kind] = past;
  }
  return { counts, noTtl, pastDue };
}
