import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerArchiveMetrics } from '../../src/metrics/archive-metrics.js';

describe('archive metrics', () => {
  it('count archived records, archive bytes and failed passes from 0', async () => {
    const registry = new Registry();
    const m = registerArchiveMetrics(registry);
    const value = async (name: string) =>
      (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
    expect(await value('tokenwatch_audit_archived_records_total')).toBe(0);
    m.archived(120, 4000);
    m.archived(30, 1000);
    m.failed();
    expect(await value('tokenwatch_audit_archived_records_total')).toBe(150);
    expect(await value('tokenwatch_audit_archive_bytes_total')).toBe(5000);
    expect(await value('tokenwatch_audit_archive_passes_failed_total')).toBe(1);
  });
});
