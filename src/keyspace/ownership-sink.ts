import type { Logger } from 'pino';
import type { AuditInput, Committed } from '../audit/record.js';
import type { FenceReason, OwnershipHooks, ReleaseReason } from '../coordination/coordinator.js';
import type { LeaseHolder } from '../coordination/lease.js';
import type { TokenEvent } from '../domain/token-event.js';
import type { BaselineReport, GapReport, NodeStatus, WatcherSink } from './node-watcher.js';
import type { KeyspaceRecorder } from './recorder.js';

/** Who may record for a node now (the Coordinator). */
export interface OwnershipState {
  /** The epoch to record under, or undefined: standby (or fenced). Synchronous, per event. */
  ownerEpoch(node: string): number | undefined;
}

export interface OwnershipSinkOptions {
  recorder: KeyspaceRecorder;
  /** Queue an ordinary ledger record. */
  append: (input: AuditInput) => void;
  /** Queue records and resolve once they (and everything queued before) committed. */
  appendDurable: (inputs: readonly AuditInput[]) => Promise<readonly Committed[]>;
  /** Declare a blind spot on one node and reconcile it (the gap path). */
  markBlind: (node: string, reason: string, since: number) => Promise<void>;
  /** Resolves once every notification the node's watcher received so far is applied. */
  settleNode: (node: string) => Promise<void>;
  /** The ledger is closed (a fence during shutdown is then only logged). */
  closed: () => boolean;
  instanceId: string;
  ledgerId: string;
  now: () => number;
  logger: Logger;
}

/**
 * The gate between the node watchers and the ledger when several instances share the nodes:
 * token events of a node this instance owns (lease held, local deadline not passed: asked
 * synchronously per event) are recorded with their `epoch`; those of a node it does not own
 * are not recorded (hot standby). Baseline and gap records are written only by the owner; a
 * standby still builds its inventory from its own baseline, so that a takeover reconciles
 * against it. Metrics and status always pass through.
 *
 * Also the ownership side of the coordinator: `ownership.acquired`, `ownership.released` and
 * `ownership.fenced` records, and the takeover of a node whose previous owner's last events
 * this instance cannot replay: a `keyspace.gap` from when the previous holder was last seen,
 * and a reconciliation (never silent).
 */
export class OwnershipSink implements WatcherSink, OwnershipHooks {
  readonly #o: OwnershipSinkOptions;
  #state: OwnershipState | undefined;
  /** Nodes whose baseline ran while this instance was a standby (not in this ledger). */
  readonly #withheldBaseline = new Set<string>();
  /** Nodes this instance held last (a removed master's final gap is theirs to record). */
  readonly #lastHeld = new Set<string>();

  constructor(o: OwnershipSinkOptions) {
    this.#o = o;
  }

  attach(state: OwnershipState): void {
    this.#state = state;
  }

  #epoch(node: string): number | undefined {
    return this.#state?.ownerEpoch(node);
  }

  token(ev: TokenEvent): void {
    const epoch = this.#epoch(ev.node);
    if (epoch !== undefined) this.#o.recorder.token(ev, { epoch });
  }

  unmatched(count: number): void {
    this.#o.recorder.unmatched(count);
  }

  baseline(r: BaselineReport): void {
    if (this.#epoch(r.node) !== undefined) this.#o.recorder.baseline(r);
    else this.#withheldBaseline.add(r.node);
  }

  gap(r: GapReport): void {
    const owner = this.#epoch(r.node) !== undefined;
    if (owner || (r.reason === 'node_removed' && this.#lastHeld.has(r.node))) {
      this.#o.recorder.gap(r);
      return;
    }
    this.#o.logger.debug({ node: r.node, reason: r.reason }, 'standby: gap not recorded');
  }

  status(s: NodeStatus): void {
    this.#o.recorder.status(s);
  }

  hitMiss(node: string, hits: number, misses: number): void {
    this.#o.recorder.hitMiss(node, hits, misses);
  }

  drain(): Promise<void> {
    return this.#o.recorder.drain();
  }

  async acquired(a: {
    node: string;
    epoch: number;
    previous: LeaseHolder | null;
    lastHeldAt: number | undefined;
    goLive: () => void;
  }): Promise<void> {
    const o = this.#o;
    const now = o.now();
    this.#lastHeld.add(a.node);
    // What happened between the previous owner's last committed record and now is not in any
    // ledger unless replayed: without a replay it is a blind spot, recorded and reconciled.
    const blind = a.previous !== null || this.#withheldBaseline.has(a.node);
    a.goLive();
    o.append({
      time: now,
      source: 'system',
      type: 'ownership.acquired',
      attrs: {
        node: a.node,
        epoch: a.epoch,
        instance: o.instanceId,
        ledgerId: o.ledgerId,
        previous: a.previous && { epoch: a.previous.epoch, instance: a.previous.instance },
        from: null,
        replayed: 0,
      },
    });
    if (!blind) return;
    this.#withheldBaseline.delete(a.node);
    const since = a.lastHeldAt ?? now;
    await o.markBlind(a.node, a.previous ? 'ownership_takeover' : 'ownership_acquired', since);
  }

  async releasing(r: {
    node: string;
    epoch: number;
    reason: ReleaseReason;
    stopRecording: () => void;
  }): Promise<void> {
    const o = this.#o;
    // What the watcher received so far is applied and recorded; then recording stops, and the
    // release record commits after everything queued before it.
    await o.settleNode(r.node);
    r.stopRecording();
    this.#lastHeld.delete(r.node);
    await o.appendDurable([
      {
        time: o.now(),
        source: 'system',
        type: 'ownership.released',
        attrs: {
          node: r.node,
          epoch: r.epoch,
          instance: o.instanceId,
          through: null,
          reason: r.reason,
        },
      },
    ]);
  }

  fenced(f: { node: string; epoch: number; reason: FenceReason }): void {
    this.#lastHeld.delete(f.node);
    if (this.#o.closed()) return;
    this.#o.append({
      time: this.#o.now(),
      source: 'system',
      type: 'ownership.fenced',
      attrs: { node: f.node, epoch: f.epoch, instance: this.#o.instanceId, reason: f.reason },
    });
  }
}
