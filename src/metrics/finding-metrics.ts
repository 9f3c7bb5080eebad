import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FINDING_RULES } from '../domain/finding.js';

/** Metrics of correlation findings and alert delivery. */
export interface FindingMetrics {
  findings: Counter<'rule' | 'severity'>;
  findingsOpen: Gauge<'rule'>;
  revocationPropagation: Histogram;
  revocationSla: Gauge;
  revocationsMissed: Counter;
  alertDeliveries: Counter<'target' | 'outcome'>;
  alertQueue: Gauge;
}

const PROPAGATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300, 900];

export function createFindingMetrics(
  registry: Registry,
  options: {
    slaSeconds: number;
    openCounts: () => Record<string, number>;
    queueSize: () => number;
  },
): FindingMetrics {
  const m: FindingMetrics = {
    findings: new Counter({
      name: 'tokenwatch_findings_total',
      help: 'Findings opened by the correlator, by rule and severity.',
      labelNames: ['rule', 'severity'],
      registers: [registry],
    }),
    findingsOpen: new Gauge({
      name: 'tokenwatch_findings_open',
      help: 'Findings currently open, by rule.',
      labelNames: ['rule'],
      registers: [registry],
      collect() {
        const counts = options.openCounts();
        for (const rule of FINDING_RULES) this.set({ rule }, counts[rule] ?? 0);
      },
    }),
    revocationPropagation: new Histogram({
      name: 'tokenwatch_revocation_propagation_seconds',
      help: 'Time from a provider revocation to the last matching token leaving Redis, met or not.',
      buckets: PROPAGATION_BUCKETS,
      registers: [registry],
    }),
    revocationSla: new Gauge({
      name: 'tokenwatch_revocation_sla_seconds',
      help: 'The configured revocation propagation SLA (correlate.revocationSlaSeconds).',
      registers: [registry],
    }),
    revocationsMissed: new Counter({
      name: 'tokenwatch_revocation_sla_breaches_total',
      help: 'Revocations whose tokens left Redis after the SLA (or never, when tracking was lost).',
      registers: [registry],
    }),
    alertDeliveries: new Counter({
      name: 'tokenwatch_alert_deliveries_total',
      help: 'Alert deliveries of findings, by target (alertmanager, webhook) and outcome (sent, retried, failed, dropped).',
      labelNames: ['target', 'outcome'],
      registers: [registry],
    }),
    alertQueue: new Gauge({
      name: 'tokenwatch_alert_queue_size',
      help: 'Alert deliveries waiting to be sent or retried.',
      registers: [registry],
      collect() {
        this.set(options.queueSize());
      },
    }),
  };
  m.revocationSla.set(options.slaSeconds);
  m.revocationsMissed.inc(0);
  for (const rule of FINDING_RULES) {
    for (const severity of ['info', 'low', 'medium', 'high', 'critical'])
      m.findings.inc({ rule, severity }, 0);
  }
  for (const target of ['alertmanager', 'webhook']) {
    for (const outcome of ['sent', 'retried', 'failed', 'dropped'])
      m.alertDeliveries.inc({ target, outcome }, 0);
  }
  return m;
}
