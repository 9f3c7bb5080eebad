import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AuditInput, Committed } from '../audit/record.js';
import type { FenceReason, OwnershipHooks } from '../coordination/coordinator.js';
import type { LeaseHolder } from '../coordination/lease.js';
import {
  beforeMarker,
  comparePosition,
  formatPosition,
  parsePosition,
  type ParsedPosition,
  type StreamPosition,
} from '../domain/position.js';
import type { TokenEvent } from '../domain/token-event.js';
import type { CoordinationMetrics } from '../metrics/coordination-metrics.js';
import type { BaselineReport, GapReport, NodeStatus, WatcherSink } from './node-watcher.js';
import type { FallbackReason } from './pmessage-fast-path.js';
import type { KeyspaceRecorder } from './recorder.js';
import type { MarkerAuth, NodeMarkerAuth } from './marker-auth.js';
import { MarkerRejections } from './marker-rejections.js';
import { StandbyBuffer } from './standby-buffer.js';
import { StreamPositionTracker, writeMarker } from './stream-position.js';
import { UnownedPrelude } from './unowned-prelude.js';

/** Who may record for a node now (the Coordinator). */
export interface OwnershipState {
  /** The epoch to record under, or undefined: standby (or fenced). Synchronous, per event. */
  ownerEpoch(node: string): number | undefined;
}

/** The keyspace side the gate needs per node (KeyspaceService). */
export interface OwnedNodes {
  /** Declare a blind spot on one node and reconcile it (the gap path). */
  markBlind(node: string, reason: string, since: number): Promise<void>;
  /** Run the node's baseline again and record it (the first owner's withheld baseline). */
  rebaseline(node: string): Promise<void>;
  /** Resolves once every notification the node's watcher received so far is applied. */
  settleNode(node: string): Promise<void>;
  /** The node's command connection (marker writes). */
  commandsOf(node: string): Redis | undefined;
  /** Cluster: the hash tag for the node's marker keys. */
  markerTag(node: string): string | undefined;
}

export interface OwnershipSinkOptions {
  recorder: KeyspaceRecorder;
  nodes: OwnedNodes;
  /** Queue an ordinary ledger record. */
  append: (input: AuditInput) => void;
  /** Queue records and resolve once they (and everything queued before) committed. */
  appendDurable: (inputs: readonly AuditInput[]) => Promise<readonly Committed[]>;
  /** The value of `committed:<node>` (`<pos>:<tag>`, as published). */
  readCommitted: (node: string) => Promise<string | null>;
  /** Fenced publish of this owner's committed position (`<pos>:<tag>`). */
  publishCommitted: (node: string, epoch: number, pos: string) => Promise<boolean>;
  /** The ledger is closed (a fence during shutdown is then only logged). */
  closed: () => boolean;
  keyPrefix: string;
  /** HMAC fingerprint (the shared `audit.hmacKeys`) of a refused marker or committed value. */
  fingerprint: (value: Buffer) => string;
  /** Tags of marker keys (the shared `audit.hmacKeys`): written by owners, checked on arrival. */
  markerAuth: MarkerAuth;
  markerEveryMs: number;
  standby: { maxEvents: number; maxAgeMs: number };
  metrics: CoordinationMetrics;
  instanceId: string;
  ledgerId: string;
  now: () => number;
  logger: Logger;
}

/** What OwnershipHooks.releasing is given. */
type Releasing = Parameters<OwnershipHooks['releasing']>[0];

/** How long a graceful handover waits to see its own final marker before giving up on it. */
const FINAL_MARKER_WAIT_MS = 3000;
/** Changes kept at most from gaps withheld while no instance owned the node. */
const MAX_WITHHELD_CHANGES = 200_000;
/** Committed positions are published at most this often (the `ledger.committed` channel). */
const PUBLISH_EVERY_MS = 100;

interface NodeState {
  auth: NodeMarkerAuth;
  tracker: StreamPositionTracker;
  buffer: StandbyBuffer;
  /** Token events before any marker of the node: its first owner records them. */
  prelude: UnownedPrelude;
  droppedSeen: number;
  /** While owner: the marker counter of this epoch and the writer timer. */
  epoch?: number;
  marker: number;
  markerTimer?: NodeJS.Timeout;
  /** Graceful handover: events at or after this position are not recorded. */
  stopAt?: StreamPosition;
  /** Highest committed position of this owner (epoch) and whether it is published. */
  committed?: { epoch: number; pos: ParsedPosition; text: string; published: boolean };
  /** Token records this owner queued in its epoch, and those of them committed. */
  recorded: number;
  committedCount: number;
  /** A quiet marker's committed position is being established (settle, then compare counts). */
  quietPending: boolean;
}

