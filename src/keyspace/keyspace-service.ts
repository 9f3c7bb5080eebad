import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics/registry.js';
import { redactUrl } from '../redis-url.js';
import {
  readTopology,
  servedBy,
  type ClusterMaster,
  type ClusterTopology,
} from './cluster-topology.js';
import { slotIdentity } from './slot-identity.js';
import { RedisConnector, endpointLabel, parseHostPort, type Endpoint } from './connections.js';
import type { CacheHealth } from './cache-health.js';
import { tagForSlots } from './cluster-slot.js';
import type { Inventory } from './inventory.js';
import { NodeWatcher, type NodeWatcherOptions, type WatcherSink } from './node-watcher.js';
import type { StreamPositionTracker } from './stream-position.js';
import type { TokenRules } from './token-rules.js';

export interface KeyspaceServiceOptions {
  config: Readonly<Config>;
  rules: TokenRules;
  inventory: Inventory;
  /** The KeyspaceRecorder, or with several instances the ownership gate in front of it. */
  recorder: WatcherSink;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  /** Issue #21: keymiss counting and read sampling per node (optional). */
  cacheHealth?: CacheHealth;
  /** A node watcher was added or removed (the coordinator re-divides the nodes). */
  onNodesChanged?: () => void;
  /** Coordination on: a stream position tracker for each node watched (by label). */
  streamPositions?: (label: string) => StreamPositionTracker;
  /** A node's reconciliation SCANned this many keys. */
  onScanned?: (scanned: number) => void;
}

interface Retiring {
  node: number;
  label: string;
  since: number;
  /** Slot ranges the removed master served. */
  slots: [number, number][];
  /**
   * When its watcher closed, i.e. applied the last notification it had received (unset: still
   * closing). Until then a write it applies would put back a token retirement had removed.
   */
  closedAt?: number;
}

/** One topology probe (connect, CLUSTER SHARDS) at most; then the next seed is asked. */
const PROBE_TIMEOUT_MS = 3000;

function overlaps(a: readonly [number, number][], b: readonly [number, number][]): boolean {
  return a.some(([a0, a1]) => b.some(([b0, b1]) => a0 <= b1 && b0 <= a1));
}

/**
 * Owns the node watchers for the configured topology:
 * - standalone: one watcher on `redis.url`;
 * - Sentinel: one watcher whose connections ioredis points at the current master, so a
 *   failover is a disconnect (gap) followed by reconnect and reconciliation;
 * - Cluster: one watcher per master (notifications are node-local; ioredis' Cluster client
 *   would subscribe on a single node, ioredis issue 1240), following failovers, added and
 *   removed shards and resharding by re-reading CLUSTER SHARDS and NODES every few seconds.
 */
export class KeyspaceService {
  readonly #o: KeyspaceServiceOptions;
  readonly #connector: RedisConnector;
  readonly #watchers = new Map<string, NodeWatcher>();
  readonly #nodeIndex = new Map<string, number>();
  #retiring: Retiring[] = [];
  /** Watchers of removed masters still applying what they received, by label. */
  readonly #closing = new Map<string, Promise<void>>();
  /** Masters as of the last topology read. */
  #masters = new Map<string, ClusterMaster>();
  /** vacantAssignmentKeys() as of the last topology read. */
  #vacantKeys: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #discovered = false;
  #closed = false;
  #lastTopologyError: string | undefined;

  constructor(options: KeyspaceServiceOptions) {
    this.#o = options;
    this.#connector = new RedisConnector(options.config.redis);
  }

