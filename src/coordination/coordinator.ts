import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { CoordinationConfig } from '../config/coordination-schema.js';
import type { CoordinationMetrics } from '../metrics/coordination-metrics.js';
import { assignNodes } from './assignment.js';
import type { LeaseHolder, LeaseStore } from './lease.js';
import type { InstanceRegistry } from './registry.js';

/**
 * Why an owner released a node: `handover` to the instance now desired for it, `shutdown`, or
 * `removed`: the node left the topology (a Cluster master that failed over or was removed), so no
 * one is to own it afterwards (coverage ends its window there).
 */
export type ReleaseReason = 'handover' | 'shutdown' | 'removed';
export type FenceReason = 'expired' | 'lost';

/** What the keyspace side does when ownership changes (src/keyspace/ownership-sink.ts). */
export interface OwnershipHooks {
  /**
   * This instance now holds the node's lease at `epoch`. Events keep going to the standby side
   * until the hook calls `goLive()`, synchronously after whatever it replays, so that no event
   * falls between the replay and live recording. `lastHeldAt`: when this instance last saw
   * another holder (wall clock ms; undefined: never).
   */
  acquired(a: {
    node: string;
    epoch: number;
    previous: LeaseHolder | null;
    lastHeldAt: number | undefined;
    goLive: () => void;
  }): Promise<void>;
  /**
   * The node is being given up gracefully (the lease is still held). The hook calls
   * `stopRecording()` at the point where recording as owner must stop, and resolves once what
   * was recorded is committed; the lease is released after.
   */
  releasing(r: {
    node: string;
    epoch: number;
    reason: ReleaseReason;
    stopRecording: () => void;
  }): Promise<void>;
  /** The owner's local deadline passed (or the lease was found gone): recording stopped. */
  fenced(f: { node: string; epoch: number; reason: FenceReason }): void;
}

interface Owned {
  epoch: number;
  /** performance.now() past which this instance must not record as owner. */
  deadline: number;
  /** Wall clock of the last successful acquire/renew (lease age metric). */
  renewedAt: number;
  /** Wall clock of the acquisition. */
  acquiredAt: number;
  live: boolean;
  releasing: boolean;
  /**
   * Monotonic ms until which a release still renews the lease: set for a release as `removed`
   * (the node left the topology). Nobody else acquires such a node, and its release waits for
   * the dead node's watcher (up to 2 s) whose last events this owner records; a fence in between
   * would record them nowhere. A handover's lease is not renewed (unset): its fence bounds how
   * long a stuck release can keep the next owner waiting.
   */
  renewUntil?: number;
}

/**
 * How long a release as `removed` is renewed: its own waits are bounded (for a node that left,
 * no final marker is written, and the dead node's watcher closes within 2 s; a label back
 * meanwhile adds the marker write's 2 s command timeout and the 3 s wait to see it), then the
 * ledger commits; past this something is stuck, and the fence frees the node as for a handover.
 */
const REMOVED_RELEASE_RENEW_MS = 10_000;

export interface CoordinatorOptions {
  config: Readonly<CoordinationConfig>;
  leases: LeaseStore;
  registry: InstanceRegistry;
  /** Ids (labels) of the watched nodes this instance knows now. */
  nodes: () => string[];
  /**
   * What a node is for the assignment's weights (assignNodes' `keyOf`; default: its id). A
   * Cluster master: the slots it serves, so that a failover keeps the owner (docs/ha.md).
   */
  assignmentKey?: (node: string) => string;
  /**
   * Assignment keys of nodes gone for a while (a Cluster master whose slots nobody serves yet,
   * during its failover): weighed like nodes and never acquired, so that the others' desired
   * owners do not move meanwhile (KeyspaceService.vacantAssignmentKeys).
   */
  vacant?: () => string[];
  hooks: OwnershipHooks;
  metrics: CoordinationMetrics;
  logger: Logger;
  now: () => number;
  /** Monotonic clock (ms); never the wall clock (docs/ha.md, clock drift). */
  monotonic?: () => number;
  /**
   * Whether this instance can take nodes over from a live owner yet (its watchers subscribed,
   * baselined and counting stream positions). Until then it does not register, so no owner
   * hands a node over to it; it still acquires free leases of the nodes it is desired for.
   */
  readyToJoin?: () => boolean;
}

export type NodeRole = 'owner' | 'standby';

