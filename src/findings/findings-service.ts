import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { AlertDispatcher } from '../alerts/alert-dispatcher.js';
import type { Ledger } from '../audit/ledger.js';
import type { AuditRecord, Committed } from '../audit/record.js';
import type { Config } from '../config/schema.js';
import { Correlator } from '../correlate/index.js';
import type { CorrelatorOptions, RevocationLatency } from '../correlate/index.js';
import type { Finding } from '../domain/finding.js';
import type { ProviderEvent } from '../domain/provider-event.js';
import type { Tracing } from '../telemetry/tracing.js';
import { createFindingMetrics, type FindingMetrics } from '../metrics/finding-metrics.js';
import { correlatorOptionsFrom } from './correlator-config.js';
import { decodeRecord } from './ledger-events.js';
import {
  RESTORED_RECORD,
  ReplayClock,
  restoreCorrelator,
  type RestoreReport,
} from './correlator-restore.js';
import { SnapshotWriter, type SnapshotReason } from './snapshot-writer.js';

/**
 * Default of `correlate.snapshotMinRecords`: an interval snapshot is written only once this many
 * records were correlated since the last one, which bounds both a crash's replay and the bytes
 * snapshots add to the ledger per day (docs/operations.md).
 */
export const DEFAULT_SNAPSHOT_MIN_RECORDS = 100_000;

/** Audit record of an index reconciliation; its in-memory event holds the observations. */
export const INDEX_RECONCILE_RECORD = 'keyspace.index_reconcile';

/**
 * What findings need of the audit ledger: append records (with their domain events) and, at
 * start-up, read back the snapshot and what came after it. Committed batches arrive through
 * {@link FindingsService.onCommitted}, subscribed to the ledger's committed channel.
 */
export type FindingsLedger = Pick<Ledger, 'append' | 'lastSeq' | 'lastOfType' | 'list'>;

export interface FindingsServiceOptions {
  config: Readonly<Config>;
  ledger: FindingsLedger;
  registry: Registry;
  logger: Logger;
  now: () => number;
  /** Base URL of this service, used as Alertmanager generatorURL. */
  baseUrl?: string;
  /** Spans around correlation of committed batches. */
  tracing?: Tracing;
}

/**
 * Wires the pure correlator into the service: it is fed token events as their audit records
 * commit (so every finding can name the seqs of its evidence) and provider events after their
 * delivery committed; findings become `finding.<rule>` audit records, metrics and alerts.
 * The tick runs every second (SLA deadlines, churn buckets, eviction bursts).
 *
 * State survives restarts through the ledger itself (issues #15.2, #16.5): `start()` restores
 * the last complete snapshot and replays the records committed after it (correlator-restore.ts).
 * A snapshot is written right after start-up and at shutdown, and on the
 * `correlate.snapshotIntervalSeconds` check once `correlate.snapshotMinRecords` records were
 * correlated since the last one; interval snapshots are written part by part across event-loop
 * turns (snapshot-writer.ts, issue #16).
 */
export class FindingsService {
  readonly metrics: FindingMetrics;
  readonly alerts: AlertDispatcher;
  readonly #o: FindingsServiceOptions;
  readonly #options: CorrelatorOptions;
  readonly #clock: ReplayClock;
  #correlator: Correlator;
  #tick: NodeJS.Timeout | undefined;
  #snapshotTimer: NodeJS.Timeout | undefined;
  readonly #snapshots: SnapshotWriter;
  /** When each open finding was last sent to the alert targets (ms). */
  readonly #lastSent = new Map<string, number>();
  /** Events correlated and findings handled since the last snapshot. */
  #changes = 0;
  /** Every committed record up to this seq is reflected in the correlator. */
  #appliedSeq = 0;
  #started = false;
  #closed = false;
  #restoreReport: RestoreReport | undefined;
  /** Nodes whose baseline SCAN reported the tokens it found as `present` events. */
  readonly #presentNodes = new Set<string>();

  constructor(o: FindingsServiceOptions) {
    this.#o = o;
    this.#options = correlatorOptionsFrom(o.config);
    this.#clock = new ReplayClock(o.now);
    this.#correlator = new Correlator(this.#options, { clock: this.#clock });
    this.#snapshots = new SnapshotWriter(o.ledger);
    const alerts = o.config.alerts;
    // The metrics read the queue size lazily; the dispatcher needs the metrics: tie the knot.
    const ref: { dispatcher?: AlertDispatcher } = {};
    this.metrics = createFindingMetrics(o.registry, {
      slaSeconds: this.correlator.options.revocationSlaSeconds,
      openCounts: () => {
        const counts: Record<string, number> = {};
        for (const f of this.correlator.openFindings()) counts[f.rule] = (counts[f.rule] ?? 0) + 1;
        return counts;
      },
      queueSize: () => ref.dispatcher?.size ?? 0,
    });
    const dispatcher = new AlertDispatcher(
      {
        alertmanagerUrl: alerts.alertmanagerUrl,
        webhookUrl: alerts.webhookUrl,
        webhookHeaders: alerts.webhookHeaders,
        maxQueue: alerts.maxQueue,
        timeoutMs: alerts.timeoutMs,
        maxAttempts: alerts.maxAttempts,
      },
      { metrics: this.metrics, logger: o.logger, now: o.now, generatorURL: o.baseUrl },
    );
    ref.dispatcher = dispatcher;
    this.alerts = dispatcher;
  }

