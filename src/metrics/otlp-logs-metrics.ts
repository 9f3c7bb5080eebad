import { Counter, Gauge, type Registry } from 'prom-client';

export interface OtlpLogsMetrics {
  /** Audit records the collector acknowledged. */
  exported: Counter;
  /** Failed export attempts (retried from the same record). */
  failures: Counter;
  /** Records a collector rejected from an accepted request (OTLP partial success). */
  rejected: Counter;
  /** Records that left the ledger (retention, archive) before they were exported. */
  skipped: Counter;
}

/** Metrics of the OTLP logs export of the ledger; `lag` is read at scrape time. */
export function registerOtlpLogsMetrics(registry: Registry, lag: () => number): OtlpLogsMetrics {
  const exported = new Counter({
    name: 'tokenwatch_otlp_logs_exported_records_total',
    help: 'Audit records the OTLP logs collector accepted',
    registers: [registry],
  });
  const failures = new Counter({
    name: 'tokenwatch_otlp_logs_export_failures_total',
    help: 'Failed OTLP logs export attempts (retried from the same record)',
    registers: [registry],
  });
  const rejected = new Counter({
    name: 'tokenwatch_otlp_logs_rejected_records_total',
    help: 'Audit records the OTLP logs collector rejected in a partial success (not retried, per OTLP)',
    registers: [registry],
  });
  const skipped = new Counter({
    name: 'tokenwatch_otlp_logs_skipped_records_total',
    help: 'Audit records pruned or archived out of the ledger before the OTLP logs collector had them',
    registers: [registry],
  });
  new Gauge({
    name: 'tokenwatch_otlp_logs_lag_records',
    help: 'Committed audit records not yet acknowledged by the OTLP logs collector',
    registers: [registry],
    collect() {
      this.set(lag());
    },
  });
  return { exported, failures, rejected, skipped };
}
