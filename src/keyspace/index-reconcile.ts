import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { CacheHealthMetrics } from '../metrics/cache-health-metrics.js';
import { IndexRules, type CompiledIndexRule } from './index-rules.js';
import type { Inventory } from './inventory.js';
import type { TokenRules } from './token-rules.js';

/** What one index reconciliation found for one index rule. Counts and fingerprints only. */
export interface IndexFindings {
  kind: string;
  /** Index keys read. */
  keys: number;
  members: number;
  /** Members whose token is gone (or that name no token of the kind at all). */
  orphans: number;
  /** Index keys holding at least one orphan. */
  keysWithOrphans: number;
  /** HMAC fingerprints of some orphaned tokens (at most indexes.maxFingerprints). */
  fingerprints: string[];
}

export interface IndexReport {
  at: number;
  reason: 'schedule' | 'gap' | 'manual';
  durationMs: number;
  indexes: Record<string, IndexFindings>;
}

export interface IndexNode {
  label: string;
  client: Redis;
  /** False while the node's inventory is not baselined (then nothing is judged). */
  ready: boolean;
}

export interface IndexReconcilerOptions {
  rules: IndexRules;
  tokenRules: TokenRules;
  inventory: Inventory;
  nodes: () => IndexNode[];
  metrics: CacheHealthMetrics;
  scanCount: number;
  maxKeyBytes: number;
  maxFingerprints: number;
  intervalMs: number;
  now: () => number;
  logger: Logger;
  onReport: (r: IndexReport) => void;
}

/** Members per SSCAN/HSCAN page, and token keys per confirmation pipeline. */
const PAGE = 1000;

/**
 * Reconciles index keys against the token inventory on a schedule and after each gap: every
 * member of every index key is mapped to its token key and looked up in the inventory; members
 * the inventory does not hold are confirmed absent in Redis with OBJECT ENCODING (which neither
 * publishes `keymiss` nor touches the key's LRU clock) before they count as orphans, so a token
 * written a moment ago, whose event is still in flight, is never reported.
 *
 * Trust: members are read from Redis and treated as hostile bytes: they are only concatenated
 * into a key, classified by the token rules and HMAC-fingerprinted; never logged or stored raw.
 */
export class IndexReconciler {
  readonly #o: IndexReconcilerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<IndexReport | undefined> | undefined;
  #again: IndexReport['reason'] | undefined;
  #closed = false;

  constructor(options: IndexReconcilerOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#o.rules.rules.length === 0) return;
    this.#timer = setInterval(() => void this.run('schedule'), this.#o.intervalMs);
    this.#timer.unref();
  }