/**
 * One instance's side of the coordination loop: registers, computes the desired owner of every
 * node (balanced rendezvous hashing over the live instances), acquires free leases of its
 * desired nodes (takeover), renews the ones it holds, hands over the ones another instance is
 * now desired for, and releases all on close.
 *
 * Local fencing: each held lease has a monotonic deadline = when its last successful
 * acquire/renew was SENT + leaseMs - safetyMs. The server cannot have expired the lease before
 * then, so recording while `ownerEpoch()` answers is never recording without a lease (up to
 * the clock rate of this host against the server's, covered by safetyMs).
 */
export class Coordinator {
  readonly #o: CoordinatorOptions;
  readonly #mono: () => number;
  readonly #owned = new Map<string, Owned>();
  /** Per node, when another holder was last seen (wall clock). */
  readonly #heldSeen = new Map<string, number>();
  readonly #fenceTimers = new Map<string, NodeJS.Timeout>();
  readonly #leaseMs: number;
  readonly #renewMs: number;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #again = false;
  /** The lease renewals in flight: one batch at a time, shared by rounds and #keepAlive. */
  #renewing: Promise<void> | undefined;
  #closed = false;
  #live: string[] = [];
  #joined = false;

  constructor(o: CoordinatorOptions) {
    this.#o = o;
    this.#mono = o.monotonic ?? (() => performance.now());
    this.#leaseMs = o.config.leaseMs;
    this.#renewMs = o.config.renewEveryMs ?? Math.floor(o.config.leaseMs / 3);
  }

  get instanceId(): string {
    return this.#o.leases.instanceId;
  }

  /** Instances seen live at the last registry refresh. */
  get liveInstances(): readonly string[] {
    return this.#live;
  }

  /** First round (register, acquire what is free and desired), then every renewEveryMs. */
  async start(): Promise<void> {
    const first = this.tick();
    // Ticking already: a first round held by a takeover still renews on time (#keepAlive).
    if (!this.#closed) {
      this.#timer = setInterval(() => void this.tick(), this.#renewMs);
      this.#timer.unref();
    }
    await first;
  }

  /**
   * The epoch under which events of `node` may be recorded now, or undefined (standby, not
   * live yet, or fenced). Checked synchronously on every event: the instant the deadline has
   * passed, this fences the node and answers undefined.
   */
  ownerEpoch(node: string): number | undefined {
    const o = this.#owned.get(node);
    if (!o?.live) return undefined;
    if (this.#mono() >= o.deadline) {
      this.#fence(node, o, 'expired');
      return undefined;
    }
    return o.epoch;
  }

  /** Epoch held for `node` (live or not), for records. */
  heldEpoch(node: string): number | undefined {
    return this.#owned.get(node)?.epoch;
  }

  role(node: string): NodeRole {
    return this.ownerEpoch(node) !== undefined ? 'owner' : 'standby';
  }

