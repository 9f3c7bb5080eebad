import { randomUUID } from 'node:crypto';
import type { Ledger } from '../audit/ledger.js';
import type { Committed } from '../audit/record.js';
import {
  DEFAULT_PART_BYTES,
  planSnapshot,
  SNAPSHOT_PART_RECORD,
  SNAPSHOT_RECORD,
  snapshotParts,
  type PartLists,
  type SnapshotPlan,
} from './snapshot-parts.js';

export type SnapshotReason = 'start' | 'interval' | 'shutdown';

/** A correlator state captured at one instant, with the ledger position it reflects. */
export interface CapturedSnapshot {
  reason: SnapshotReason;
  /** Every record up to this seq is reflected in `state`. */
  throughSeq: number;
  /** When it was captured (ms): the time of its head and of every part. */
  time: number;
  state: object;
}

interface Writing {
  id: string;
  snap: CapturedSnapshot;
  plan: SnapshotPlan;
  parts: Generator<PartLists, void, undefined>;
  /** Parts appended so far. */
  written: number;
  /** The last part appended has not committed yet (paced writing waits for it). */
  awaiting: boolean;
  startedAt: number;
}

/**
 * Writes captured correlator snapshots to the ledger as bounded `correlator.snapshot_part`
 * records followed by their `correlator.snapshot` head (issue #16). Paced writing appends one
 * part, waits for it to commit (the committed channel), then appends the next on a later
 * event-loop turn: encoding, hashing and writing a snapshot of any size never holds the loop
 * longer than one part, and never piles parts into one ledger batch. Start-up and shutdown
 * snapshots are written at once.
 */
export class SnapshotWriter {
  readonly #ledger: Pick<Ledger, 'append'>;
  readonly #partBytes: number;
  #current: Writing | undefined;
  #immediate: NodeJS.Immediate | undefined;

  constructor(ledger: Pick<Ledger, 'append'>, partBytes = DEFAULT_PART_BYTES) {
    this.#ledger = ledger;
    this.#partBytes = partBytes;
  }

  /** When the snapshot still being written started (ms), or undefined when none is. */
  get busySince(): number | undefined {
    return this.#current?.startedAt;
  }

  /**
   * Starts writing `snap`. Paced: its parts go one per commit; else all now. A snapshot still
   * being written is finished first, synchronously (its parts already in the ledger stay valid).
   */
  write(snap: CapturedSnapshot, paced: boolean, startedAt = snap.time): void {
    this.finish();
    const plan = planSnapshot(snap.state);
    const w: Writing = {
      id: randomUUID(),
      snap,
      plan,
      parts: snapshotParts(plan, this.#partBytes),
      written: 0,
      awaiting: false,
      startedAt,
    };
    this.#current = w;
    if (paced) this.#later(w);
    else this.finish();
  }

  /** Writes what is left of the snapshot in progress, now (shutdown). */
  finish(): void {
    const w = this.#current;
    if (!w) return;
    this.#cancelLater();
    while (this.#step(w));
  }

  /**
   * Drops the snapshot in progress (a part the ledger dropped under back-pressure never
   * commits): its parts stay without a head, which restore ignores.
   */
  abandon(): void {
    this.#cancelLater();
    this.#current = undefined;
  }

  /** Committed batches: once the awaited part committed, the next goes on a later turn. */
  onCommitted(batch: readonly Committed[]): void {
    const w = this.#current;
    if (!w?.awaiting) return;
    for (const c of batch) {
      const a = c.input.attrs;
      if (
        c.input.type === SNAPSHOT_PART_RECORD &&
        a?.snapshotId === w.id &&
        a.part === w.written - 1
      ) {
        w.awaiting = false;
        this.#later(w);
        return;
      }
    }
  }

  #later(w: Writing): void {
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      if (this.#current !== w) return;
      try {
        if (this.#step(w)) w.awaiting = true;
      } catch {
        // The ledger closed under it (ERR_AUDIT_CLOSED): without its head the snapshot is
        // ignored by restore, as after a crash.
        this.abandon();
      }
    });
  }

  #cancelLater(): void {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
  }

  /** Appends the next part, or the head after the last one; false once the head is written. */
  #step(w: Writing): boolean {
    const { reason, throughSeq, time } = w.snap;
    const next = w.parts.next();
    if (!next.done) {
      this.#ledger.append({
        time,
        source: 'correlator',
        type: SNAPSHOT_PART_RECORD,
        attrs: { snapshotId: w.id, throughSeq, part: w.written, lists: next.value },
      });
      w.written++;
      return true;
    }
    this.#ledger.append({
      time,
      source: 'correlator',
      type: SNAPSHOT_RECORD,
      attrs: {
        reason,
        throughSeq,
        snapshotId: w.id,
        parts: w.written,
        sections: w.plan.sections,
        state: w.plan.head,
      },
    });
    this.#current = undefined;
    return false;
  }
}
