import { TokenwatchError } from '../errors.js';
import type { Acquired, Ended, Gap, LedgerOwnership } from './ownership-records.js';

/**
 * Coverage of several instances' ledgers (issue #20, docs/ha-evidence.md): for every watched
 * node that a coordinated instance owned, and every moment of the period from its first
 * acquisition on, some given ledger owned it or a `keyspace.gap` states the blind window.
 *
 * Pure: it reads the ownership records of ledgers that each verified on their own (verify-merged.ts
 * passes no others) and trusts two things only: each ledger's own verification (chain and
 * signatures make its records the writer's) and the coordination epochs (one INCR per successful
 * acquisition, so the epochs of a node are consecutive: a missing one is a ledger not given).
 */

export type CoverageProblemClass = 'missing_epoch' | 'unowned' | 'epoch_conflict';

/** One hole in the evidence, naming the node, the epoch and the span of time it concerns. */
export interface CoverageProblem {
  class: CoverageProblemClass;
  node: string;
  /** The missing epoch (the first of a run), the epoch before an unowned stretch, or the conflicting one. */
  epoch: number | null;
  /** The last missing epoch of a run (missing_epoch only, when more than one). */
  toEpoch?: number;
  /** unix ms. */
  span: { from: number; to: number };
  detail: string;
}

/** How an epoch's span ends. */
export type SpanEnd =
  | 'next'
  | 'released'
  | 'fenced'
  | 'last_record'
  | 'period_end'
  /** A missing epoch follows and this one recorded no end: its span is its acquisition only. */
  | 'unknown';

/** One epoch of a node, as the evidence shows it. */
export interface EpochSpan {
  epoch: number;
  instance: string | null;
  ledger: string;
  label: string;
  start: number;
  end: number;
  endedBy: SpanEnd;
}

export interface NodeCoverage {
  node: string;
  /** [first acquisition (or the period start), period end]: what must be covered. */
  window: { from: number; to: number };
  epochs: EpochSpan[];
  gaps: { start: number; end: number; ledger: string }[];
  /** Share of the window owned or stated by a gap (1 when complete). */
  covered: number;
}

export interface CoverageReport {
  ok: boolean;
  period: { from: number; to: number };
  /** The ledgers whose records were read (only ones that verified). */
  ledgers: { ledger: string; label: string }[];
  nodes: NodeCoverage[];
  problems: CoverageProblem[];
  warnings: string[];
}

export interface CoverageOptions {
  ledgers: readonly LedgerOwnership[];
  /** unix ms. */
  from: number;
  to: number;
  /**
   * Unowned stretches up to this long are not reported (default 1000): the times come from the
   * clocks of different instances (docs/ha.md: clock drift).
   */
  toleranceMs?: number;
  /**
   * Nodes that must be covered from `from` on even when no given ledger names them (the
   * deployment's topology, `verify --node`): a node owned all period by one withheld instance
   * leaves no trace in the other ledgers.
   */
  nodes?: readonly string[];
}

const iso = (t: number): string => new Date(t).toISOString();

/** Checks coverage of every node that has at least one `ownership.acquired` record. */
export function checkCoverage(o: CoverageOptions): CoverageReport {
  const tolerance = o.toleranceMs ?? 1000;
  const acquired = new Map<string, Acquired[]>();
  const ended = new Map<string, Ended[]>();
  const gaps = new Map<string, Gap[]>();
  const labelOf = new Map(o.ledgers.map((l) => [l.ledger, l.label] as const));
  const lastTimeOf = new Map(o.ledgers.map((l) => [l.ledger, l.lastTime] as const));
  const warnings: string[] = [];
  for (const l of o.ledgers) {
    if (l.malformed > 0)
      warnings.push(
        `${l.label}: ${l.malformed} ownership.* / keyspace.gap record(s) without node, epoch or span: ignored`,
      );
    for (const r of l.records) {
      const into = r.type === 'acquired' ? acquired : r.type === 'gap' ? gaps : ended;
      const list = (into as Map<string, (typeof r)[]>).get(r.node) ?? [];
      list.push(r);
      (into as Map<string, (typeof r)[]>).set(r.node, list);
    }
  }
  const problems: CoverageProblem[] = [];
  const nodes: NodeCoverage[] = [];
  for (const node of [...new Set([...acquired.keys(), ...(o.nodes ?? [])])].sort()) {
    const n = nodeCoverage(
      node,
      acquired.get(node) ?? [],
      ended.get(node) ?? [],
      gaps.get(node) ?? [],
      o,
      tolerance,
      (ledger) => labelOf.get(ledger) ?? ledger,
      (ledger) => lastTimeOf.get(ledger) ?? null,
    );
    nodes.push(n.coverage);
    problems.push(...n.problems);
  }
  if (acquired.size === 0 && (o.nodes ?? []).length === 0)
    warnings.push(
      'no ownership.acquired record in the given ledgers: no coordinated instance wrote them, so there is no coverage to prove',
    );
  return {
    ok: problems.length === 0,
    period: { from: o.from, to: o.to },
    ledgers: o.ledgers.map((l) => ({ ledger: l.ledger, label: l.label })),
    nodes,
    problems,
    warnings,
  };
}

