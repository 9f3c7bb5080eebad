import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AuditInput } from '../../src/audit/record.js';
import { MarkerRejections } from '../../src/keyspace/marker-rejections.js';
import { createCoordinationMetrics } from '../../src/metrics/coordination-metrics.js';

/**
 * A flood of refused markers (anyone who can write the watched Redis: `SET
 * <p>marker:<e>:<n>:<guess>` in a loop, or keys under the marker prefix of any shape) costs the
 * ledger a bounded number of records, and the metric a bounded label set (docs/ha.md, threat
 * model).
 */
describe('MarkerRejections', () => {
  it('records 10 refusals per node and minute one by one, states the rest in one summary', async () => {
    let now = 1_000_000;
    const appended: AuditInput[] = [];
    const registry = new Registry();
    const metrics = createCoordinationMetrics(registry);
    const r = new MarkerRejections({
      append: (i) => appended.push(i),
      metrics,
      now: () => now,
      logger: pino({ level: 'silent' }),
      fingerprint: (v) => `fp:${v.length}:${v.subarray(0, 4).toString('hex')}`,
    });
    const huge = Buffer.alloc(100_000, 0xe9); // non-ASCII, far over the recorded length
    for (let i = 0; i < 50_000; i++) {
      r.rejected('n1', i % 2 ? 'bad_mac' : 'malformed', i === 0 ? huge : Buffer.from(`k${i}`));
      if (i % 1000 === 0) now += 1; // all inside one minute
    }
    const one = appended.filter((a) => a.type === 'ownership.marker_rejected');
    expect(one).toHaveLength(10);
    // What the refused writer chose is recorded only as its fingerprint and length.
    expect(one[0]?.attrs).toEqual({ node: 'n1', reason: 'malformed', length: 100_000 });
    expect(one[0]?.fingerprint).toBe('fp:100000:e9e9e9e9');
    expect(JSON.stringify(appended)).not.toMatch(/k1\b|\u00e9|é/);
    now += 60_000;
    r.rejected('n1', 'bad_mac', Buffer.from('next-window'));
    r.close();
    const summaries = appended.filter((a) => a.type === 'ownership.marker_rejected_suppressed');
    expect(summaries[0]?.attrs).toMatchObject({
      node: 'n1',
      recorded: 10,
      suppressed: 49_990,
      reasons: { bad_mac: 24_995, malformed: 24_995 },
    });
    expect(appended.length).toBeLessThanOrEqual(13);
    const text = await registry.metrics();
    const lines = text.split('\n').filter((l) => l.startsWith('tokenwatch_marker_rejected_total{'));
    expect(lines.sort()).toEqual([
      'tokenwatch_marker_rejected_total{node="n1",reason="bad_mac"} 25001',
      'tokenwatch_marker_rejected_total{node="n1",reason="malformed"} 25000',
    ]);
  });
});
