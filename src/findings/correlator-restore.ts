import type { Ledger } from '../audit/ledger.js';
import { Correlator } from '../correlate/index.js';
import type { CorrelatorOptions, RevocationLatency } from '../correlate/index.js';
import type { Finding } from '../domain/finding.js';
import { isTokenwatchError } from '../errors.js';
import { decodeRecord, recordedFinding } from './ledger-events.js';
import { findSnapshot } from './snapshot-store.js';

export { SNAPSHOT_PART_RECORD, SNAPSHOT_RECORD } from './snapshot-parts.js';
/** Audit type stating at start-up what was restored and replayed. */
export const RESTORED_RECORD = 'correlator.restored';

const PAGE = 2000;

/**
 * The correlator's clock: the service's clock, except while replaying the ledger, when it reads
 * the time of the record being replayed (so deadlines and churn buckets fall as they did).
 */
export class ReplayClock {
  at: number | undefined;
  readonly #real: () => number;

  constructor(real: () => number) {
    this.#real = real;
  }

  now(): number {
    return this.at ?? this.#real();
  }
}

/** What the `correlator.restored` record states. */
export interface RestoreReport {
  /**
   * none: no snapshot in the ledger; rejected: none complete, or the newest complete one failed
   * validation (state starts empty).
   */
  outcome: 'none' | 'restored' | 'rejected';
  snapshotSeq: number | null;
  /** Newer snapshots passed over for lack of a part (issue #16: split snapshots), with why. */
  incomplete: string[];
  /** The snapshot reflects every record up to this seq; replay starts after it. */
  throughSeq: number | null;
  /** Last seq replayed (the ledger's last seq at start-up). */
  replayedThroughSeq: number | null;
  /** Token and provider records applied by replay. */
  replayedEvents: number;
  /** Records of those types that did not decode (skipped). */
  undecodable: number;
  /** Open findings after restore and replay. */
  openFindings: number;
  /** Recorded open findings that replay did not re-derive, taken as recorded. */
  adoptedFindings: number;
  reason: string | null;
}

export interface Restored {
  correlator: Correlator;
  /** Every record up to this seq is reflected in the correlator. */
  appliedSeq: number;
  report: RestoreReport;
  /** State changes and measurements replay found that the ledger does not hold yet. */
  findings: Finding[];
  observations: RevocationLatency[];
}

/**
 * Rebuilds the correlator at start-up: the last complete snapshot (snapshot-store.ts), then a replay of
 * the token and provider records committed after the snapshot's `throughSeq` (the records of
 * the last seconds before a crash, or those committed during shutdown after the snapshot).
 *
 * What it trusts: the ledger's records, which the hash chain and signed checkpoints make
 * evidence (start-up verification is the ledger's job); it trusts neither their shape nor their
 * size (Correlator.fromSnapshot checks both; a snapshot that fails is recorded as `rejected` and
 * the correlator starts empty rather than on half a state).
 *
 * Replay re-derives findings and measurements that may already be recorded: a finding opened
 * again takes its recorded id (FindingBook.expect) and is not written twice; one recorded
 * resolved is not resolved twice; a revocation latency already recorded is not recorded again.
 * Only what the ledger lacks (work lost in a crash) is returned for writing.
 */
