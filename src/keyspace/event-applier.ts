import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Inventory } from './inventory.js';
import {
  classifyBatch,
  discardSuperseded,
  markExpiryFlush,
  planLookup,
  recordExpiries,
  type Item,
  type PendingKeys,
  type Prepared,
} from './notification-batch.js';
import type { WatcherSink } from './node-watcher.js';
import {
  localDue,
  translate,
  ttlAt,
  type PendingRename,
  type TranslateContext,
} from './token-translation.js';
import type { ClassifiedKey, TokenRules } from './token-rules.js';

export type { Item, Prepared } from './notification-batch.js';

/** Keys per EVALSHA of the expiry script. */
const EXPIRY_CHUNK = 1000;

/**
 * PEXPIRETIME of many keys in one command: a batch of 10 000 notifications costs one command to
 * parse, not 10 000. Keys travel as ARGV, and `allow-cross-slot-keys` lets a Cluster node answer
 * for all of its own keys. Read-only.
 */
const EXPIRY_SCRIPT = `#!lua flags=no-writes,allow-cross-slot-keys
local r = {}
for i, k in ipairs(ARGV) do r[i] = redis.call('PEXPIRETIME', k) end
return r`;

/**
 * The same for metrics.keyMisses: PEXPIRETIME of a key that is gone (deleted between its
 * notification and this look-up) publishes `keymiss`, which would count our own look-up as a
 * client's miss of a token (issue #21). OBJECT ENCODING neither publishes `keymiss` nor touches
 * the LRU clock (lookupKeyReadWithFlags with LOOKUP_NONOTIFY|LOOKUP_NOTOUCH) and expires a
 * past-due key like PEXPIRETIME would; a script runs atomically, so nothing happens between the
 * two calls. -2 is PEXPIRETIME's own reply for a missing key.
 */
const QUIET_EXPIRY_SCRIPT = `#!lua flags=no-writes,allow-cross-slot-keys
local r = {}
for i, k in ipairs(ARGV) do
  if redis.call('OBJECT', 'ENCODING', k) then r[i] = redis.call('PEXPIRETIME', k) else r[i] = -2 end
end
return r`;

export interface KeyEventApplierOptions {
  nodeIndex: number;
  label: string;
  db: number;
  commands: Redis;
  rules: TokenRules;
  inventory: Inventory;
  sink: WatcherSink;
  maxKeyBytes: number;
  /** An `expired` this long after its due time is expiry backlog, not churn (ms). */
  expiryBacklogToleranceMs: number;
  logger: Logger;
  /**
   * metrics.keyMisses is on: look expiries up without publishing `keymiss` for keys that are
   * gone (QUIET_EXPIRY_SCRIPT). The PEXPIRETIME pipeline fallback cannot avoid it.
   */
  quietLookups?: boolean;
}

/**
 * One node's keyevent notifications -> token lifecycle events. This class holds the Redis I/O
 * (one batched expiry look-up per batch) and the state that spans batches (clock offset, a
 * rename split between batches, our own SCAN window); the rules themselves are pure functions
 * in notification-batch.ts (classification, pairing, which keys to look up) and
 * token-translation.ts (events and inventory changes). The watcher owns connections and blind
 * spots.
 */
export class KeyEventApplier {
  /** Redis clock minus ours (ms), kept current by the watcher (TIME). */
  offsetMs = 0;
  readonly #o: KeyEventApplierOptions;
  #pendingRename: PendingRename | undefined;
  #script: string;
  #scriptSha: string;
  #scriptOk: boolean | undefined;
  /** Our own reconciliation SCAN: since when (local ms), and when it ended (undefined: running). */
  #ownScan: { start: number; end: number | undefined } | undefined;

  constructor(options: KeyEventApplierOptions) {
    this.#o = options;
    this.#script = options.quietLookups === true ? QUIET_EXPIRY_SCRIPT : EXPIRY_SCRIPT;
    this.#scriptSha = createHash('sha1').update(this.#script).digest('hex');
  }