  /** Runs a round now (or right after the one in progress): a node appeared, tests. */
  tick(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#ticking) {
      this.#again = true;
      this.#keepAlive();
      return this.#ticking;
    }
    this.#ticking = this.#round()
      .catch((err: unknown) => {
        this.#o.logger.warn({ err: (err as Error).message }, 'coordination round failed');
      })
      .finally(() => {
        this.#ticking = undefined;
        if (this.#again && !this.#closed) {
          this.#again = false;
          void this.tick();
        }
      });
    return this.#ticking;
  }

  /** Hands every held node over (graceful shutdown), leaves the registry. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    // The round in flight may be releasing a removed node (renewed meanwhile, see
    // Owned.renewUntil) or taking one over: the leases held are renewed until it settles, else
    // they are fenced behind it and what they record meanwhile goes nowhere.
    // At once, then every renewEveryMs: the last renewal may be almost a period old already.
    void this.#renewHeld();
    const keep = setInterval(() => void this.#renewHeld(), this.#renewMs);
    try {
      await this.#ticking;
    } finally {
      clearInterval(keep);
    }
    await Promise.all([...this.#owned.keys()].map((n) => this.#handOver(n, 'shutdown')));
    for (const t of this.#fenceTimers.values()) clearTimeout(t);
    await this.#o.registry.leave().catch(() => undefined);
  }

  /**
   * A round can wait long on a takeover: the acquired hook reconciles the node (a SCAN of all
   * of it) or runs its baseline again. The leases held meanwhile are renewed on time anyway,
   * and the registration refreshed, else every other node this instance holds would be fenced
   * behind one large SCAN.
   */
  #keepAlive(): void {
    if (this.#closed) return;
    void this.#renewHeld();
    if (this.#joined)
      this.#o.registry.refresh().catch((err: unknown) => {
        this.#o.logger.warn({ err: (err as Error).message }, 'coordination registry unreachable');
      });
  }

  #renewHeld(): Promise<void> {
    this.#renewing ??= Promise.all([...this.#owned.keys()].map((n) => this.#renew(n)))
      .then(
        () => undefined,
        (err: unknown) => {
          this.#o.logger.warn({ err: (err as Error).message }, 'lease renewals failed');
        },
      )
      .finally(() => {
        this.#renewing = undefined;
      });
    return this.#renewing;
  }

  async #round(): Promise<void> {
    const renewals = this.#renewHeld();
    let live: string[];
    try {
      const join = this.#joined || (this.#o.readyToJoin?.() ?? true);
      live = join ? await this.#o.registry.refresh() : await this.#o.registry.live();
      this.#joined = join;
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, 'coordination registry unreachable');
      await renewals;
      return;
    }
    await renewals;
    if (this.#closed) return;
    this.#live = live;
    const nodes = this.#o.nodes();
    const desired = assignNodes(
      nodes,
      live.includes(this.instanceId) ? live : [...live, this.instanceId],
      this.#o.assignmentKey,
      this.#o.vacant?.(),
    );
    const self = this.instanceId;
    const work: Promise<void>[] = [];
    const known = new Set(nodes);
    for (const [node, o] of this.#owned) {
      // A joining instance is now desired for it (or the node left the topology): hand over,
      // but not a node acquired less than a lease ago: the others' watchers of a node that just
      // appeared (a promoted master) may not be counting its stream yet, and rebalancing while
      // instances come and go would make nodes flap.
      const settled = this.#o.now() - o.acquiredAt >= this.#leaseMs || !known.has(node);
      if (!o.releasing && desired.get(node) !== self && settled)
        work.push(this.#handOver(node, known.has(node) ? 'handover' : 'removed'));
    }
    let soonest = Infinity;
    for (const node of nodes) {
      if (this.#owned.has(node)) continue;
      if (desired.get(node) === self) work.push(this.#acquire(node));
      else {
        // Another holder's lease: when it runs out (its holder gone), the next round decides
        // at once instead of up to one renewal period later (takeover within the lease time).
        work.push(
          this.#o.leases.remainingMs(node).then(
            (ms) => {
              if (ms > 0) soonest = Math.min(soonest, ms);
            },
            () => undefined,
          ),
        );
      }
    }
    await Promise.all(work);
    this.#updateGauges();
    if (soonest < this.#renewMs && !this.#closed) {
      // Just after both the lease and its holder's registration (refreshed right after the
      // renewal) have expired.
      const t = setTimeout(() => void this.tick(), soonest + 50);
      t.unref();
    }
  }

  async #acquire(node: string): Promise<void> {
    const sent = this.#mono();
    let r;
    try {
      r = await this.#o.leases.acquire(node, this.#leaseMs);
    } catch (err) {
      this.#o.logger.warn({ node, err: (err as Error).message }, 'lease acquire failed');
      return;
    }
    if (!r.acquired) {
      if (r.holder) this.#heldSeen.set(node, this.#o.now());
      return;
    }
    if (this.#closed) {
      await this.#o.leases.release(node, r.epoch).catch(() => undefined);
      return;
    }
    const owned: Owned = {
      epoch: r.epoch,
      deadline: sent + this.#leaseMs - this.#o.config.safetyMs,
      renewedAt: this.#o.now(),
      acquiredAt: this.#o.now(),
      live: false,
      releasing: false,
    };
    this.#owned.set(node, owned);
    this.#armFence(node, owned);
    const m = this.#o.metrics;
    m.leaseEpoch.set({ node }, r.epoch);
    if (r.previous) m.takeovers.inc({ node });
    this.#o.logger.info(
      { node, epoch: r.epoch, previous: r.previous },
      r.previous ? 'took over node' : 'acquired node',
    );
    await this.#o.hooks.acquired({
      node,
      epoch: r.epoch,
      previous: r.previous,
      lastHeldAt: this.#heldSeen.get(node),
      goLive: () => {
        if (this.#owned.get(node) === owned && this.#mono() < owned.deadline) owned.live = true;
      },
    });
    this.#updateGauges();
  }

  async #renew(node: string): Promise<void> {
    const o = this.#owned.get(node);
    if (!o || (o.releasing && !(this.#mono() < (o.renewUntil ?? -Infinity)))) return;
    const sent = this.#mono();
    let ok: boolean;
    try {
      ok = await this.#o.leases.renew(node, o.epoch, this.#leaseMs);
    } catch (err) {
      // Unreachable: the local deadline fences at the latest when the lease could expire.
      this.#o.logger.warn({ node, err: (err as Error).message }, 'lease renewal failed');
      return;
    }
    if (this.#owned.get(node) !== o) {
      // Fenced meanwhile; a renewal that still found our lease must not keep it held.
      if (ok) await this.#o.leases.release(node, o.epoch).catch(() => undefined);
      return;
    }
    if (!ok) {
      this.#fence(node, o, 'lost');
      return;
    }
    o.deadline = Math.max(o.deadline, sent + this.#leaseMs - this.#o.config.safetyMs);
    o.renewedAt = this.#o.now();
    this.#armFence(node, o);
  }

  /** Fences at the deadline even when no event asks (ownership.fenced appears on time). */
  #armFence(node: string, o: Owned): void {
    clearTimeout(this.#fenceTimers.get(node));
    const t = setTimeout(
      () => {
        if (this.#owned.get(node) === o && this.#mono() >= o.deadline)
          this.#fence(node, o, 'expired');
        else if (this.#owned.get(node) === o) this.#armFence(node, o);
      },
      Math.max(0, o.deadline - this.#mono()) + 1,
    );
    t.unref();
    this.#fenceTimers.set(node, t);
  }

  #fence(node: string, o: Owned, reason: FenceReason): void {
    if (this.#owned.get(node) !== o) return;
    this.#owned.delete(node);
    clearTimeout(this.#fenceTimers.get(node));
    this.#fenceTimers.delete(node);
    this.#o.metrics.fencings.inc({ node });
    this.#o.logger.warn({ node, epoch: o.epoch, reason }, 'fenced: no longer recording as owner');
    this.#o.hooks.fenced({ node, epoch: o.epoch, reason });
    this.#updateGauges();
    // A lost lease has another holder or none; an expired one may still be ours on the server
    // (renewals that did not come back): give it up so a standby can take over cleanly.
    if (reason === 'expired') void this.#o.leases.release(node, o.epoch).catch(() => undefined);
  }

  async #handOver(node: string, reason: ReleaseReason): Promise<void> {
    const o = this.#owned.get(node);
    if (!o || o.releasing) return;
    o.releasing = true;
    if (reason === 'removed') o.renewUntil = this.#mono() + REMOVED_RELEASE_RENEW_MS;
    if (o.live && this.#mono() < o.deadline) {
      try {
        await this.#o.hooks.releasing({
          node,
          epoch: o.epoch,
          reason,
          stopRecording: () => {
            o.live = false;
          },
        });
      } catch (err) {
        this.#o.logger.warn({ node, err: (err as Error).message }, 'handover failed');
      }
    }
    o.live = false;
    if (this.#owned.get(node) === o) {
      this.#owned.delete(node);
      clearTimeout(this.#fenceTimers.get(node));
      this.#fenceTimers.delete(node);
    }
    await this.#o.leases.release(node, o.epoch).catch((err: unknown) => {
      this.#o.logger.warn({ node, err: (err as Error).message }, 'lease release failed');
    });
    this.#o.logger.info({ node, epoch: o.epoch, reason }, 'released node');
    this.#updateGauges();
  }

  #updateGauges(): void {
    const m = this.#o.metrics;
    let owned = 0;
    for (const o of this.#owned.values()) if (o.live) owned++;
    m.ownedNodes.set(owned);
  }

  /** Seconds since the last successful acquire/renew per held node (collect time). */
  leaseAges(): Map<string, number> {
    const now = this.#o.now();
    return new Map([...this.#owned].map(([n, o]) => [n, Math.max(0, now - o.renewedAt) / 1000]));
  }

  /** Per known node: owner or standby. */
  roles(): Record<string, NodeRole> {
    const out: Record<string, NodeRole> = {};
    for (const n of this.#o.nodes()) out[n] = this.role(n);
    return out;
  }
}
