import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { AlertDispatcher } from '../alerts/alert-dispatcher.js';
import type { Ledger } from '../audit/ledger.js';
import type { Committed } from '../audit/record.js';
import type { Config } from '../config/schema.js';
import { Correlator, type IndexObservation } from '../correlate/index.js';
import type { Finding } from '../domain/finding.js';
import type { ProviderEvent } from '../domain/provider-event.js';
import type { TokenEvent } from '../domain/token-event.js';
import type { Tracing } from '../telemetry/tracing.js';
import { createFindingMetrics, type FindingMetrics } from '../metrics/finding-metrics.js';
import { correlatorOptionsFrom } from './correlator-config.js';

/** Audit record of an index reconciliation; its in-memory event holds the observations. */
export const INDEX_RECONCILE_RECORD = 'keyspace.index_reconcile';

export interface FindingsServiceOptions {
  config: Readonly<Config>;
  ledger: Ledger;
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
 */
export class FindingsService {
  readonly correlator: Correlator;
  readonly metrics: FindingMetrics;
  readonly alerts: AlertDispatcher;
  readonly #o: FindingsServiceOptions;
  #tick: NodeJS.Timeout | undefined;
  #lastResend = 0;
  #closed = false;

  constructor(o: FindingsServiceOptions) {
    this.#o = o;
    this.correlator = new Correlator(correlatorOptionsFrom(o.config), { clock: { now: o.now } });
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

  start(): void {
    this.#tick = setInterval(() => this.tick(), 1000);
    this.#tick.unref();
  }

  /** Committed audit batches: token events with the seq they got. */
  onCommitted(batch: readonly Committed[]): void {
    if (this.#closed) return;
    const correlate = (): void => {
      const out: Finding[] = [];
      for (const c of batch) {
        if (c.input.type === INDEX_RECONCILE_RECORD && c.input.event !== undefined) {
          const obs = c.input.event as IndexObservation[];
          out.push(...this.correlator.onIndexObservations(obs, c.seq));
          continue;
        }
        if (c.input.source !== 'redis' || c.input.event === undefined) continue;
        out.push(...this.correlator.onTokenEvent(c.input.event as TokenEvent, c.seq));
      }
      this.#handle(out);
    };
    const tracing = this.#o.tracing;
    if (tracing?.enabled)
      tracing.withSpan('tokenwatch.correlate.batch', { batch_size: batch.length }, correlate);
    else correlate();
  }

  /** A provider event whose audit record committed as `seq`. */
  onProviderEvent(ev: ProviderEvent, seq: number): void {
    if (this.#closed) return;
    this.#handle(this.correlator.onProviderEvent(ev, seq));
  }

  /** Evaluate deadlines and windows now (the timer calls it every second). */
  tick(): void {
    if (this.#closed) return;
    this.#handle(this.correlator.tick());
    const now = this.#o.now();
    const every = this.#o.config.alerts.resendIntervalSeconds * 1000;
    if (this.alerts.enabled && now - this.#lastResend >= every) {
      // Alertmanager resolves alerts that are not re-sent within resolve_timeout.
      this.#lastResend = now;
      const open = this.correlator.openFindings();
      if (open.length > 0) this.alerts.send(open);
    }
  }

  openFindings(): Finding[] {
    return this.correlator.openFindings();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#tick);
    this.tick();
    this.#closed = true;
    await this.alerts.close();
  }

  #handle(findings: Finding[]): void {
    // Every revocation's propagation latency, met or not (an unknown one counts as a breach).
    for (const r of this.correlator.drainObservations().revocations) {
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
      this.#o.ledger.append({
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
      });
      this.#o.logger.info(
        { rule: f.rule, state: f.state, severity: f.severity, id: f.id },
        f.summary,
      );
    }
    this.alerts.send(findings);
  }
}
