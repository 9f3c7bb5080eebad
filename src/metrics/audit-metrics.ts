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

/** What the ledger verification metrics read at scrape time. */
export interface LedgerVerifySource {
  /** Seconds the inline start-up check took. */
  startupCheckSeconds: number;
  /** The last full (background) verification: problems found, when it finished. */
  full: { problems: number; at: number; durationMs: number } | undefined;
}

/**
 * Start-up and background verification of the ledger file: `..._problems` is -1 until the full
 * verification finished, then the number of problems it found (alert on > 0).
 */
export function registerLedgerVerifyMetrics(
  registry: Registry,
  source: () => LedgerVerifySource | undefined,
): void {
  new Gauge({
    name: 'tokenwatch_audit_verify_problems',
    help: 'Problems the full verification of the ledger at start found (-1 until it finished).',
    registers: [registry],
    collect() {
      this.set(source()?.full?.problems ?? -1);
    },
  });
  new Gauge({
    name: 'tokenwatch_audit_verify_last_timestamp_seconds',
    help: 'Unix time the last full verification of the ledger finished (0 before).',
    registers: [registry],
    collect() {
      const at = source()?.full?.at;
      this.set(at === undefined ? 0 : at / 1000);
    },
  });
  new Gauge({
    name: 'tokenwatch_audit_startup_check_seconds',
    help: 'Seconds the start-up check of the ledger tail against the checkpoint log and seals took.',
    registers: [registry],
    collect() {
      this.set(source()?.startupCheckSeconds ?? 0);
    },
  });
}