  /**
   * Runs one reconciliation (one at a time: a request during a run runs once more after it).
   * Undefined when skipped (a node not baselined yet) or failed.
   */
  run(reason: IndexReport['reason'] = 'manual'): Promise<IndexReport | undefined> {
    if (this.#running) {
      this.#again = reason;
      return this.#running;
    }
    this.#running = this.#run(reason).finally(() => {
      this.#running = undefined;
      const again = this.#again;
      this.#again = undefined;
      if (again && !this.#closed) void this.run(again);
    });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#again = undefined;
    await this.#running;
  }

  async #run(reason: IndexReport['reason']): Promise<IndexReport | undefined> {
    const o = this.#o;
    if (this.#closed || o.rules.rules.length === 0) return undefined;
    const nodes = o.nodes();
    if (nodes.length === 0 || nodes.some((n) => !n.ready || n.client.status !== 'ready')) {
      o.metrics.indexReconciles.inc({ outcome: 'skipped' });
      return undefined;
    }
    const started = performance.now();
    const indexes: Record<string, IndexFindings> = {};
    for (const r of o.rules.rules) {
      indexes[r.name] = {
        kind: r.kind,
        keys: 0,
        members: 0,
        orphans: 0,
        keysWithOrphans: 0,
        fingerprints: [],
      };
    }
    try {
      for (const n of nodes) await this.#node(n.client, indexes);
    } catch (err) {
      o.metrics.indexReconciles.inc({ outcome: 'failed' });
      o.logger.warn({ err: (err as Error).message }, 'index reconciliation failed');
      return undefined;
    }
    const report: IndexReport = {
      at: o.now(),
      reason,
      durationMs: Math.round(performance.now() - started),
      indexes,
    };
    for (const [index, f] of Object.entries(indexes)) {
      o.metrics.indexOrphans.set({ index }, f.orphans);
      o.metrics.indexMembers.set({ index }, f.members);
    }
    o.metrics.indexReconciles.inc({ outcome: 'ok' });
    o.onReport(report);
    return report;
  }

  async #node(client: Redis, out: Record<string, IndexFindings>): Promise<void> {
    const o = this.#o;
    // One SCAN per distinct literal prefix of the index templates.
    const prefixes = [...new Set(o.rules.rules.map((r) => r.template.prefix))];
    const seen = new Set<string>();
    for (const prefix of prefixes) {
      let cursor = '0';
      do {
        const pattern = Buffer.from(`${globEscape(prefix)}*`, 'latin1');
        const [next, keys] = (await client.callBuffer(
          'SCAN',
          cursor,
          'MATCH',
          pattern,
          'COUNT',
          o.scanCount,
        )) as [Buffer, Buffer[]];
        cursor = next.toString();
        const page: { key: Buffer; rule: CompiledIndexRule }[] = [];
        for (const key of keys) {
          if (key.length > o.maxKeyBytes) continue;
          const k = key.toString('latin1');
          if (seen.has(k)) continue;
          const rule = o.rules.match(k);
          if (!rule) continue;
          seen.add(k);
          page.push({ key, rule });
        }
        if (page.length === 0) continue;
        // One round trip for the types of a whole SCAN page.
        const pipe = client.pipeline();
        for (const p of page) pipe.type(p.key);
        const types = (await pipe.exec()) ?? [];
        for (const [i, p] of page.entries()) {
          const t = types[i]?.[1];
          if (t === 'set' || t === 'hash')
            await this.#index(client, p.key, t, p.rule, out[p.rule.name] as IndexFindings);
        }
      } while (cursor !== '0');
    }
  }

  async #index(
    client: Redis,
    key: Buffer,
    type: 'set' | 'hash',
    rule: CompiledIndexRule,
    f: IndexFindings,
  ): Promise<void> {
    f.keys += 1;
    let orphansHere = 0;
    let cursor = '0';
    do {
      let members: Buffer[];
      if (type === 'set') {
        const [next, page] = await client.sscanBuffer(key, cursor, 'COUNT', PAGE);
        cursor = next.toString();
        members = page;
      } else {
        const [next, page] = await client.hscanBuffer(key, cursor, 'COUNT', PAGE);
        cursor = next.toString();
        // Fields only: a hash's values may be anything (even tokens) and are dropped unread.
        members = page.filter((_, i) => i % 2 === 0);
      }
      orphansHere += await this.#judge(client, rule, members, f);
    } while (cursor !== '0');
    if (orphansHere > 0) f.keysWithOrphans += 1;
  }

  /** Counts the members of one page whose token is gone; returns how many. */
  async #judge(
    client: Redis,
    rule: CompiledIndexRule,
    members: Buffer[],
    f: IndexFindings,
  ): Promise<number> {
    const o = this.#o;
    f.members += members.length;
    let orphans = 0;
    const candidates: { tokenKey: string; fingerprint: string }[] = [];
    for (const m of members) {
      const tokenKey = IndexRules.tokenKey(rule, m.toString('latin1'));
      const c = tokenKey.length > o.maxKeyBytes ? undefined : o.tokenRules.classify(tokenKey);
      if (!c || c.kind !== rule.kind) {
        orphans += 1; // names no token of the kind: cannot refer to a live token
        continue;
      }
      if (o.inventory.get(c.kind, c.fingerprint) === undefined)
        candidates.push({ tokenKey, fingerprint: c.fingerprint });
    }
    for (let i = 0; i < candidates.length; i += PAGE) {
      const chunk = candidates.slice(i, i + PAGE);
      const pipe = client.pipeline();
      for (const c of chunk) pipe.call('OBJECT', 'ENCODING', Buffer.from(c.tokenKey, 'latin1'));
      const replies = (await pipe.exec()) ?? [];
      chunk.forEach((c, j) => {
        const [err, value] = replies[j] ?? [null, null];
        // An error (e.g. MOVED on a Cluster node that does not hold the token's slot): the
        // inventory, which covers every node, already said it is gone.
        if (!err && value !== null) return;
        orphans += 1;
        if (f.fingerprints.length < o.maxFingerprints && !f.fingerprints.includes(c.fingerprint))
          f.fingerprints.push(c.fingerprint);
      });
    }
    f.orphans += orphans;
    return orphans;
  }
}

/** SCAN MATCH is a glob: the literal prefix must not be read as one. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
