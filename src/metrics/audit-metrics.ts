import { Counter, Gauge, type Registry } from 'prom-client';

/** What the checkpoint metrics read at scrape time. */
export interface CheckpointSource {
  state(): {
    last: { n: number; seq: number; time: number } | undefined;
    unpublished: number;
    logProblem: string | undefined;
  };
}

/**
 * Ledger checkpoint metrics, read from the checkpointer at scrape time: the age of the last
 * signed checkpoint is what AuditCheckpointStale alerts on (silence must stay provable).
 */
export function registerCheckpointMetrics(
  registry: Registry,
  source: () => CheckpointSource | undefined,
): void {
  let counted = 0;
  new Gauge({
    name: 'tokenwatch_audit_last_checkpoint_timestamp_seconds',
    help: 'Unix time of the last signed ledger checkpoint (0 before the first).',
    registers: [registry],
    collect() {
      const last = source()?.state().last;
      this.set(last ? last.time / 1000 : 0);
    },
  });
  new Gauge({
    name: 'tokenwatch_audit_last_checkpoint_seq',
    help: 'Ledger seq covered by the last signed checkpoint.',
    registers: [registry],
    collect() {
      this.set(source()?.state().last?.seq ?? 0);
    },
  });
  new Counter({
    name: 'tokenwatch_audit_checkpoints_total',
    help: 'Signed ledger checkpoints written (database and external checkpoint log).',
    registers: [registry],
    collect() {
      const n = source()?.state().last?.n ?? 0;
      if (n > counted) {
        this.inc(n - counted);
        counted = n;
      }
    },
  });
  new Gauge({
    name: 'tokenwatch_audit_checkpoints_unpublished',
    help: 'Checkpoints signed but not yet appended to the external checkpoint log (its problems block readiness).',
    registers: [registry],
    collect() {
      this.set(source()?.state().unpublished ?? 0);
    },
  });
}
