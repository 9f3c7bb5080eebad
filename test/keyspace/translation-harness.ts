import { randomBytes } from 'node:crypto';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { tokenRuleSchema } from '../../src/config/schema.js';
import type { TokenEvent } from '../../src/domain/token-event.js';
import type { InventoryEntry } from '../../src/keyspace/inventory.js';
import {
  classifyBatch,
  discardSuperseded,
  pendingItems,
  markExpiryFlush,
  planLookup,
  recordExpiries,
  type InventoryView,
  type Item,
} from '../../src/keyspace/notification-batch.js';
import {
  translate,
  type PendingRename,
  type TranslateContext,
} from '../../src/keyspace/token-translation.js';
import { TokenRules } from '../../src/keyspace/token-rules.js';

/**
 * Drives the pure translation the way the watcher does (classify, plan the look-up, record the
 * PEXPIRETIME replies, drop those a later notification superseded, mark expiry flushes,
 * translate, apply the changes), with Redis replaced by a table of PEXPIRETIME replies.
 * Keys are named, not fingerprinted, in what it returns.
 */

export const NOW = 1_800_000_000_000;
export const TOLERANCE = 2000;
export const MAX_KEY_BYTES = 64;

const fingerprinter = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
export const rules = new TokenRules(
  [
    tokenRuleSchema.parse({ kind: 'access_token', key: 'at:{token}' }),
    tokenRuleSchema.parse({ kind: 'session', key: 'sess:{sid}' }),
  ],
  fingerprinter,
);

/** [event, key] as Redis publishes it on `__keyevent@0__:<event>`. */
export type Note = readonly [event: string, key: string];

/** Inventory entry by key name (node 0 unless given). */
export type Entries = Record<string, { due: number | null; written: number; node?: number }>;

export interface Run {
  /** What the inventory holds before (by key name). */
  before?: Entries;
  /** Notifications, batch by batch, received at NOW + their index over all batches. */
  batches: readonly (readonly Note[])[];
  /** PEXPIRETIME replies when the look-ups run (-2 for a key not named); 'fail': look-up fails. */
  pexpiretime?: Record<string, number> | 'fail';
  ctx?: Partial<TranslateContext>;
  /** Keys migrated to this node (cluster RESTORE claimed on arrival). */
  migrated?: readonly string[];
}

/**
 * A token event by key name, times relative to NOW; fields left undefined are left out, except
 * an expiry the event states as unknown (`dueAt` / `ttlMs` present but undefined): 'unknown'.
 */
export type Ev = Record<string, unknown>;

export interface Outcome {
  events: Ev[];
  /** The inventory after (by key name; only keys that were named in the run). */
  inventory: Record<string, InventoryEntry>;
  unmatched: number;
  raw: TokenEvent[];
}

class MapInventory implements InventoryView {
  readonly m = new Map<string, InventoryEntry>();
  get(kind: string, fp: string): InventoryEntry | undefined {
    const e = this.m.get(`${kind} ${fp}`);
    return e ? { ...e } : undefined;
  }
  set(kind: string, fp: string, e: InventoryEntry): void {
    this.m.set(`${kind} ${fp}`, { ...e });
  }
  delete(kind: string, fp: string): void {
    this.m.delete(`${kind} ${fp}`);
  }
}

export function run(r: Run): Outcome {
  const names = new Map<string, string>();
  const id = (key: string): { kind: string; fingerprint: string } => {
    const c = rules.classify(key);
    if (!c) throw new Error(`${key} is not a token key`);
    names.set(`${c.kind} ${c.fingerprint}`, key);
    return c;
  };
  const inv = new MapInventory();
  for (const [key, e] of Object.entries(r.before ?? {})) {
    const c = id(key);
    inv.set(c.kind, c.fingerprint, { due: e.due, written: e.written, node: e.node ?? 0 });
  }
  for (const b of r.batches) for (const [, key] of b) if (rules.classify(key)) id(key);
  const ctx: TranslateContext = {
    nodeIndex: 0,
    label: 'redis:6379',
    db: 0,
    offsetMs: 0,
    expiryBacklogToleranceMs: TOLERANCE,
    ...r.ctx,
  };
  let n = 0;
  const itemsOf = (b: readonly Note[]): Item[] =>
    b.map(([event, key]) => ({
      event,
      key: Buffer.from(key, 'latin1'),
      at: NOW + n++,
      migrated: r.migrated?.includes(key) && event === 'restore' ? true : undefined,
    }));
  const batches: Item[][] = r.batches.map(itemsOf);
  const raw: TokenEvent[] = [];
  let unmatched = 0;
  let pending: PendingRename | undefined;
  batches.forEach((items, bi) => {
    const { prepared, unmatched: u } = classifyBatch(
      items,
      (k) => rules.classify(k),
      MAX_KEY_BYTES,
    );
    unmatched += u;
    const need = planLookup(prepared);
    const px = r.pexpiretime;
    const replies = px === 'fail' ? undefined : need.map((p) => px?.[p.k] ?? -2);
    recordExpiries(need, replies);
    if (replies) {
      discardSuperseded(need, pendingItems(batches[bi + 1] ?? []), prepared.at(-1), MAX_KEY_BYTES);
    }
    markExpiryFlush(prepared, inv, ctx);
    const t = translate(prepared, inv, ctx, pending);
    pending = t.pendingRename;
    for (const ch of t.changes) {
      if (ch.op === 'set') inv.set(ch.kind, ch.fingerprint, ch.entry);
      else inv.delete(ch.kind, ch.fingerprint);
    }
    raw.push(...t.events);
  });
  const events = raw.map((ev) => {
    const out: Ev = {
      type: ev.type,
      key: names.get(`${ev.kind} ${ev.fingerprint}`),
      redisEvent: ev.redisEvent,
      observedAt: ev.observedAt - NOW,
    };
    for (const f of [
      'dueAt',
      'ttlMs',
      'lifetimeMs',
      'expiryLagMs',
      'backlog',
      'rewrite',
    ] as const) {
      if (ev[f] !== undefined) out[f] = ev[f];
      else if (f in ev && (f === 'dueAt' || f === 'ttlMs')) out[f] = 'unknown';
    }
    if (ev.renamedFrom) {
      out.renamedFrom = names.get(`${ev.renamedFrom.kind} ${ev.renamedFrom.fingerprint}`);
    }
    return out;
  });
  const inventory: Record<string, InventoryEntry> = {};
  for (const [k, e] of inv.m) {
    const name = names.get(k);
    if (name) inventory[name] = e;
  }
  return { events, inventory, unmatched, raw };
}