  /** Cluster slot migration: the token RESTOREd here is held for another node; move it. */
  claim(key: Buffer): boolean {
    if (key.length > this.#o.maxKeyBytes) return false;
    const c = this.#o.rules.classify(key.toString('latin1'));
    return c ? this.#o.inventory.claim(c.kind, c.fingerprint, this.#o.nodeIndex) : false;
  }

  /** Classify a batch (keys matching no rule are counted, not kept). */
  classify(items: Item[]): Prepared[] {
    const rules = this.#o.rules;
    const r = classifyBatch(items, (k) => rules.classify(k), this.#o.maxKeyBytes);
    if (r.unmatched > 0) this.#o.sink.unmatched(r.unmatched);
    return r.prepared;
  }

  /**
   * One pipelined PEXPIRETIME round trip for the whole batch, never one per event, for the last
   * change of each key (planLookup). Then one turn of the event loop, so that notifications
   * already on the subscriber socket reach `pending()`: a later change of a looked-up key makes
   * its reply unknown (discardSuperseded). Once `abandon` settles the reply is no longer
   * awaited: the expiries are unknown (NaN), as when the look-up fails. `tail()`: the write whose
   * own `expire` may head `pending()` (a SET EX split by the cut), asked when the reply is in.
   */
  async lookup(
    prepared: Prepared[],
    pending?: () => PendingKeys,
    abandon?: Promise<void>,
    tail?: () => Prepared | undefined,
  ): Promise<void> {
    const need = planLookup(prepared);
    if (need.length === 0) return;
    let replies: number[] | undefined;
    try {
      const asked = this.expiries(need.map((p) => p.key));
      replies = await (abandon ? Promise.race([asked, abandon.then(() => undefined)]) : asked);
    } catch {
      replies = undefined;
    }
    recordExpiries(need, replies);
    if (!pending || !replies) return;
    await new Promise((r) => setImmediate(r));
    discardSuperseded(need, pending(), tail?.(), this.#o.maxKeyBytes);
  }

  /** Expiries nobody will look up (the node's watcher closed): unknown, as after a failed look-up. */
  unknownExpiries(prepared: Prepared[]): void {
    recordExpiries(planLookup(prepared), undefined);
  }

  /**
   * PEXPIRETIME of every key, one EVALSHA per EXPIRY_CHUNK keys (also the reconciliation's SCAN
   * pages); falls back to a PEXPIRETIME pipeline where scripts are not allowed, with NaN for a
   * key whose reply failed. Chunks keep each script call short (a script blocks Redis while it
   * runs) and its argument list far from V8's limits; ioredis pipelines them on one connection.
   */
  async expiries(keys: Buffer[]): Promise<number[]> {
    if (keys.length <= EXPIRY_CHUNK) return this.#expiryChunk(keys);
    const parts: Promise<number[]>[] = [];
    for (let i = 0; i < keys.length; i += EXPIRY_CHUNK) {
      parts.push(this.#expiryChunk(keys.slice(i, i + EXPIRY_CHUNK)));
    }
    return (await Promise.all(parts)).flat();
  }

  async #expiryChunk(keys: Buffer[]): Promise<number[]> {
    const c = this.#o.commands;
    while (this.#scriptOk !== false) {
      const script = this.#script;
      try {
        const r = await this.#evalScript(keys);
        this.#scriptOk = true;
        return r;
      } catch (err) {
        const msg = (err as Error).message;
        if (script === QUIET_EXPIRY_SCRIPT && /NOPERM|can't run this command/i.test(msg)) {
          // An ACL that allows the script but not OBJECT ENCODING inside it: plain look-ups.
          if (this.#script === QUIET_EXPIRY_SCRIPT) {
            this.#o.logger.warn(
              { node: this.#o.label, err: msg },
              'OBJECT ENCODING not allowed in the expiry script: look-ups of keys deleted a moment before count as key misses (ACL: +object|encoding)',
            );
            this.#useScript(EXPIRY_SCRIPT);
          }
        } else if (/NOPERM|unknown command|ERR.*flags/i.test(msg)) {
          this.#o.logger.info(
            { node: this.#o.label, err: msg },
            'expiry script not allowed; using PEXPIRETIME pipelines',
          );
          this.#scriptOk = false;
        } else {
          throw err;
        }
      }
    }
    const pipe = c.pipeline();
    for (const k of keys) pipe.call('PEXPIRETIME', k);
    const replies = (await pipe.exec()) ?? [];
    return replies.map((r) => (r[0] ? Number.NaN : Number(r[1])));
  }

  /** EVALSHA of the current script, loading it first where the server does not have it. */
  async #evalScript(keys: Buffer[]): Promise<number[]> {
    const c = this.#o.commands;
    try {
      return (await c.call('EVALSHA', this.#scriptSha, '0', ...keys)) as number[];
    } catch (err) {
      if (!(err as Error).message.startsWith('NOSCRIPT')) throw err;
      this.#scriptSha = (await c.call('SCRIPT', 'LOAD', this.#script)) as string;
      return (await c.call('EVALSHA', this.#scriptSha, '0', ...keys)) as number[];
    }
  }

  #useScript(script: string): void {
    this.#script = script;
    this.#scriptSha = createHash('sha1').update(script).digest('hex');
  }

  /**
   * Our reconciliation SCAN starts (`end` undefined) or ends. Redis deletes every past-due key a
   * SCAN touches, so the `expired` notifications received meanwhile are that SCAN flushing the
   * lazy-expiry backlog, whatever their lag: all backlog, none churn. Counting those whose due
   * passed less than the tolerance ago is what made each reconnect open churn_spike (issue #16.3).
   * Judged by each notification's arrival time, so those applied after the SCAN are covered too.
   */
  beginOwnScan(at: number): void {
    this.#ownScan = { start: at, end: undefined };
  }

  endOwnScan(at: number): void {
    if (this.#ownScan) this.#ownScan.end = at;
  }

  /** Marks the `expired` of a lazy-expiry flush as backlog (see notification-batch.ts). */
  markExpiryFlush(prepared: readonly Prepared[]): void {
    markExpiryFlush(prepared, this.#o.inventory, this.#context());
  }

  /**
   * The stream has a hole here (notifications dropped): a `rename_from` waiting for its
   * `rename_to` will never get it. Its token goes back into the inventory as it was, so that the
   * reconciliation of the hole reports what became of it, instead of it leaving unrecorded.
   */
  discontinuity(): void {
    const from = this.#pendingRename;
    this.#pendingRename = undefined;
    if (from?.entry)
      this.#o.inventory.set(from.c.kind, from.c.fingerprint, from.entry, from.c.digest);
  }

  /** Apply a batch: translate it, write its changes to the inventory, report its token events. */
  applyBatch(prepared: readonly Prepared[]): void {
    const inv = this.#o.inventory;
    const t = translate(prepared, inv, this.#context(), this.#pendingRename);
    this.#pendingRename = t.pendingRename;
    for (const ch of t.changes) {
      if (ch.op === 'set') inv.set(ch.kind, ch.fingerprint, ch.entry, ch.digest);
      else inv.delete(ch.kind, ch.fingerprint, ch.node, ch.digest);
    }
    for (const ev of t.events) this.#o.sink.token(ev);
  }

  /** Apply one notification (applyBatch of one). */
  apply(p: Prepared): void {
    this.applyBatch([p]);
  }

  /**
   * A baseline SCAN found the token (its write not observed): `token.present` with its expiry.
   * `due` is PEXPIRETIME on the Redis clock (null: no TTL).
   */
  present(c: ClassifiedKey, due: number | null, at: number): void {
    const o = this.#o;
    o.sink.token({
      type: 'present',
      kind: c.kind,
      fingerprint: c.fingerprint,
      keyAttrs: c.keyAttrs,
      node: o.label,
      db: o.db,
      observedAt: at,
      redisEvent: 'scan',
      dueAt: localDue(due, this.offsetMs),
      ttlMs: ttlAt(due, at, this.offsetMs),
    });
  }

  #context(): TranslateContext {
    const o = this.#o;
    return {
      nodeIndex: o.nodeIndex,
      label: o.label,
      db: o.db,
      offsetMs: this.offsetMs,
      expiryBacklogToleranceMs: o.expiryBacklogToleranceMs,
      ownScan: this.#ownScan,
    };
  }
}
