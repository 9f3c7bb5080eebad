import { Counter, type Registry } from 'prom-client';

/** What the archive job reports (src/audit/archive.ts ArchiveObserver). */
export interface ArchiveMetrics {
  archived(records: number, bytes: number): void;
  failed(): void;
}

/**
 * Ledger archive metrics: alert on `..._passes_failed_total` increasing (records stay in the
 * database and disk keeps growing); `..._bytes_total` over `..._records_total` is the archive's
 * size per record, what disk sizing (docs/ledger-format.md) needs.
 */
export function registerArchiveMetrics(registry: Registry): ArchiveMetrics {
  const records = new Counter({
    name: 'tokenwatch_audit_archived_records_total',
    help: 'Ledger records moved from the database to archive files.',
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'tokenwatch_audit_archive_bytes_total',
    help: 'Bytes of archive files written (compressed).',
    registers: [registry],
  });
  const failed = new Counter({
    name: 'tokenwatch_audit_archive_passes_failed_total',
    help: 'Archive passes that failed (logged; the database was left as it was).',
    registers: [registry],
  });
  return {
    archived(n, b) {
      records.inc(n);
      bytes.inc(b);
    },
    failed() {
      failed.inc();
    },
  };
}