/**
 * The gate between the node watchers and the ledger when several instances share the nodes
 * (docs/ha.md). Token events of a node this instance owns (lease held, local deadline not
 * passed: asked synchronously per event) are recorded with their `epoch` and stream position
 * `pos`; those of a node it does not own go to that node's bounded standby buffer. Baseline and
 * gap records are written only by the owner; a standby still builds its inventory from its own
 * baseline. Metrics and status always pass through.
 *
 * Also the keyspace side of ownership changes: markers written by the owner, the committed
 * position published after each commit, the takeover (replay from the buffer after the
 * previous owner's committed position, or a recorded gap and reconciliation when the buffer
 * does not reach back: never silent), the graceful handover through a final marker, and the
 * `ownership.acquired` / `released` / `fenced` records.
 */
export class OwnershipSink implements WatcherSink, OwnershipHooks {
  readonly #o: OwnershipSinkOptions;
  #state: OwnershipState | undefined;
  readonly #nodes = new Map<string, NodeState>();
  /** Nodes whose baseline ran while this instance was a standby (not in this ledger). */
  readonly #withheldBaseline = new Set<string>();
  /**
   * Gaps reconciled while no instance owned the node yet (e.g. a promoted Cluster master's
   * first reconciliation): recorded by whoever becomes its first owner.
   */
  readonly #withheldGap = new Map<string, GapReport>();
  /** Nodes this instance held last (a removed master's final gap is theirs to record). */
  readonly #lastHeld = new Set<string>();
  /**
   * Releases under way, by node: their watchers do not wait for room (see room()), and one as
   * `removed` keeps its node's `node_removed` gap here if its epoch is fenced (see fenced()).
   */
  readonly #releasing = new Map<string, Releasing>();
  #publishTimer: NodeJS.Timeout | undefined;
  readonly #rejections: MarkerRejections;