  get correlator(): Correlator {
    return this.#correlator;
  }

  /** What start-up restored (undefined before start()). */
  get restoreReport(): RestoreReport | undefined {
    return this.#restoreReport;
  }

  /**
   * Restores the correlator from the ledger, records what was restored, judges what came due
   * while tokenwatch was down, writes a fresh snapshot, then ticks every second. Call before
   * keyspace and provider events flow.
   */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const r = restoreCorrelator(
      this.#o.ledger,
      this.#options,
      this.#clock,
      this.#o.config.redis.db,
    );
    this.#correlator = r.correlator;
    this.#appliedSeq = r.appliedSeq;
    this.#restoreReport = r.report;
    const now = this.#o.now();
    // Restored open findings were sent before the restart: they repeat on the interval from now.
    for (const f of this.#correlator.openFindings()) this.#lastSent.set(f.id, now);
    this.#o.ledger.append({
      time: now,
      source: 'correlator',
      type: RESTORED_RECORD,
      attrs: { ...r.report },
    });
    if (r.report.outcome === 'rejected')
      this.#o.logger.warn(
        { reason: r.report.reason },
        'correlator snapshot rejected; starting empty',
      );
    else this.#o.logger.info({ ...r.report }, 'correlator state restored');
    this.#handle(r.findings, r.observations);
    this.tick();
    this.#snapshot('start');
    this.#tick = setInterval(() => this.tick(), 1000);
    this.#tick.unref();
    const every = this.#correlator.options.snapshotIntervalSeconds * 1000;
    this.#snapshotTimer = setInterval(() => this.#snapshot('interval'), every);
    this.#snapshotTimer.unref();
  }

  /** Committed audit batches: token events with the seq they got. */
  onCommitted(batch: readonly Committed[]): void {
    this.#snapshots.onCommitted(batch);
    // Before start() the ledger is read by restore instead; after close() nothing is applied.
    if (this.#closed || !this.#started) return;
    const last = batch.at(-1)?.seq ?? 0;
    if (last <= this.#appliedSeq) return;
    const from = this.#appliedSeq;
    this.#appliedSeq = last;
    const correlate = (): void => {
      const out: Finding[] = [];
      for (const c of batch) {
        if (c.seq <= from) continue;
        const d = c.event;
        if (d?.type === 'index') {
          out.push(...this.correlator.onIndexObservations(d.observations, c.seq));
          continue;
        }
        if (c.input.source === 'redis' || c.input.source === 'provider') this.#changes++;
        if (d?.type === 'token') {
          const ev = d.event;
          if ((ev.type as string) === 'present') this.#presentNodes.add(ev.node);
          out.push(...this.correlator.onTokenEvent(ev, c.seq));
        } else if (c.input.type === 'keyspace.baseline') out.push(...this.#baselineDone(c));
        else if (c.input.source === 'provider') {
          // Provider events in ledger order, with the records they committed in, so the state
          // a snapshot captures never depends on a callback still to come. A provider record
          // appended without its event is read back exactly as a replay reads it.
          const ev =
            d?.type === 'provider' ? d.event : recordedProviderEvent(c, this.#o.config.redis.db);
          if (ev) out.push(...this.correlator.onProviderEvent(ev, c.seq));
        }
      }
      this.#handle(out);
    };
    const tracing = this.#o.tracing;
    if (tracing?.enabled)
      tracing.withSpan('tokenwatch.correlate.batch', { batch_size: batch.length }, correlate);
    else correlate();
  }

  /** Evaluate deadlines and windows now (the timer calls it every second). */
  tick(): void {
    if (this.#closed || !this.#started) return;
    this.#handle(this.correlator.tick());
    this.#resend();
  }

  openFindings(): Finding[] {
    return this.correlator.openFindings();
  }

  /** Final tick and snapshot (before the ledger closes), then delivers what is queued. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#tick);
    clearInterval(this.#snapshotTimer);
    if (this.#started) {
      this.tick();
      this.#snapshot('shutdown');
    }
    this.#closed = true;
    await this.alerts.close();
  }

  /**
   * Re-sends open findings so Alertmanager does not resolve them after its resolve_timeout:
   * each finding `alerts.resendIntervalSeconds` after it was last sent, never in the same tick
   * as its opening (issue #16.5: a global re-send tick doubled openings that fell on it).
   */
  #resend(): void {
    if (!this.alerts.enabled) return;
    const now = this.#o.now();
    const every = this.#o.config.alerts.resendIntervalSeconds * 1000;
    const due: Finding[] = [];
    const open = this.correlator.openFindings();
    for (const f of open) {
      const last = this.#lastSent.get(f.id);
      if (last !== undefined && now - last < every) continue;
      this.#lastSent.set(f.id, now);
      due.push(f);
    }
    if (due.length > 0) this.alerts.send(due, { resend: true });
    if (this.#lastSent.size > open.length) {
      const ids = new Set(open.map((f) => f.id));
      for (const id of this.#lastSent.keys()) if (!ids.has(id)) this.#lastSent.delete(id);
    }
  }

  /**
   * A node's baseline SCAN finished. When it is evidence of what is in Redis (its tokens were
   * reported as `present` events before this record, or it found none at all), restored tokens
   * it did not report left Redis while tokenwatch was down (Correlator.baselineDone).
   */
  #baselineDone(c: Committed): Finding[] {
    const a = c.input.attrs ?? {};
    if (typeof a.node !== 'string') return [];
    const counts = typeof a.counts === 'object' && a.counts !== null ? Object.values(a.counts) : [];
    const none = counts.every((n) => n === 0);
    if (!this.#presentNodes.has(a.node) && !none) return [];
    return this.correlator.baselineDone(a.node);
  }

  /**
   * Captures the correlator's state now and writes it as a split snapshot (see restore): on the
   * interval part by part over later turns, at start-up and shutdown at once (a snapshot still
   * being written at shutdown is finished first).
   */
  #snapshot(reason: SnapshotReason): void {
    const now = this.#o.now();
    if (reason === 'interval') {
      // Idle, or too little to replay to be worth the bytes: the last snapshot plus replay of
      // what followed it still restores the state (but for churn buckets of silence).
      const min = this.#o.config.correlate.snapshotMinRecords ?? DEFAULT_SNAPSHOT_MIN_RECORDS;
      if (this.#changes === 0 || this.#changes < min) return;
      const since = this.#snapshots.busySince;
      if (since !== undefined) {
        // One still being written waits for its parts to commit; one stuck that long lost a
        // part (dropped under back-pressure) and can never complete.
        const every = this.#correlator.options.snapshotIntervalSeconds * 1000;
        if (now - since < Math.max(10 * every, 300_000)) return;
        this.#snapshots.abandon();
      }
    }
    this.#changes = 0;
    const state = this.correlator.snapshot();
    const captured = { reason, throughSeq: this.#appliedSeq, time: Math.trunc(now), state };
    this.#snapshots.write(captured, reason === 'interval');
  }

  #handle(
    findings: Finding[],
    observations: readonly RevocationLatency[] = this.correlator.drainObservations().revocations,
  ): void {
    // Every revocation's propagation latency, met or not (an unknown one counts as a breach).
    this.#changes += findings.length + observations.length;
    for (const r of observations) {
      if (r.latencySeconds !== null) this.metrics.revocationPropagation.observe(r.latencySeconds);
      if (r.metSla === false || (r.metSla === null && r.latencySeconds === null)) {
        this.metrics.revocationsMissed.inc();
      }
      // The measurement is evidence too (SOC 2 CC6.2: revocations sampled against the SLA): the
      // compliance report computes its latency percentiles from these records, met or not.
      this.#o.ledger.append({
        time: this.#o.now(),
        source: 'correlator',
        type: 'revocation.propagation',
        attrs: { ...r },
      });
    }
    if (findings.length === 0) return;
    for (const f of findings) {
      if (f.state === 'opened') this.metrics.findings.inc({ rule: f.rule, severity: f.severity });
      // Metrics and alerts now, not after the commit: an alert must go out while the ledger
      // cannot write. The committed channel carries the finding once its record is durable.
      this.#o.ledger.append(
        {
          time: f.at,
          source: 'correlator',
          type: `finding.${f.rule}`,
          kind: f.kind ?? null,
          fingerprint: f.fingerprint ?? null,
          attrs: {
            id: f.id,
            state: f.state,
            severity: f.severity,
            criteria: f.criteria,
            summary: f.summary,
            openedAt: f.openedAt,
            subject: f.subject,
            sessionId: f.sessionId,
            evidenceSeqs: f.evidenceSeqs,
            attributes: f.attributes,
          },
        },
        { type: 'finding', finding: f },
      );
      this.#o.logger.info(
        { rule: f.rule, state: f.state, severity: f.severity, id: f.id },
        f.summary,
      );
    }
    const now = this.#o.now();
    for (const f of findings) {
      if (f.state === 'opened') this.#lastSent.set(f.id, now);
      else this.#lastSent.delete(f.id);
    }
    this.alerts.send(findings);
  }
}

/** The provider event a committed record states, read as a replay reads it. */
function recordedProviderEvent(c: Committed, defaultDb: number): ProviderEvent | undefined {
  const d = decodeRecord(committedRecord(c), defaultDb);
  return d.type === 'provider' ? d.event : undefined;
}

/** A committed input as the record it became (what replay reads back from the ledger). */
function committedRecord(c: Committed): AuditRecord {
  return {
    seq: c.seq,
    time: c.input.time,
    source: c.input.source,
    type: c.input.type,
    kind: c.input.kind ?? null,
    fingerprint: c.input.fingerprint ?? null,
    attrs: c.input.attrs ?? {},
  };
}