  /** Label for records that concern the whole deployment (e.g. tokenwatch itself was down). */
  get scopeLabel(): string {
    const r = this.#o.config.redis;
    if (r.cluster) return 'cluster';
    if (r.sentinel) return `sentinel:${r.sentinel.name}`;
    return endpointLabel(this.#connector.urlEndpoint);
  }

  get watchers(): NodeWatcher[] {
    return [...this.#watchers.values()];
  }

  /**
   * The ids (labels) of the watched nodes: the one node of a standalone or Sentinel deployment
   * even before its watcher starts, the discovered masters of a Cluster.
   */
  nodeLabels(): string[] {
    if (this.#o.config.redis.cluster) return this.watchers.map((w) => w.label);
    return [this.scopeLabel];
  }

  #watcher(label: string): NodeWatcher | undefined {
    for (const w of this.#watchers.values()) if (w.label === label) return w;
    return undefined;
  }

  /** The node's command connection (marker writes), when it is watched. */
  commandsOf(label: string): Redis | undefined {
    return this.#watcher(label)?.commands;
  }

  /**
   * What the node is for the coordination's assignment: a Cluster master by one slot it serves
   * (slotIdentity: a promoted replica serves its dead master's slots, so the instance desired
   * for the master is desired for it and is its first owner: one inventory then accounts for
   * the master's tokens across the failover, docs/ha.md); otherwise, or while its slots are not
   * known, its label.
   */
  assignmentKey(label: string): string {
    if (!this.#o.config.redis.cluster) return label;
    return slotIdentity(this.#masterOf(label)?.slots ?? []) ?? label;
  }

  /**
   * Assignment keys of failed Cluster masters whose slots no master serves yet (a failover under
   * way), as the last topology read says (so every instance, one started meanwhile too, has the
   * same): the coordination weighs them like nodes, so that the other masters' desired owners
   * stay where they are until the promoted replica (the same key) appears. Without them the
   * assignment of the masters left over is another one for the seconds of a failover, and a
   * healthy master is handed over and back, with a takeover gap.
   */
  vacantAssignmentKeys(): string[] {
    return this.#vacantKeys;
  }

  /** The watched Cluster master a label names, as of the last topology read. */
  #masterOf(label: string): ClusterMaster | undefined {
    for (const [id, w] of this.#watchers) if (w.label === label) return this.#masters.get(id);
    return undefined;
  }

  /** Cluster: a hash tag of a slot the node serves (its marker keys need one); else undefined. */
  markerTag(label: string): string | undefined {
    if (!this.#o.config.redis.cluster) return undefined;
    const master = this.#masterOf(label);
    return master && tagForSlots(master.slots);
  }

  /** Declare a blind spot on one node and reconcile it (a takeover without replay). */
  async markNodeBlind(label: string, reason: string, since: number): Promise<void> {
    await this.#watcher(label)?.markBlind(reason, since);
  }

  /** Runs one node's baseline again (see NodeWatcher.rebaseline). */
  async rebaselineNode(label: string): Promise<void> {
    await this.#watcher(label)?.rebaseline();
  }

  /**
   * Every notification the node's watcher received so far is applied; for a master that left
   * the topology, once its watcher closed (its owner records until then: docs/ha.md).
   */
  async settleNode(label: string): Promise<void> {
    await this.#closing.get(label);
    await this.#watcher(label)?.idle();
  }

  /**
   * Live (due in the future, no TTL or unknown) and past-due tokens per kind, each token judged
   * against the clock of the Redis node that holds it.
   */
  dueCounts(): ReturnType<Inventory['dueCounts']> {
    const byIndex = new Map<number, NodeWatcher>();
    for (const [id, w] of this.#watchers) {
      const i = this.#nodeIndex.get(id);
      if (i !== undefined) byIndex.set(i, w);
    }
    const now = this.#o.now();
    return this.#o.inventory.dueCounts((node) => byIndex.get(node)?.redisNow() ?? now);
  }

  /** Why the keyspace side is not ready (empty when ready). */
  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.#o.config.redis.cluster && !this.#discovered) {
      reasons.push(
        `redis cluster: masters not discovered yet${this.#lastTopologyError ? ` (${this.#lastTopologyError})` : ''}`,
      );
    }
    if (this.#watchers.size === 0 && !this.#o.config.redis.cluster) reasons.push('not started');
    for (const w of this.#watchers.values()) {
      if (!w.subscribed) reasons.push(`redis ${w.label}: keyspace subscriber not connected`);
      else if (!w.baselined) reasons.push(`redis ${w.label}: baseline SCAN in progress`);
      if (w.notifications && !w.notifications.enabled) {
        reasons.push(`redis ${w.label}: ${w.notifications.problem ?? 'notifications disabled'}`);
      }
    }
    return reasons;
  }

  /**
   * The one node whose inventory a restart can restore from the ledger (standalone, Sentinel):
   * its record label and inventory index. Undefined for a Cluster, whose masters (and their
   * indices) are only known once discovered.
   */
  restoreTarget(): { node: string; nodeIndex: number } | undefined {
    if (this.#o.config.redis.cluster) return undefined;
    const node = this.scopeLabel;
    return { node, nodeIndex: this.#indexOf(node) };
  }

  /**
   * `restart`: tokenwatch was down since `since`; with `restored`, the inventory holds what the
   * ledger says was live then, and the first reconciliation is that blind spot's gap.
   */
  start(restart?: { since: number; reason: string; restored: boolean }): void {
    const r = this.#o.config.redis;
    const blind = restart?.restored ? { ...restart } : undefined;
    if (r.cluster) {
      this.#o.logger.info({ seeds: r.cluster.nodes }, 'connecting to redis cluster');
      void this.#refresh();
      this.#timer = setInterval(
        () => void this.#refresh(),
        r.cluster.refreshIntervalSeconds * 1000,
      );
      this.#timer.unref();
    } else if (r.sentinel) {
      this.#o.logger.info(
        { sentinels: r.sentinel.sentinels, name: r.sentinel.name },
        'connecting to redis through sentinel',
      );
      this.#add(`sentinel:${r.sentinel.name}`, undefined, blind);
    } else {
      this.#o.logger.info({ redis: redactUrl(r.url), db: r.db }, 'connecting to redis');
      const e = this.#connector.urlEndpoint;
      this.#add(endpointLabel(e), e, blind);
    }
  }

  /** Every notification received so far is applied and queued for audit. */
  async settle(): Promise<void> {
    await this.#refreshing;
    for (const w of this.#watchers.values()) await w.settled();
  }

  /** Re-read the cluster topology now (tests, and after a watcher disconnect). */
  async refreshTopology(): Promise<void> {
    await this.#refresh();
  }

  /** Declare a blind spot on every node (e.g. audit records were dropped) and reconcile. */
  async markBlind(reason: string, since: number): Promise<void> {
    await Promise.all([...this.#watchers.values()].map((w) => w.markBlind(reason, since)));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#refreshing;
    await Promise.all([...this.#watchers.values()].map((w) => w.close()));
    await Promise.all(this.#closing.values());
  }

  #indexOf(id: string): number {
    let i = this.#nodeIndex.get(id);
    if (i === undefined) {
      i = this.#nodeIndex.size;
      this.#nodeIndex.set(id, i);
    }
    return i;
  }

  #add(
    label: string,
    endpoint: Endpoint | undefined,
    startBlind: NodeWatcherOptions['startBlind'],
    id = label,
  ): void {
    const { config, metrics } = this.#o;
    const sentinel = endpoint === undefined;
    const subscriber = sentinel
      ? this.#connector.forSentinelMaster('subscriber')
      : this.#connector.forNode(endpoint, 'subscriber');
    const commands = sentinel
      ? this.#connector.forSentinelMaster('commands')
      : this.#connector.forNode(endpoint, 'commands');
    const watcher = new NodeWatcher({
      nodeIndex: this.#indexOf(id),
      label,
      db: config.redis.cluster ? 0 : config.redis.db,
      subscriber,
      commands,
      rules: this.#o.rules,
      inventory: this.#o.inventory,
      sink: this.#o.recorder,
      maxKeyBytes: config.redis.maxKeyBytes,
      maxPendingNotifications: config.redis.maxPendingNotifications,
      expiryBacklogToleranceMs: config.redis.expiryBacklogToleranceSeconds * 1000,
      scanCount: config.redis.scanCount,
      configureNotifications: config.redis.configureNotifications,
      recheckIntervalMs: config.redis.recheckIntervalSeconds * 1000,
      infoIntervalMs: config.redis.infoIntervalSeconds * 1000,
      flushCheckIntervalMs: config.redis.flushCheckIntervalSeconds * 1000,
      now: this.#o.now,
      logger: this.#o.logger,
      startBlind,
      cluster: config.redis.cluster !== undefined,
      keyMisses: this.#keyMisses(),
      streamPositions: this.#o.streamPositions?.(label),
      onScanned: this.#o.onScanned,
    });
    metrics.redisUp.set({ node: label }, 0);
    metrics.notificationsEnabled.set({ node: label }, 0);
    metrics.keyspaceGaps.inc({ node: label }, 0);
    metrics.keyspaceGapSeconds.inc({ node: label }, 0);
    metrics.redisHits.inc({ node: label }, 0);
    metrics.redisMisses.inc({ node: label }, 0);
    this.#watchers.set(id, watcher);
    if (config.redis.cluster) {
      subscriber.on('close', () => {
        if (!this.#closed) void this.#refresh();
      });
    }
    watcher.start();
    this.#o.onNodesChanged?.();
    // MONITOR runs on a connection of its own, duplicated from this never-connected one. On a
    // Cluster node the window markers carry a hash tag of a slot the node serves (else: MOVED).
    if (this.#o.cacheHealth) {
      const base = sentinel
        ? this.#connector.forSentinelMaster('commands')
        : this.#connector.forNode(endpoint, 'commands');
      const tag = config.redis.cluster
        ? () => tagForSlots(this.#masters.get(id)?.slots ?? [])
        : undefined;
      this.#o.cacheHealth.addNode(label, base, commands, tag);
    }
  }

  #keyMisses(): NodeWatcherOptions['keyMisses'] {
    const ch = this.#o.cacheHealth;
    if (!ch?.keyMisses) return undefined;
    return { flags: ch.extraFlags, onMiss: (node, key, at) => ch.onKeyMiss(node, key, at) };
  }

  #refresh(): Promise<void> {
    this.#refreshing ??= this.#doRefresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #doRefresh(): Promise<void> {
    if (this.#closed) return;
    let masters: ClusterMaster[];
    try {
      const topology = await this.#readTopology();
      masters = topology.masters;
      this.#vacantKeys = [
        ...new Set(topology.unserved.map((r) => slotIdentity(r)).filter((k) => k !== undefined)),
      ];
      this.#lastTopologyError = undefined;
    } catch (err) {
      this.#lastTopologyError = (err as Error).message;
      this.#o.logger.warn({ err: this.#lastTopologyError }, 'cannot read cluster topology');
      return;
    }
    if (this.#closed) return;
    const now = this.#o.now();
    const first = !this.#discovered;
    const current = new Set(masters.map((m) => m.id));
    const previous = this.#masters;
    this.#masters = new Map(masters.map((m) => [m.id, m]));
    for (const [id, w] of this.#watchers) {
      if (current.has(id)) continue;
      // A master that failed or became a replica: its tokens are now served elsewhere.
      this.#o.logger.warn({ node: w.label }, 'cluster master left the topology');
      this.#watchers.delete(id);
      const retiring: Retiring = {
        node: this.#indexOf(id),
        label: w.label,
        since: now,
        slots: previous.get(id)?.slots ?? [],
      };
      this.#retiring.push(retiring);
      this.#removeSeries(w.label);
      this.#o.cacheHealth?.removeNode(w.label);
      const closing: Promise<void> = w
        .close()
        .catch(() => undefined)
        .then(() => {
          retiring.closedAt = this.#o.now();
          if (this.#closing.get(w.label) === closing) this.#closing.delete(w.label);
          if (!this.#closed) this.#retire();
        });
      this.#closing.set(w.label, closing);
      this.#o.onNodesChanged?.();
    }
    for (const m of masters) {
      if (this.#watchers.has(m.id)) continue;
      const label = endpointLabel(m);
      if (!first) this.#o.logger.info({ node: label }, 'new cluster master: watching it');
      this.#add(
        label,
        m,
        first ? undefined : { since: this.#retiring[0]?.since ?? now, reason: 'topology_change' },
        m.id,
      );
    }
    this.#discovered = true;
    this.#retire();
  }

  /**
   * Tokens of a removed master that no remaining master claimed are gone, recorded as vanished,
   * but only once its slots are served again (a promoted replica, resharding) and every master
   * reconciled after the removal: until then they are unreachable, not known to be gone, and
   * retiring them early would record a vanish and then an appear for tokens that never left.
   * And only once its watcher closed: notifications it received before the node died may wait
   * on a look-up the dead node never answers (up to NodeWatcher.close's bound); applied after
   * the retirement, their writes would stay in the inventory for good. The heirs' reconciliation
   * must start after that too, so that what the heirs hold now wins over those older events.
   */
  #retire(): void {
    if (this.#retiring.length === 0) return;
    const keep: Retiring[] = [];
    for (const r of this.#retiring) {
      if (r.closedAt === undefined) {
        keep.push(r);
        continue;
      }
      // Only the masters that now serve the removed master's slots can hold its tokens.
      const heirs = [...this.#watchers.entries()]
        .filter(([id]) => overlaps(this.#masters.get(id)?.slots ?? [], r.slots))
        .map(([, w]) => w);
      if (!servedBy(r.slots, this.#masters.values())) {
        keep.push(r); // unserved slots: unreachable, not gone
        continue;
      }
      const after = Math.max(r.since, r.closedAt);
      const pending = heirs.filter((w) => w.reconciling || w.lastReconcileStart < after);
      if (pending.length > 0) {
        keep.push(r);
        for (const w of pending) {
          if (w.reconciling) continue;
          // A master that took over slots (resharding) must look for the tokens it received.
          w.markBlind('topology_change', r.since).catch((err: unknown) => {
            this.#o.logger.warn(
              { node: w.label, err: (err as Error).message },
              'reconcile after topology change failed; will retry',
            );
          });
        }
        continue;
      }
      const gone = this.#o.inventory.retireNode(r.node);
      this.#o.recorder.gap({
        node: r.label,
        start: r.since,
        end: this.#o.now(),
        reason: 'node_removed',
        changes: gone.map((g) => ({
          kind: g.kind,
          fingerprint: g.fingerprint,
          change: 'vanished' as const,
          before: g.entry,
          due: g.entry.due,
        })),
        scanned: 0,
        durationMs: 0,
      });
    }
    this.#retiring = keep;
  }

  async #readTopology(): Promise<ClusterTopology> {
    const seeds = [
      ...[...this.#watchers.values()].map((w) => w.label),
      ...(this.#o.config.redis.cluster?.nodes ?? []),
    ];
    let lastErr: unknown;
    for (const s of [...new Set(seeds)]) {
      const e = parseHostPort(s);
      const client = this.#connector.forProbe(e);
      client.on('error', () => undefined);
      let timer: NodeJS.Timeout | undefined;
      try {
        // Bounded as a whole: a stopped node (SIGSTOP, a frozen VM) accepts the connection and
        // never answers, and an unbounded probe would hold every later refresh behind it.
        const topology = await Promise.race([
          client.connect().then(() => readTopology(client)),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () =>
                reject(new Error(`topology probe of ${s}: no answer in ${PROBE_TIMEOUT_MS} ms`)),
              PROBE_TIMEOUT_MS,
            );
          }),
        ]);
        if (topology.masters.length > 0) return topology;
      } catch (err) {
        lastErr = err;
      } finally {
        clearTimeout(timer);
        client.disconnect();
      }
    }
    throw lastErr instanceof Error ? lastErr : new Error('no cluster node answered');
  }

  #removeSeries(label: string): void {
    const m = this.#o.metrics;
    m.redisUp.remove({ node: label });
    m.notificationsEnabled.remove({ node: label });
  }
}
