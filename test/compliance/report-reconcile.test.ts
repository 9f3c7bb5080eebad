import { describe, expect, it } from 'vitest';
import { listRecords } from '../../src/audit/query.js';
import type { AuditRecord } from '../../src/audit/record.js';
import { buildReport } from '../../src/compliance/report-data.js';
import type { Soc2Report } from '../../src/compliance/report-types.js';
import { fp, readOnly, type Scenario } from './helpers.js';
import { DAY, EXPECTED, T0, socScenario } from './scenario.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';

async function report(s: Scenario, from = T0, to = T0 + DAY): Promise<Soc2Report> {
  const db = readOnly(s.dbPath);
  try {
    return await buildReport({
      store: new LedgerStore(db),
      from,
      to,
      trusted: s.trusted,
      policy: {
        seq: null,
        time: null,
        maxTtlSeconds: { access_token: 3600, session: 3600 },
        ttlToleranceSeconds: 0,
        revocationSlaSeconds: null,
        revocationEventTypes: null,
        digest: null,
      },
      now: () => T0 + DAY,
    });
  } finally {
    db.close();
  }
}

function raw(s: Scenario): AuditRecord[] {
  const db = readOnly(s.dbPath);
  try {
    return listRecords(db);
  } finally {
    db.close();
  }
}

/** Nearest rank, written out independently of src/compliance/percentiles.ts. */
function rank(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  let i = 0;
  while ((i + 1) / sorted.length < p / 100) i += 1;
  return sorted[i]!;
}