export function restoreCorrelator(
  ledger: Pick<Ledger, 'lastSeq' | 'lastOfType' | 'list'>,
  options: CorrelatorOptions,
  clock: ReplayClock,
  defaultDb: number,
): Restored {
  const lastSeq = ledger.lastSeq;
  const search = findSnapshot(ledger);
  const snap = search.found?.head;
  const report: RestoreReport = {
    outcome: 'none',
    snapshotSeq: snap?.seq ?? null,
    incomplete: search.incomplete,
    throughSeq: null,
    replayedThroughSeq: null,
    replayedEvents: 0,
    undecodable: 0,
    openFindings: 0,
    adoptedFindings: 0,
    reason: null,
  };
  const empty = (): Restored => ({
    correlator: new Correlator(options, { clock }),
    appliedSeq: lastSeq,
    report,
    findings: [],
    observations: [],
  });
  if (!snap) {
    if (search.incomplete.length === 0) return empty();
    report.outcome = 'rejected';
    report.reason = `no complete snapshot: ${search.incomplete.join('; ')}`;
    return empty();
  }
  const through = snap.attrs.throughSeq;
  let c: Correlator;
  try {
    if (
      typeof through !== 'number' ||
      !Number.isInteger(through) ||
      through < 0 ||
      through >= snap.seq
    )
      throw new RangeError(
        `throughSeq ${String(through)} is not below the snapshot's seq ${snap.seq}`,
      );
    c = Correlator.fromSnapshot(options, { clock }, search.found?.state);
  } catch (err) {
    if (!isTokenwatchError(err) && !(err instanceof RangeError)) throw err;
    report.outcome = 'rejected';
    report.reason = err.message;
    return empty();
  }
  report.outcome = 'restored';
  report.throughSeq = through;

  const recorded = readAll(ledger, 'finding.*', through)
    .map(recordedFinding)
    .filter((f): f is Finding => f !== undefined);
  const openedIds = new Set(recorded.filter((f) => f.state === 'opened').map((f) => f.id));
  const resolvedIds = new Set(recorded.filter((f) => f.state === 'resolved').map((f) => f.id));
  const measured = new Map<string, number>();
  for (const r of readAll(ledger, 'revocation.propagation', through)) {
    const k = `${String(r.attrs.provider)}:${String(r.attrs.providerEventId)}:${String(r.attrs.eventType)}`;
    measured.set(k, (measured.get(k) ?? 0) + 1);
  }

  const out: Finding[] = [];
  c.findings.expect(recorded.filter((f) => f.state === 'opened'));
  let second = -Infinity;
  for (let after = through; after < lastSeq;) {
    const page = ledger.list({ afterSeq: after, limit: PAGE });
    if (page.length === 0) break;
    for (const r of page) {
      after = r.seq;
      if (r.seq > lastSeq) break;
      const d = decodeRecord(r, defaultDb);
      if (d.type === 'skip') continue;
      if (d.type === 'bad') {
        report.undecodable++;
        continue;
      }
      const t = Math.max(clock.at ?? -Infinity, r.time);
      // Close the churn buckets and judge the deadlines of the seconds before this record.
      if (Math.floor(t / 1000) > second) {
        second = Math.floor(t / 1000);
        clock.at = second * 1000;
        out.push(...c.tick());
      }
      clock.at = t;
      report.replayedEvents++;
      out.push(
        ...(d.type === 'token'
          ? c.onTokenEvent(d.event, r.seq)
          : c.onProviderEvent(d.event, r.seq)),
      );
    }
  }
  c.findings.expect(undefined);
  clock.at = undefined;
  report.replayedThroughSeq = lastSeq;

  const open = new Set(c.openFindings().map((f) => f.id));
  for (const id of resolvedIds) if (open.has(id)) c.findings.forget(id);
  const latest = new Map(recorded.map((f) => [f.id, f]));
  for (const id of openedIds) {
    const f = latest.get(id);
    if (f?.state === 'opened' && !open.has(id) && !out.some((x) => x.id === id)) {
      c.findings.adopt(f);
      report.adoptedFindings++;
    }
  }
  const findings = out.filter((f) =>
    f.state === 'opened' ? !openedIds.has(f.id) : !resolvedIds.has(f.id),
  );
  const observations = c.drainObservations().revocations.filter((o) => {
    const k = `${o.provider}:${o.providerEventId}:${o.eventType}`;
    const n = measured.get(k) ?? 0;
    if (n > 0) measured.set(k, n - 1);
    return n === 0;
  });
  c.resume();
  report.openFindings = c.openFindings().length;
  return { correlator: c, appliedSeq: lastSeq, report, findings, observations };
}

function readAll(ledger: Pick<Ledger, 'list'>, type: string, afterSeq: number) {
  const all = [];
  for (let after = afterSeq; ;) {
    const page = ledger.list({ type, afterSeq: after, limit: PAGE });
    all.push(...page);
    if (page.length < PAGE) return all;
    after = page[page.length - 1]!.seq;
  }
}
