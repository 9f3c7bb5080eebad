import { describe, expect, it } from 'vitest';
import { openLedgerStore } from '../../src/audit/store/ledger-store.js';
import { buildMergedReport, type MergedSoc2Report } from '../../src/compliance/merged-report.js';
import { renderMergedReportHtml } from '../../src/compliance/merged-report-html.js';
import { reportCommand } from '../../src/cli/report.js';
import { T0, type InstanceFiles } from '../audit/instances.js';
import { haFleet as fleet } from './ha-fleet.js';
import { sink } from '../helpers/sink.js';

async function merged(...files: InstanceFiles[]): Promise<MergedSoc2Report> {
  const stores = files.map((f) => openLedgerStore(f.dbPath));
  try {
    return await buildMergedReport({
      ledgers: files.map((f, i) => ({
        path: f.dbPath,
        store: stores[i]!,
        trusted: f.trusted,
        checkpointLog: f.logPath,
        damage: [],
      })),
      from: T0,
      to: T0 + 60_000,
      now: () => T0 + 60_000,
    });
  } finally {
    for (const s of stores) s.close();
  }
}

describe('merged report of several instances', () => {
  it('counts every token event once: deduplicated by node/pos, a fenced epoch cut at its successor', async () => {
    const f = fleet();
    const ab = await merged(f.A!, f.B!);
    expect(ab.tokens).toEqual({
      byType: { 'token.written': { access_token: 8 }, 'token.vanished': { access_token: 1 } },
      counted: 9,
      duplicates: 4, // fp2, fp3 (replayed by B), fp6, fp8 (B's stale copies)
      fencedExcluded: 1, // fp9: B's, after A's replay point, under B's fenced epoch
      withoutPosition: 1,
    });
    // The order the ledgers are given in changes which copy counts, never the count.
    const ba = await merged(f.B!, f.A!);
    expect(ba.tokens.byType).toEqual(ab.tokens.byType);
    expect(ba.tokens.counted).toBe(9);
    expect(ba.tokens.fencedExcluded).toBe(3); // fp6, fp8, fp9 of B's fenced epoch
    expect(ba.tokens.duplicates).toBe(2);
  });

  it('shows the ownership timeline with takeovers and fencing, and complete coverage', async () => {
    const f = fleet();
    const r = await merged(f.A!, f.B!);
    expect(
      r.ownership.map((e) => [e.time - T0, e.event, e.epoch, e.instance, e.change ?? null]),
    ).toEqual([
      [1_000, 'acquired', 1, 'A', 'first'],
      [10_000, 'acquired', 2, 'B', 'takeover'],
      [20_000, 'fenced', 2, 'B', null],
      [20_500, 'acquired', 3, 'A', 'takeover'],
    ]);
    expect(r.coverage.ok).toBe(true);
    expect(r.ledgers.map((l) => l.report.integrity.status)).toEqual(['verified', 'verified']);
    // Each ledger's own report is kept whole; the per-ledger sections are not merged.
    expect(r.ledgers[1]?.report.ledger.recordsByType['ownership.fenced']).toBe(1);
    expect(r.notMerged.length).toBeGreaterThan(0);
    const html = renderMergedReportHtml(r);
    expect(html).toContain('Ownership timeline');
    expect(html).toMatch(/acquired <span class="badge warn">takeover<\/span>/);
    expect(html).toContain('<span class="badge good">complete</span>');
  });

  it('withholding B: coverage names the missing epoch, counts hold only what A recorded', async () => {
    const f = fleet();
    const r = await merged(f.A!);
    expect(r.coverage.ok).toBe(false);
    expect(r.coverage.problems).toMatchObject([{ class: 'missing_epoch', node: 'n0', epoch: 2 }]);
    expect(r.tokens.counted).toBe(7);
    expect(renderMergedReportHtml(r)).toContain('missing_epoch');
  });

  it('tokenwatch report with several --db writes the merged JSON and HTML', async () => {
    const f = fleet();
    const period = [
      '--from',
      new Date(T0).toISOString(),
      '--to',
      new Date(T0 + 60_000).toISOString(),
    ];
    const j = sink();
    const code = await reportCommand(
      ['--db', f.A!.dbPath, '--db', f.B!.dbPath, ...period, '--format', 'json'],
      j.out,
      sink().out,
    );
    expect(code).toBe(0);
    const r = JSON.parse(j.text()) as MergedSoc2Report;
    expect(r.format).toBe('tokenwatch-soc2-merged-report');
    expect(r.tokens.counted).toBe(9);
    expect(r.ledgers).toHaveLength(2);
    const h = sink();
    await reportCommand(['--db', f.A!.dbPath, '--db', f.B!.dbPath, ...period], h.out, sink().out);
    expect(h.text()).toMatch(/^<!doctype html>/);
    expect(h.text()).toContain('Token events, each counted once');
  });
});