describe('SOC 2 report numbers reconcile with the ledger', () => {
  it('recomputes every headline number from the raw records', async () => {
    const s = socScenario();
    const r = await report(s);
    const records = raw(s).filter(
      (x) => x.seq >= r.ledger.range!.firstSeq && x.seq <= r.ledger.range!.lastSeq,
    );
    expect(r.ledger.range!.records).toBe(records.length);
    const byType: Record<string, number> = {};
    for (const x of records) byType[x.type] = (byType[x.type] ?? 0) + 1;
    expect(r.ledger.recordsByType).toEqual(byType);

    // Lifecycle: every token.* record lands in exactly one counter.
    const tokenRecords = records.filter((x) => x.type.startsWith('token.'));
    const counted = (Object.values(r.inventory.totals) as number[]).reduce((a, b) => a + b, 0);
    expect(counted).toBe(tokenRecords.length);
    expect(r.inventory.totals.expired).toBe(byType['token.expired']);
    expect(r.inventory.totals.evicted).toBe(byType['token.evicted']);
    expect(r.inventory.totals.deleted).toBe(byType['token.deleted']);
    expect(r.inventory.totals.vanished).toBe(byType['token.vanished']);
    expect(r.inventory.totals.issued + r.inventory.totals.refreshed).toBe(
      byType['token.written']! + byType['token.appeared']! + (byType['token.ttl_changed'] ?? 0),
    );
    // Churn buckets add up to the totals.
    const sum = (k: 'issued' | 'refreshed' | 'ended') =>
      r.inventory.churn.buckets.reduce((a, b) => a + b[k], 0);
    expect(sum('issued')).toBe(r.inventory.totals.issued);
    expect(sum('refreshed')).toBe(r.inventory.totals.refreshed);
    expect(sum('ended')).toBe(
      r.inventory.totals.expired +
        r.inventory.totals.evicted +
        r.inventory.totals.deleted +
        r.inventory.totals.vanished,
    );
    // Inventory end = start + issued - ended, per kind, when no baseline resets inside.
    for (const k of r.inventory.kinds) {
      const l = r.inventory.lifecycle[k]!;
      const baseline = records
        .filter((x) => x.type === 'keyspace.baseline')
        .reduce((a, x) => a + ((x.attrs.counts as Record<string, number>)[k] ?? 0), 0);
      expect(r.inventory.end[k], k).toBe(
        (r.inventory.start[k] ?? 0) +
          baseline +
          l.issued -
          l.expired -
          l.evicted -
          l.deleted -
          l.vanished,
      );
    }

    // Revocations: count and nearest-rank percentiles of the propagation records.
    const obs = records.filter((x) => x.type === 'revocation.propagation');
    const lat = obs.map((x) => x.attrs.latencySeconds as number);
    expect(r.revocations.count).toBe(obs.length);
    expect(r.revocations.latencySeconds).toEqual({
      count: lat.length,
      p50: rank(lat, 50),
      p95: rank(lat, 95),
      p99: rank(lat, 99),
      max: Math.max(...lat),
    });
    expect(r.revocations.breached).toBe(obs.filter((x) => x.attrs.metSla === false).length);
    expect(r.revocations.histogram.reduce((a, b) => a + b.count, 0)).toBe(lat.length);
    const late = obs.filter((x) => x.attrs.metSla !== true);
    expect(r.revocations.breaches.map((b) => b.seq).sort()).toEqual(late.map((x) => x.seq).sort());
    // Each breach lists its finding's evidence.
    const finding = records.find(
      (x) => x.type === 'finding.revocation_not_propagated' && x.attrs.state === 'opened',
    )!;
    expect(r.revocations.breaches[0]!.evidenceSeqs).toEqual(
      expect.arrayContaining([finding.seq, ...(finding.attrs.evidenceSeqs as number[])]),
    );

    // Findings per rule: opened records and resolved records.
    for (const [rule, s2] of Object.entries(r.findings)) {
      const of = records.filter((x) => x.type === `finding.${rule}`);
      expect(s2.opened, rule).toBe(of.filter((x) => x.attrs.state === 'opened').length);
      expect(s2.resolved, rule).toBe(of.filter((x) => x.attrs.state === 'resolved').length);
    }

    // Blind spots: the stated durations, summed.
    const windows = records.filter((x) => x.type === 'keyspace.gap' || x.type === 'audit.degraded');
    expect(r.blindSpots.windows.map((w) => w.seq)).toEqual(windows.map((x) => x.seq));
    expect(r.blindSpots.totalMs).toBe(
      windows.reduce((a, x) => a + (x.attrs.durationMs as number), 0),
    );
    const ps = records.filter((x) => x.type.startsWith('provider.'));
    expect(Object.values(r.providerEvents).reduce((a, b) => a + b, 0)).toBe(ps.length);
  });

  it('matches the scenario as written by hand', async () => {
    const r = await report(socScenario());
    expect(r.integrity).toMatchObject({ status: 'verified', problems: [] });
    expect(r.integrity.sealedBy?.signatureValid).toBe(true);
    // The first baseline lies inside the period: what was live before it was never seen.
    expect(r.inventory.start).toEqual({ access_token: null, refresh_token: null, session: null });
    expect(r.inventory.startKnown).toBe(false);
    expect(r.inventory.endKnown).toBe(true);
    // access: baseline 2 + 10 written - 5 ended (1..5) - 1 baseline token expired + 1 appeared - 1 vanished
    expect(r.inventory.end).toEqual({ access_token: 6, refresh_token: 2, session: 1 });
    expect(r.inventory.adjustments).toEqual({
      access_token: null,
      refresh_token: null,
      session: null,
    });
    expect(r.inventory.baselines.map((b) => b.counts)).toEqual([
      { access_token: 2, refresh_token: 1 },
    ]);
    expect(r.inventory.lifecycle.access_token).toMatchObject({
      issued: 11,
      refreshed: 2,
      expired: 3,
      deleted: 1,
      evicted: 2,
      vanished: 1,
    });
    expect(r.revocations).toMatchObject({
      slaSeconds: 30,
      count: 5,
      met: 4,
      breached: 1,
      unknown: 0,
    });
    expect(r.revocations.latencySeconds).toEqual({ count: 5, p50: 8, p95: 40, p99: 40, max: 40 });
    expect(r.revocations.breaches).toHaveLength(1);
    expect(r.revocations.breaches[0]).toMatchObject({
      providerEventId: 'ev-5',
      status: 'breached',
      latencySeconds: 40,
      findingId: 'rnp-1',
    });
    expect(r.ttl.perKind.refresh_token).toMatchObject({ written: 1, noExpiry: 1 });
    expect(r.ttl.perKind.session).toMatchObject({
      written: 1,
      withTtl: 1,
      maxTtlSeconds: 7200,
      overPolicy: 1,
    });
    expect(r.ttl.withoutExpiry.map((f) => f.fingerprint)).toEqual([fp(100)]);
    expect(r.anomalies.unattributed).toHaveLength(1);
    expect(r.anomalies.writeAfterRevocation[0]).toMatchObject({
      id: 'war-1',
      resolvedSeq: expect.any(Number),
    });
    expect(r.response.churnSpikes[0]!.durationMs).toBeGreaterThan(0);
    expect(r.response.evicted.access_token).toBe(2);
    expect(r.blindSpots.windows.map((w) => [w.type, w.durationMs])).toEqual([
      ['keyspace.gap', EXPECTED.gapMs],
      ['audit.degraded', EXPECTED.degradedMs],
    ]);
    expect(r.adminAccess).toEqual({ allowed: 1, denied: 0, principals: { auditor: 1 } });
  });

  it('a later period starts from the inventory the earlier records left', async () => {
    const s = socScenario();
    const whole = await report(s);
    const cut = T0 + 20 * 60_000;
    const first = await report(s, T0, cut);
    const second = await report(s, cut, T0 + DAY);
    expect(second.inventory.start).toEqual(first.inventory.end);
    expect(second.inventory.end).toEqual(whole.inventory.end);
    expect(second.integrity.status).toBe('verified');
    expect(second.integrity.anchor?.source).toBe('record');
  });

  it('a damaged ledger fails the integrity section', async () => {
    const s = socScenario();
    const { tamper } = await import('../audit/helpers.js');
    tamper(s.dbPath, (db) => db.prepare('UPDATE records SET time = time + 1 WHERE seq = 7').run());
    const r = await report(s);
    expect(r.integrity.status).toBe('failed');
    expect(r.integrity.problems[0]).toMatch(/record 7/);
  });
});