  constructor(o: OwnershipSinkOptions) {
    this.#o = o;
    this.#rejections = new MarkerRejections({
      append: (input) => {
        if (!o.closed()) o.append(input);
      },
      metrics: o.metrics,
      now: o.now,
      logger: o.logger,
      fingerprint: o.fingerprint,
    });
  }

  attach(state: OwnershipState): void {
    this.#state = state;
  }

  /** The position tracker of a node watcher being created (KeyspaceService factory). */
  trackerFor(node: string): StreamPositionTracker {
    const st = this.#node(node);
    st.tracker = new StreamPositionTracker({
      auth: st.auth,
      keyPrefix: this.#o.keyPrefix,
      onRejected: (reason, key) => this.#rejections.rejected(node, reason, key),
      onReset: () => st.buffer.discontinuity(),
      // A standby holds the stream from this marker on (an owner records instead).
      onBase: (epoch, marker) => {
        st.prelude.markerSeen();
        const own = this.#epoch(node);
        if (own === undefined) st.buffer.markerSeen(epoch, marker);
        else if (own === epoch) this.#quietMarker(node, st, epoch, marker);
      },
    });
    st.buffer.discontinuity();
    return st.tracker;
  }

  /** Every one of `nodes` has a known stream position (a marker seen since the last hole). */
  positionsKnown(nodes: readonly string[]): boolean {
    return nodes.every((n) => this.#nodes.get(n)?.tracker.base !== undefined);
  }

  #node(node: string): NodeState {
    let st = this.#nodes.get(node);
    if (!st) {
      const auth = this.#o.markerAuth.forNode(node);
      st = {
        auth,
        tracker: new StreamPositionTracker({ auth, keyPrefix: this.#o.keyPrefix }),
        buffer: new StandbyBuffer({ ...this.#o.standby, now: this.#o.now }),
        prelude: new UnownedPrelude({ ...this.#o.standby, now: this.#o.now }),
        droppedSeen: 0,
        marker: 0,
        recorded: 0,
        committedCount: 0,
        quietPending: false,
      };
      this.#nodes.set(node, st);
      this.#o.metrics.addNode(node);
    }
    return st;
  }

  #epoch(node: string): number | undefined {
    return this.#state?.ownerEpoch(node);
  }

  token(ev: TokenEvent): void {
    const epoch = this.#epoch(ev.node);
    const st = this.#nodes.get(ev.node);
    const p = ev.position;
    if (epoch !== undefined && !(st?.stopAt && p && comparePosition(p, st.stopAt) >= 0)) {
      if (st?.epoch === epoch) st.recorded += 1;
      this.#o.recorder.token(ev, {
        epoch,
        pos: p && formatPosition(p, ev.positionIndex),
      });
      return;
    }
    const s = st ?? this.#node(ev.node);
    if (p === undefined) s.prelude.push(ev);
    s.buffer.push(ev);
    const m = this.#o.metrics;
    if (s.buffer.dropped > s.droppedSeen) {
      m.standbyDropped.inc({ node: ev.node }, s.buffer.dropped - s.droppedSeen);
      s.droppedSeen = s.buffer.dropped;
    }
    m.standbyEvents.set({ node: ev.node }, s.buffer.depth);
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
      if (!owner) this.#lastHeld.delete(r.node);
      this.#o.recorder.gap(r);
      return;
    }
    const prev = this.#withheldGap.get(r.node);
    // Bounded: a standby of an owned node only reconciles after its own disconnects.
    if (!prev || prev.changes.length + r.changes.length <= MAX_WITHHELD_CHANGES) {
      this.#withheldGap.set(
        r.node,
        prev
          ? { ...r, start: Math.min(prev.start, r.start), changes: [...prev.changes, ...r.changes] }
          : r,
      );
    }
    this.#o.logger.debug({ node: r.node, reason: r.reason }, 'standby: gap not recorded');
  }

  status(s: NodeStatus): void {
    this.#o.recorder.status(s);
  }

  hitMiss(node: string, hits: number, misses: number): void {
    this.#o.recorder.hitMiss(node, hits, misses);
  }

  fastPathFallback(node: string, reason: FallbackReason): void {
    this.#o.recorder.fastPathFallback(node, reason);
  }

  notificationsDropped(node: string, count: number): void {
    this.#o.recorder.notificationsDropped(node, count);
  }

  drain(): Promise<void> {
    return this.#o.recorder.drain();
  }

  /**
   * Only a node this instance records waits for room in its ledger: a standby's events go to
   * its StandbyBuffer (bounded by age: a wait would age them out), and a node being released
   * applies what it has at once, before its lease runs out, as before backpressure.
   */
  room(node: string, stop: () => boolean): Promise<void> | undefined {
    if (this.#epoch(node) === undefined || this.#releasing.has(node)) return undefined;
    return this.#o.recorder.room(node, stop);
  }

  /**
   * Committed batches (the ledger's committed channel): the highest committed position of each
   * node owned, published (fenced by the lease) at most every PUBLISH_EVERY_MS.
   */
  onCommitted(batch: readonly Committed[]): void {
    let changed = false;
    for (const c of batch) {
      const a = c.input.attrs;
      if (!a || typeof a.epoch !== 'number') continue;
      if (!c.input.type.startsWith('token.') || typeof a.node !== 'string') continue;
      const st = this.#nodes.get(a.node);
      if (st?.epoch !== a.epoch) continue;
      st.committedCount += 1;
      if (typeof a.pos !== 'string') continue;
      const pos = parsePosition(a.pos);
      if (!pos) continue;
      const cur = st.committed;
      if (cur && cur.epoch === a.epoch && comparePositionIndexed(pos, cur.pos) <= 0) continue;
      st.committed = { epoch: a.epoch, pos, text: a.pos, published: false };
      changed = true;
    }
    if (changed) this.#schedulePublish();
  }

  /**
   * The owner's own marker (epoch, n) arrived while everything it recorded was committed: once
   * the watcher has applied what it received so far, if that still holds, everything before the
   * marker is committed, and `e.n.-1` is published. Without it, a quiet node (markers, no token
   * events) keeps an old committed position, and a standby whose buffer starts after it (it
   * restarted or reconnected meanwhile) records a takeover gap that reconciliation finds empty.
   */
  #quietMarker(node: string, st: NodeState, epoch: number, marker: number): void {
    if (st.epoch !== epoch || st.recorded !== st.committedCount || st.quietPending) return;
    st.quietPending = true;
    const done = (): void => {
      st.quietPending = false;
      if (st.epoch !== epoch || st.stopAt || st.recorded !== st.committedCount) return;
      const pos = beforeMarker(epoch, marker);
      const cur = st.committed;
      if (cur && cur.epoch === epoch && comparePositionIndexed(pos, cur.pos) <= 0) return;
      st.committed = { epoch, pos, text: formatPosition(pos), published: false };
      this.#schedulePublish();
    };
    this.#o.nodes.settleNode(node).then(done, () => {
      st.quietPending = false;
    });
  }

  #schedulePublish(): void {
    if (!this.#publishTimer) {
      this.#publishTimer = setTimeout(() => {
        this.#publishTimer = undefined;
        void this.#publish();
      }, PUBLISH_EVERY_MS);
      this.#publishTimer.unref();
    }
  }

  async #publish(): Promise<void> {
    for (const [node, st] of this.#nodes) {
      const c = st.committed;
      if (!c || c.published || st.epoch !== c.epoch || st.stopAt) continue;
      c.published = true;
      const signed = `${c.text}:${st.auth.committedTag(c.text)}`;
      await this.#o.publishCommitted(node, c.epoch, signed).catch((err: unknown) => {
        c.published = false;
        this.#o.logger.debug({ node, err: (err as Error).message }, 'committed publish failed');
      });
    }
  }

  async acquired(a: {
    node: string;
    epoch: number;
    previous: LeaseHolder | null;
    lastHeldAt: number | undefined;
    goLive: () => void;
  }): Promise<void> {
    const o = this.#o;
    const st = this.#node(a.node);
    this.#lastHeld.add(a.node);
    // `last` is on the coordination Redis too, untagged: a previous epoch at or above our own
    // (the acquire script INCRs the counter beside the read of `last`, so a real one is lower),
    // or above any marker epoch this stream has seen, was written by someone else. Believed, it
    // would place the replay's start past every buffered event (nothing replayed, no gap) and
    // raise the tracker's floor over this owner's own markers.
    const seen = st.tracker.base;
    const previousForged =
      a.previous !== null &&
      (a.previous.epoch >= a.epoch || (seen !== undefined && a.previous.epoch > seen.epoch));
    if (!previousForged) st.tracker.ignoreEpochsBelow(a.previous?.epoch ?? 0);
    let committed: string | null = null;
    try {
      committed = await o.readCommitted(a.node);
    } catch (err) {
      o.logger.warn(
        { node: a.node, err: (err as Error).message },
        'cannot read committed position',
      );
    }
    // Where the previous owner's confirmed records end. Never committed anything by position:
    // from the start of its epoch (its first marker is n = 1). Only a position whose tag
    // verifies (an owner of the node wrote it) is read.
    let committedText: string | null = null;
    let forged = false;
    if (committed !== null) {
      const i = committed.lastIndexOf(':');
      if (i > 0 && st.auth.verifyCommitted(committed.slice(0, i), committed.slice(i + 1)))
        committedText = committed.slice(0, i);
      else {
        forged = true;
        this.#rejections.rejected(a.node, 'committed_bad_mac', Buffer.from(committed, 'latin1'));
      }
    }
    const read = committedText === null ? undefined : parsePosition(committedText);
    // The committed key is on the coordination Redis, where whoever has write access can put any
    // position: one past everything the previous owner could have committed (a marker of a later
    // epoch than its own, or more than one marker past the base this stream has seen) would make
    // the replay take nothing, silently. Not believed: the takeover records a gap instead.
    const base = st.tracker.base;
    const implausible =
      forged ||
      previousForged ||
      (read !== undefined &&
        ((a.previous !== null && read.epoch > a.previous.epoch) ||
          (base !== undefined &&
            comparePosition(
              { epoch: read.epoch, marker: read.marker, offset: 0 },
              { epoch: base.epoch, marker: base.marker + 1, offset: 0 },
            ) > 0)));
    const parsed = implausible ? undefined : read;
    const from: ParsedPosition | undefined =
      parsed ?? (a.previous ? beforeMarker(a.previous.epoch, 0) : undefined);
    const fromText = from && (committedText ?? formatPosition(from));
    const now = o.now();
    // Synchronous from here to goLive(): no event can fall between the replay and live recording.
    let replayed: TokenEvent[] = [];
    /** First owner of the node: what every instance received before anyone owned it. */
    let prelude: TokenEvent[] = [];
    let blind: string | undefined;
    let rebaseline = false;
    if (implausible) {
      blind = previousForged ? 'previous_implausible' : 'committed_implausible';
    } else if (from) {
      const r = st.buffer.eventsAfter(from, parsed?.index);
      if (r.ok) replayed = r.events;
      else if (
        r.reason === 'unknown' &&
        base &&
        comparePosition(beforeMarker(base.epoch, base.marker), from) <= 0
      ) {
        // No token event buffered, and this stream has been seen without a hole since a marker
        // at or before `from` (a reset makes the base unknown): nothing happened after `from`.
        replayed = [];
      } else blind = r.reason;
    } else {
      // Nobody owned the node before (no previous holder, nothing committed): no ledger has
      // what this instance received from it so far, while its inventory applied it. Recorded
      // here, else a deletion in that window would be in no ledger and the reconciliation of
      // the node's gap (against that inventory) would find no difference.
      const pre = st.prelude.take();
      // Markers of the node were seen, so someone owned it, yet neither `last` nor a committed
      // position names it (lost or deleted on the coordination Redis): where its records end is
      // unknown, so this is a blind takeover (gap, and the buffer recorded), not a first owner.
      if (pre.owned) blind = 'previous_owner_unknown';
      else if (!pre.complete) blind = 'dropped';
      // Its baseline ran while it was a standby (not in this ledger) but nothing it received
      // since is missing (the prelude): no blind spot, only the baseline to run again as owner.
      else rebaseline = this.#withheldBaseline.has(a.node);
      if (!pre.owned) prelude = pre.events;
    }
    st.prelude.markerSeen();
    // Cannot replay exactly (the gap below says so): what the buffer holds is still recorded,
    // else events after the hole that only this instance received (e.g. between the previous
    // owner's fence or failed final marker and now) would hide from the gap's reconciliation,
    // which diffs against an inventory that already applied them. Overlap with what the previous
    // owner recorded carries the same positions: deduplicated when ledgers are merged.
    if (blind !== undefined) replayed = st.buffer.held();
    st.epoch = a.epoch;
    st.marker = 0;
    st.stopAt = undefined;
    st.committed = undefined;
    st.recorded = replayed.length + prelude.length;
    st.committedCount = 0;
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
        from: fromText ?? null,
        replayed: replayed.length + prelude.length,
      },
    });
    const gap = this.#withheldGap.get(a.node);
    this.#withheldGap.delete(a.node);
    // The first owner ever: nobody recorded the node before, so its blind spots are ours, and
    // then the events received since (no positions: no marker was written before).
    if (gap && !from) o.recorder.gap(gap);
    for (const ev of prelude) o.recorder.token(ev, { epoch: a.epoch });
    for (const ev of replayed) {
      const p = ev.position;
      o.recorder.token(ev, { epoch: a.epoch, pos: p && formatPosition(p, ev.positionIndex) });
    }
    st.buffer.discontinuity();
    o.metrics.standbyEvents.set({ node: a.node }, 0);
    const n = replayed.length + prelude.length;
    if (n > 0) o.metrics.replayed.inc({ node: a.node }, n);
    a.goLive();
    this.#startMarkers(a.node, st, a.epoch);
    if (blind === undefined) {
      this.#withheldBaseline.delete(a.node);
      if (rebaseline) await o.nodes.rebaseline(a.node);
      return;
    }
    o.logger.warn(
      { node: a.node, epoch: a.epoch, from: fromText, why: blind },
      'takeover cannot replay from the standby buffer: recording a gap and reconciling',
    );
    this.#withheldBaseline.delete(a.node);
    const since = a.lastHeldAt ?? now;
    await o.nodes.markBlind(
      a.node,
      a.previous ? 'ownership_takeover' : 'ownership_acquired',
      since,
    );
  }

  #startMarkers(node: string, st: NodeState, epoch: number): void {
    clearInterval(st.markerTimer);
    const write = (): void => {
      if (st.epoch !== epoch || st.stopAt || this.#epoch(node) !== epoch) return;
      void this.#writeMarker(node, st, epoch);
    };
    write();
    st.markerTimer = setInterval(write, this.#o.markerEveryMs);
    st.markerTimer.unref();
  }

  async #writeMarker(node: string, st: NodeState, epoch: number): Promise<number | undefined> {
    const commands = this.#o.nodes.commandsOf(node);
    if (!commands || commands.status !== 'ready') return undefined;
    const n = ++st.marker;
    try {
      await writeMarker(
        commands,
        st.auth,
        epoch,
        n,
        this.#o.nodes.markerTag(node),
        this.#o.keyPrefix,
      );
      return n;
    } catch (err) {
      this.#o.logger.debug({ node, err: (err as Error).message }, 'marker write failed');
      return undefined;
    }
  }

  async releasing(r: Releasing): Promise<void> {
    this.#releasing.set(r.node, r);
    try {
      await this.#release(r);
    } finally {
      if (this.#releasing.get(r.node) === r) this.#releasing.delete(r.node);
    }
  }

  async #release(r: Releasing): Promise<void> {
    const o = this.#o;
    const st = this.#node(r.node);
    clearInterval(st.markerTimer);
    let through: StreamPosition | undefined;
    // A node that left the topology: its `node_removed` gap (tokens retired once its slots are
    // served again) comes after this release and is this instance's to record.
    const removed = r.reason === 'removed';
    // Final marker M: events before it are recorded here, from it on by the next owner.
    const n = st.marker + 1;
    st.stopAt = beforeMarker(r.epoch, n);
    const written = await this.#writeMarker(r.node, st, r.epoch);
    if (written === n && (await this.#sees(st, r.epoch, n))) {
      await o.nodes.settleNode(r.node);
      through = st.stopAt;
    } else {
      // Marker not written or not seen: stop now; the next owner replays after what committed.
      st.stopAt = undefined;
      await o.nodes.settleNode(r.node);
    }
    r.stopRecording();
    if (!removed) this.#lastHeld.delete(r.node);
    await o.appendDurable([
      {
        time: o.now(),
        source: 'system',
        type: 'ownership.released',
        attrs: {
          node: r.node,
          epoch: r.epoch,
          instance: o.instanceId,
          through: through ? formatPosition(through) : (st.committed?.text ?? null),
          reason: r.reason,
        },
      },
    ]);
    // Everything before the marker is committed now (the release record came after it).
    const pos = through ? formatPosition(through) : st.committed?.text;
    if (pos !== undefined) {
      const signed = `${pos}:${st.auth.committedTag(pos)}`;
      await o.publishCommitted(r.node, r.epoch, signed).catch((err: unknown) => {
        o.logger.warn(
          { node: r.node, err: (err as Error).message },
          'final committed publish failed',
        );
      });
    }
    st.epoch = undefined;
    st.stopAt = undefined;
  }

  /** Waits until this instance's own stream reached marker (epoch, n). */
  async #sees(st: NodeState, epoch: number, n: number): Promise<boolean> {
    const deadline = Date.now() + FINAL_MARKER_WAIT_MS;
    for (;;) {
      const b = st.tracker.base;
      if (b && comparePosition({ ...b, offset: 0 }, { epoch, marker: n, offset: 0 }) >= 0)
        return true;
      if (Date.now() > deadline) return false;
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  fenced(f: { node: string; epoch: number; reason: FenceReason }): void {
    // Fenced while it releases that epoch as `removed` (renewed meanwhile, so: the coordination
    // Redis unreachable, or the lease key gone with it, a failover or a restart without
    // persistence): this instance is still the one to record the node's `node_removed` gap
    // (nobody acquires a node that left the topology). Dropped here, every instance would
    // withhold that gap and its tokens would end in no ledger. A later epoch's fence drops it.
    const rel = this.#releasing.get(f.node);
    const removing = rel?.reason === 'removed' && rel.epoch === f.epoch;
    if (!removing) this.#lastHeld.delete(f.node);
    const st = this.#nodes.get(f.node);
    if (st) {
      clearInterval(st.markerTimer);
      st.epoch = undefined;
      st.stopAt = undefined;
    }
    if (this.#o.closed()) return;
    this.#o.append({
      time: this.#o.now(),
      source: 'system',
      type: 'ownership.fenced',
      attrs: { node: f.node, epoch: f.epoch, instance: this.#o.instanceId, reason: f.reason },
    });
  }

  close(): void {
    clearTimeout(this.#publishTimer);
    this.#rejections.close();
    for (const st of this.#nodes.values()) clearInterval(st.markerTimer);
  }
}

/** Position order with the event index (a commit may end inside one notification's events). */
function comparePositionIndexed(a: ParsedPosition, b: ParsedPosition): number {
  return comparePosition(a, b) || (a.index ?? -1) - (b.index ?? -1);
}