function nodeCoverage(
  node: string,
  acqs: readonly Acquired[],
  ends: readonly Ended[],
  gapRecords: readonly Gap[],
  o: CoverageOptions,
  tolerance: number,
  label: (ledger: string) => string,
  lastTime: (ledger: string) => number | null,
): { coverage: NodeCoverage; problems: CoverageProblem[] } {
  const problems: CoverageProblem[] = [];
  const byEpoch = new Map<number, Acquired>();
  for (const a of [...acqs].sort((x, y) => x.time - y.time)) {
    const seen = byEpoch.get(a.epoch);
    if (seen === undefined) {
      byEpoch.set(a.epoch, a);
    } else if (seen.ledger !== a.ledger || seen.instance !== a.instance) {
      // Two owners under one epoch: the coordination Redis lost its epoch counter (docs/ha.md).
      problems.push({
        class: 'epoch_conflict',
        node,
        epoch: a.epoch,
        span: { from: seen.time, to: a.time },
        detail: `node ${node}: epoch ${a.epoch} acquired twice (${label(seen.ledger)} at ${iso(seen.time)}, ${label(a.ledger)} at ${iso(a.time)}): the epochs do not identify one owner`,
      });
    }
  }
  // An epoch ends by its own owner's record only: another ledger cannot end it.
  const endOf = new Map<number, Ended>();
  for (const e of ends) {
    const a = byEpoch.get(e.epoch);
    if (!a || a.ledger !== e.ledger) continue;
    const seen = endOf.get(e.epoch);
    if (!seen || e.time < seen.time) endOf.set(e.epoch, e);
  }
  const epochs = [...byEpoch.keys()].sort((x, y) => x - y);
  const first = byEpoch.get(epochs[0] ?? 0);

  const missingSpans: [number, number][] = [];
  const missing = (fromEpoch: number, toEpoch: number, span: { from: number; to: number }) => {
    // Only what the missing owner held inside the period matters (a report of one month).
    if (span.to <= o.from || span.from >= o.to) return;
    missingSpans.push([span.from, span.to]);
    const which = fromEpoch === toEpoch ? `epoch ${fromEpoch}` : `epochs ${fromEpoch}..${toEpoch}`;
    problems.push({
      class: 'missing_epoch',
      node,
      epoch: fromEpoch,
      ...(toEpoch !== fromEpoch ? { toEpoch } : {}),
      span,
      detail: `node ${node}: ${which} owned it from ${iso(span.from)} to ${iso(span.to)} but no given ledger holds its ownership.acquired record: a ledger is missing`,
    });
  };
  // The first owner took over from an epoch no given ledger holds: missing, if it owned in the period.
  if (first && first.time > o.from) {
    // The first given epoch started inside the period: its predecessor (the epoch it names as
    // `previous`, else the one before it: epochs are consecutive) owned the node until then. A
    // `previous` of null or not below the epoch is not believed when the epoch is above 1: the
    // coordination Redis' `last` key can be deleted or rewritten by whoever writes it.
    const p = first.previous;
    if (p !== null && p.epoch < first.epoch && !byEpoch.has(p.epoch)) {
      missing(p.epoch, first.epoch - 1, { from: o.from, to: first.time });
    } else if (first.epoch > 1) {
      missing(first.epoch - 1, first.epoch - 1, { from: o.from, to: first.time });
    } else if (p !== null && !byEpoch.has(p.epoch)) {
      missing(p.epoch, p.epoch, { from: o.from, to: first.time });
    }
  }

  const spans: EpochSpan[] = [];
  for (let i = 0; i < epochs.length; i++) {
    const a = byEpoch.get(epochs[i] as number) as Acquired;
    const nextEpoch = epochs[i + 1];
    const next = nextEpoch === undefined ? undefined : byEpoch.get(nextEpoch);
    const own = endOf.get(a.epoch);
    let end: number;
    let endedBy: SpanEnd;
    if (next && next.epoch === a.epoch + 1 && next.from !== null) {
      // The next owner replayed from the last position this one committed: the stretch up to
      // its acquisition is in its ledger (overlap, never loss).
      end = next.time;
      endedBy = 'next';
    } else if (own) {
      end = own.time;
      endedBy = own.type;
    } else if (next && next.epoch !== a.epoch + 1) {
      // A missing epoch follows: when this one ended is not known, the missing one's span
      // (reported below) starts at this acquisition.
      end = a.time;
      endedBy = 'unknown';
    } else if (next) {
      end = Math.min(next.time, lastTime(a.ledger) ?? next.time);
      endedBy = 'last_record';
    } else {
      end = o.to;
      endedBy = 'period_end';
    }
    if (!next && own?.type === 'released' && own.reason === 'handover' && own.time >= o.to) {
      // A handover names a successor, and the period ends at the release (the given ledgers
      // say nothing later): no unowned stretch can show that the successor's ledger is not
      // given, so its epoch is missing.
      problems.push({
        class: 'missing_epoch',
        node,
        epoch: a.epoch + 1,
        span: { from: own.time, to: own.time },
        detail: `node ${node}: epoch ${a.epoch} was handed over at ${iso(own.time)}, the end of the period, but no given ledger holds epoch ${a.epoch + 1}'s ownership.acquired record: a ledger is missing`,
      });
    }
    const named = next?.previous;
    if (
      next &&
      named &&
      named.epoch === a.epoch &&
      named.instance !== null &&
      a.instance !== null &&
      named.instance !== a.instance
    ) {
      // The successor names another owner for this epoch: the given record of it is some other
      // owner's (another deployment's ledger for a node of the same name, say), not the one
      // the epochs link.
      problems.push({
        class: 'epoch_conflict',
        node,
        epoch: a.epoch,
        span: { from: a.time, to: next.time },
        detail: `node ${node}: epoch ${next.epoch} (${label(next.ledger)}) took over from ${named.instance} under epoch ${a.epoch}, but the given epoch ${a.epoch} is ${a.instance}'s (${label(a.ledger)}): the epochs do not identify one owner`,
      });
    }
    if (next && next.epoch !== a.epoch + 1) {
      missing(a.epoch + 1, next.epoch - 1, { from: Math.min(end, next.time), to: next.time });
    }
    spans.push({
      epoch: a.epoch,
      instance: a.instance,
      ledger: a.ledger,
      label: label(a.ledger),
      start: a.time,
      end: Math.max(a.time, end),
      endedBy,
    });
  }

  // Before the first acquisition: nothing watched the node (previous: null), or the missing
  // predecessor is reported above. A node the caller named that no ledger owned must be covered
  // from the period's start.
  // A node that left the topology (its last owner released it as `removed`): nobody is to own
  // it afterwards, so its window ends at that release.
  const last = spans.at(-1);
  const lastEnd = last && endOf.get(last.epoch);
  const removedAt =
    last?.endedBy === 'released' && lastEnd?.type === 'released' && lastEnd.reason === 'removed'
      ? lastEnd.time
      : undefined;
  const window = {
    from: first ? Math.max(o.from, first.time) : o.from,
    to: removedAt === undefined ? o.to : Math.max(o.from, Math.min(o.to, removedAt)),
  };
  const gapList = gapRecords.map((g) => ({ start: g.start, end: g.end, ledger: g.ledger }));
  // A missing epoch's span is reported as such, not again as unowned.
  const covered: [number, number, number | null][] = [
    ...spans.map((s) => [s.start, s.end, s.epoch] as [number, number, number]),
    ...gapList.map((g) => [g.start, g.end, null] as [number, number, null]),
    ...missingSpans.map(([a, b]) => [a, b, null] as [number, number, null]),
  ].sort((x, y) => x[0] - y[0]);
  let cursor = window.from;
  let lastEpoch: number | null = null;
  let holes = missingSpans.reduce(
    (sum, [a, b]) => sum + Math.max(0, Math.min(b, window.to) - Math.max(a, window.from)),
    0,
  );
  const hole = (from: number, to: number) => {
    holes += to - from;
    if (to - from <= tolerance) return;
    problems.push({
      class: 'unowned',
      node,
      epoch: lastEpoch,
      span: { from, to },
      detail: `node ${node}: no given ledger owned it from ${iso(from)} to ${iso(to)}${lastEpoch === null ? '' : ` (after epoch ${lastEpoch})`} and no keyspace.gap record states that window`,
    });
  };
  for (const [s, e, epoch] of covered) {
    if (e <= cursor) {
      if (epoch !== null && e === cursor) lastEpoch = epoch;
      continue;
    }
    if (s > cursor && cursor < window.to) hole(cursor, Math.min(s, window.to));
    cursor = e;
    if (epoch !== null) lastEpoch = epoch;
  }
  if (cursor < window.to) hole(cursor, window.to);
  const length = window.to - window.from;
  return {
    coverage: {
      node,
      window,
      epochs: spans,
      gaps: gapList,
      covered: length > 0 ? Math.max(0, 1 - holes / length) : 1,
    },
    problems,
  };
}

/** Thrown where incomplete coverage must stop a command (a merged export, a caller's gate). */
export class CoverageError extends TokenwatchError {
  readonly problems: readonly CoverageProblem[];
  constructor(problems: readonly CoverageProblem[]) {
    const [p] = problems;
    super(
      'ERR_COVERAGE_INCOMPLETE',
      p ? `coverage: ${p.class}: ${p.detail}` : 'coverage incomplete',
      { details: { problems: problems.slice(0, 20) } },
    );
    this.name = 'CoverageError';
    this.problems = problems;
  }
}

/** Throws {@link CoverageError} unless the report is complete. */
export function assertCoverage(r: CoverageReport): void {
  if (!r.ok) throw new CoverageError(r.problems);
}
