import { describe, expect, it } from 'vitest';
import { buildReport } from '../../src/compliance/report-data.js';
import { renderReportHtml } from '../../src/compliance/report-html.js';
import { buildScenario, fp, readOnly } from './helpers.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';

describe('SOC 2 report: cache health section', () => {
  it('adds up sampled windows and miss summaries per kind, and lists orphaned-index findings', async () => {
    const s = buildScenario((emit) => {
      emit({ source: 'system', type: 'system.started', attrs: {} });
      emit({
        source: 'redis',
        type: 'cache.read_sample',
        attrs: {
          node: 'r:1',
          reads: { access_token: 300, session: 10 },
          misses: { access_token: 30 },
        },
      });
      emit({
        source: 'redis',
        type: 'cache.read_sample',
        attrs: {
          node: 'r:1',
          reads: { access_token: 100 },
          misses: { access_token: 10, session: 4 },
        },
      });
      emit({
        source: 'redis',
        type: 'cache.misses',
        attrs: {
          misses: { access_token: 50, session: 2 },
          afterEnd: { access_token: { revoked: 7, deleted: 3 } },
        },
      });
      // Hostile or damaged attributes never count.
      emit({
        source: 'redis',
        type: 'cache.misses',
        attrs: {
          misses: { access_token: -5, session: 'x' },
          afterEnd: { session: { revoked: Number.POSITIVE_INFINITY } },
        },
      });
      emit({
        source: 'correlator',
        type: 'finding.orphaned_index_entries',
        kind: 'session',
        attrs: {
          id: 'orphaned_index_entries:user_sessions:1',
          state: 'opened',
          severity: 'medium',
          criteria: ['CC6.2'],
          summary: 'Index user_sessions lists 2 session id(s) whose token is gone',
          openedAt: 0,
          evidenceSeqs: [],
          attributes: { index: 'user_sessions', orphans: 2, fingerprints: fp(1) },
        },
      });
    });
    const db = readOnly(s.dbPath);
    let r;
    try {
      r = await buildReport({
        store: new LedgerStore(db),
        from: s.start - 1,
        to: s.clock.t + 1,
        trusted: s.trusted,
      });
    } finally {
      db.close();
    }
    const c = r.cacheHealth!;
    expect(c.windows).toBe(2);
    expect(c.summaries).toBe(2);
    expect(c.perKind.access_token).toMatchObject({
      sampledReads: 400,
      sampledMisses: 40,
      hitRatio: 0.9,
      misses: 50,
      missesAfterEnd: { revoked: 7, deleted: 3 },
    });
    expect(c.perKind.access_token!.standardError).toBeCloseTo(Math.sqrt((0.9 * 0.1) / 400), 10);
    // Misses of a window never exceed its reads (session: 4 misses in a window with no session read).
    expect(c.perKind.session).toMatchObject({ sampledReads: 10, sampledMisses: 0, misses: 2 });
    expect(c.perKind.session!.missesAfterEnd).toEqual({});
    expect(c.orphanedIndexes).toHaveLength(1);
    const html = renderReportHtml(r);
    expect(html).toContain('id="cache-health"');
    expect(html).toContain('Index user_sessions lists 2 session id(s)');
  });
});
