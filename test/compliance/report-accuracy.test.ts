import { describe, expect, it } from 'vitest';
import type { AuditInput } from '../../src/audit/record.js';
import type { Policy } from '../../src/compliance/policy-record.js';
import { buildReport } from '../../src/compliance/report-data.js';
import { renderReportHtml } from '../../src/compliance/report-html.js';
import type { Soc2Report } from '../../src/compliance/report-types.js';
import { buildScenario, fp, readOnly, type Scenario } from './helpers.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';

/** issue #15 items 6-8: what the report states about policy, inventory, blind spots, findings. */

type Emit = (input: Omit<AuditInput, 'time'> & { at?: number }) => void;
const T = Date.UTC(2026, 0, 1);
const MIN = 60_000;

async function report(s: Scenario, from: number, to: number, policy?: Policy): Promise<Soc2Report> {
  const db = readOnly(s.dbPath);
  try {
    return await buildReport({
      store: new LedgerStore(db),
      from,
      to,
      trusted: s.trusted,
      now: () => to,
      policy,
    });
  } finally {
    db.close();
  }
}

function policyRecord(
  emit: Emit,
  at: number,
  max: Record<string, number | null>,
  correlate: Record<string, unknown> = { ttlToleranceSeconds: 2, revocationSlaSeconds: 5 },
): void {
  emit({
    at,
    source: 'system',
    type: 'config.policy',
    attrs: {
      tokens: Object.entries(max).map(([kind, m]) => ({
        kind,
        key: `${kind}:{token}`,
        maxTtlSeconds: m,
        requireProviderEvent: false,
      })),
      correlate,
      digest: `d-${at}`,
    },
  });
}

function token(
  emit: Emit,
  at: number,
  type: string,
  kind: string,
  n: number,
  attrs: Record<string, unknown> = {},
): void {
  emit({
    at,
    source: 'redis',
    type: `token.${type}`,
    kind,
    fingerprint: fp(n),
    attrs: { node: 'redis-0', db: 0, ...attrs },
  });
}

function baseline(emit: Emit, at: number, counts: Record<string, number>): void {
  emit({
    at,
    source: 'redis',
    type: 'keyspace.baseline',
    attrs: { node: 'redis-0', counts, scanned: 9, unmatched: 0, durationMs: 3 },
  });
}

function finding(
  emit: Emit,
  at: number,
  rule: string,
  id: string,
  state: 'opened' | 'resolved',
  n: number | null,
): void {
  emit({
    at,
    source: 'correlator',
    type: `finding.${rule}`,
    kind: n === null ? null : 'access_token',
    fingerprint: n === null ? null : fp(n),
    attrs: { id, state, severity: 'medium', criteria: ['CC6.1'], summary: `${rule} ${state}` },
  });
}

describe('policy in force (#15.6)', () => {
  it('judges each TTL by the policy recorded before it, with the correlator tolerance', async () => {
    const s = buildScenario((emit) => {
      baseline(emit, T + 1000, {});
      policyRecord(emit, T + 2000, { access_token: 3600 });
      // 3601 s and 3602 s are within the 2 s tolerance; 3603 s is over it.
      token(emit, T + 3000, 'written', 'access_token', 1, { ttlMs: 3_601_000 });
      token(emit, T + 4000, 'written', 'access_token', 2, { ttlMs: 3_602_000 });
      token(emit, T + 5000, 'written', 'access_token', 3, { ttlMs: 3_603_000 });
      token(emit, T + 5500, 'written', 'access_token', 3, { ttlMs: 3_700_000 }); // same token
      // A restart with a stricter policy: 60 s, tolerance 0.
      policyRecord(
        emit,
        T + 6000,
        { access_token: 60 },
        { ttlToleranceSeconds: 0, revocationSlaSeconds: 9 },
      );
      token(emit, T + 7000, 'written', 'access_token', 4, { ttlMs: 61_000 });
      token(emit, T + 7500, 'written', 'access_token', 5, { ttlMs: 60_000 });
      // A blind write reconciled with its TTL, and a baseline-found token: both judged.
      token(emit, T + 8000, 'appeared', 'access_token', 6, { ttlMs: 120_000, via: 'reconcile' });
      token(emit, T + 8500, 'present', 'access_token', 7, { ttlMs: null, dueAt: null });
      token(emit, T + 9000, 'ttl_changed', 'access_token', 8, { via: 'reconcile' }); // TTL not read
    });
    const r = await report(s, T, T + MIN);
    expect(r.policy.source).toBe('ledger');
    expect(
      r.policy.inForce.map((p) => [p.maxTtlSeconds.access_token, p.ttlToleranceSeconds]),
    ).toEqual([
      [3600, 2],
      [60, 0],
    ]);
    expect(r.policy.recordsWithoutPolicy).toBe(0);
    expect(r.ttl.perKind.access_token).toMatchObject({
      written: 6,
      withTtl: 7,
      noExpiry: 1,
      unknownTtl: 1,
      policyMaxTtlSeconds: 60,
      toleranceSeconds: 0,
      policyKnown: true,
      tokens: 7,
      overPolicy: 3, // fp(3) once, fp(4), fp(6)
      noExpiryTokens: 1, // fp(7)
      conformance: 3 / 7,
    });
    expect(r.revocations.slaSeconds).toBe(9); // no measurement: the SLA in force at the end
    // No correlator ran here: the report says the findings do not name what it counted.
    expect(r.ttl.agreement).toEqual({
      overPolicy: { withoutFinding: 3, findingNotCounted: 0 },
      withoutExpiry: { withoutFinding: 1, findingNotCounted: 0 },
    });
    expect(renderReportHtml(r)).toContain(
      '3 token(s) counted over policy that no finding names; 1 token(s) counted without expiry',
    );
  });

  it('without a recorded policy and without --config, conformance is unknown, not 100 %', async () => {
    const s = buildScenario((emit) => {
      baseline(emit, T + 1000, {});
      token(emit, T + 2000, 'written', 'access_token', 1, { ttlMs: 99_999_000 });
      finding(emit, T + 2500, 'ttl_exceeds_policy', 'tep-1', 'opened', 1);
    });
    const r = await report(s, T, T + MIN);
    expect(r.policy).toEqual({ source: 'none', inForce: [], recordsWithoutPolicy: 1 });
    expect(r.ttl.perKind.access_token).toMatchObject({
      policyKnown: false,
      overPolicy: null,
      conformance: null,
      policyMaxTtlSeconds: null,
    });
    const html = renderReportHtml(r);
    const ttl = html.slice(
      html.indexOf('<section id="ttl">'),
      html.indexOf('<section id="anomalies">'),
    );
    expect(ttl).not.toContain('100.0 %');
    expect(ttl).not.toMatch(/>none</);
    expect(ttl).toContain('TTL conformance is unknown');
    expect(html).toContain('<dt>Policy</dt><dd><span class="badge warn">not recorded</span>');

    // --config overrides for the whole period.
    const o = await report(s, T, T + MIN, {
      seq: null,
      time: null,
      maxTtlSeconds: { access_token: 3600 },
      ttlToleranceSeconds: 2,
      revocationSlaSeconds: 5,
      revocationEventTypes: null,
      digest: null,
    });
    expect(o.policy.source).toBe('config');
    expect(o.ttl.perKind.access_token).toMatchObject({ overPolicy: 1, conformance: 0 });
  });

  it('records before the first policy record stay unknown; the policy before the period counts', async () => {
    const s = buildScenario((emit) => {
      baseline(emit, T + 1000, {});
      token(emit, T + 2000, 'written', 'access_token', 1, { ttlMs: 10_000_000 });
      policyRecord(emit, T + 3000, { access_token: 3600 });
      token(emit, T + 4000, 'written', 'access_token', 2, { ttlMs: 10_000_000 });
      token(emit, T + 2 * MIN, 'written', 'access_token', 3, { ttlMs: 10_000_000 });
    });
    const first = await report(s, T, T + MIN);
    expect(first.policy.recordsWithoutPolicy).toBe(1);
    expect(first.ttl.perKind.access_token).toMatchObject({ policyKnown: false, overPolicy: null });
    // A later period starts under the policy recorded before it.
    const later = await report(s, T + MIN, T + 3 * MIN);
    expect(later.policy.inForce.map((p) => p.seq)).toEqual([first.policy.inForce[0]!.seq]);
    expect(later.ttl.perKind.access_token).toMatchObject({ policyKnown: true, overPolicy: 1 });
  });
});

describe('inventory counts named for what they count (#15.8)', () => {
  it('live tokens at the start are unknown until a baseline, then known', async () => {
    const s = buildScenario((emit) => {
      token(emit, T + 1000, 'written', 'access_token', 1, { ttlMs: 60_000 });
      baseline(emit, T + 2000, { access_token: 3 }); // three were live, one of them fp(1)
      token(emit, T + 3000, 'present', 'access_token', 1, { ttlMs: 58_000 });
      token(emit, T + 3100, 'present', 'access_token', 2, { ttlMs: 9_000 });
      token(emit, T + 4000, 'written', 'access_token', 2, { ttlMs: 60_000 }); // a rewrite
      token(emit, T + 5000, 'deleted', 'access_token', 1);
      token(emit, T + 2 * MIN, 'written', 'access_token', 9, { ttlMs: 60_000 });
    });
    const first = await report(s, T, T + MIN);
    expect(first.inventory).toMatchObject({
      start: { access_token: null },
      startKnown: false,
      end: { access_token: 2 },
      endKnown: true,
      adjustments: { access_token: null },
    });
    // present is not an issuance, and a rewrite of a baseline-found token is a refresh.
    expect(first.inventory.lifecycle.access_token).toMatchObject({
      issued: 1,
      present: 2,
      refreshed: 1,
      deleted: 1,
    });
    expect(first.inventory.lifecycle.access_token).not.toHaveProperty('revoked');
    expect(first.inventory.baselines).toEqual([
      expect.objectContaining({ node: 'redis-0', counts: { access_token: 3 } }),
    ]);
    // Before the baseline the churn chart's inventory is unknown, after it known.
    expect(first.inventory.churn.buckets[0]!.live).toBe(2);
    const html = renderReportHtml(first);
    expect(html).toContain('Live tokens at the start are unknown');
    expect(html).toContain('<th class="n">Deleted</th>');
    expect(html).not.toContain('>Revoked<');

    const second = await report(s, T + MIN, T + 3 * MIN);
    expect(second.inventory).toMatchObject({
      start: { access_token: 2 },
      startKnown: true,
      end: { access_token: 3 },
      adjustments: { access_token: 0 },
    });
  });
});

describe('blind spots show their duration and what reconciliation found (#15.8)', () => {
  it('states the reconciliation of a gap, and the baseline that reconciled a restart', async () => {
    const s = buildScenario((emit) => {
      baseline(emit, T + 1000, {});
      emit({
        at: T + 5000,
        source: 'redis',
        type: 'keyspace.gap',
        attrs: {
          node: 'redis-0',
          start: T + 4600,
          end: T + 5000,
          durationMs: 400,
          reason: 'disconnected',
          appeared: { access_token: 2 },
          vanished: { session: 1 },
          ttl_changed: {},
          scanned: 17,
          reconcileMs: 3,
        },
      });
      emit({
        at: T + 20_000,
        source: 'system',
        type: 'system.started',
        attrs: { version: '0', pid: 1 },
      });
      emit({
        at: T + 20_000,
        source: 'redis',
        type: 'keyspace.gap',
        attrs: {
          node: 'redis-0',
          start: T + 8000,
          end: T + 20_000,
          durationMs: 12_000,
          reason: 'tokenwatch_stopped',
          appeared: {},
          vanished: {},
          ttl_changed: {},
          scanned: 0,
          reconcileMs: 0,
        },
      });
      baseline(emit, T + 20_500, { access_token: 2 });
    });
    const r = await report(s, T, T + MIN);
    const [gap, restart] = r.blindSpots.windows;
    expect(gap).toMatchObject({
      durationMs: 400,
      found: { appeared: { access_token: 2 }, vanished: { session: 1 }, ttlChanged: {} },
      scanned: 17,
      reconciledBySeq: null,
    });
    expect(restart).toMatchObject({
      found: null,
      durationMs: 12_000,
      reconciledBySeq: r.inventory.baselines[1]!.seq,
    });
    const html = renderReportHtml(r);
    const section = html.slice(html.indexOf('<section id="blind-spots">'));
    expect(section).toContain('400 ms');
    expect(section).toContain('appeared: access_token 2');
    expect(section).toContain('vanished: session 1');
    expect(section).toContain(
      `start-up baseline <span class="mono">#${restart!.reconciledBySeq}</span>`,
    );
  });
});

describe('every open finding is listed (#15.7)', () => {
  it('lists rotation_incomplete and every other open finding in JSON and HTML', async () => {
    const s = buildScenario((emit) => {
      baseline(emit, T + 1000, {});
      finding(emit, T + 2000, 'rotation_incomplete', 'rot-1', 'opened', 4);
      finding(emit, T + 3000, 'some_future_rule', 'fut-1', 'opened', null);
      finding(emit, T + 4000, 'tokens_evicted', 'ev-1', 'opened', null);
      finding(emit, T + 5000, 'tokens_evicted', 'ev-1', 'resolved', null);
    });
    const r = await report(s, T, T + MIN);
    expect(r.findingList.map((f) => [f.id, f.resolvedSeq === null])).toEqual([
      ['rot-1', true],
      ['fut-1', true],
      ['ev-1', false],
    ]);
    expect(r.findings.rotation_incomplete).toEqual({ opened: 1, resolved: 0, openAtEnd: 1 });
    const html = renderReportHtml(r);
    const section = html.slice(
      html.indexOf('<section id="findings">'),
      html.indexOf('<section id="method">'),
    );
    for (const f of r.findingList.filter((x) => x.resolvedSeq === null))
      expect(section).toContain(`${f.rule} opened`);
    expect(section).not.toContain('tokens_evicted opened');
  });
});

describe('the TTL table and the findings count the same tokens (#15.8)', () => {
  it('counts a token whose finding was open when the period began, and agrees with the findings', async () => {
    const s = buildScenario((emit) => {
      baseline(emit, T + 1000, {});
      policyRecord(emit, T + 2000, { access_token: 3600 });
      token(emit, T + 3000, 'written', 'access_token', 1, { ttlMs: 7_200_000 });
      finding(emit, T + 3500, 'ttl_exceeds_policy', 'tep-1', 'opened', 1);
      token(emit, T + 4000, 'written', 'access_token', 2, { ttlMs: null, dueAt: null });
      finding(emit, T + 4500, 'token_without_expiry', 'twe-2', 'opened', 2);
      // The next period: one more token over policy, flagged; fp(1) and fp(2) not rewritten.
      token(emit, T + 2 * MIN, 'written', 'access_token', 3, { ttlMs: 3_700_000 });
      finding(emit, T + 2 * MIN + 500, 'ttl_exceeds_policy', 'tep-3', 'opened', 3);
      token(emit, T + 2 * MIN + 1000, 'written', 'access_token', 4, { ttlMs: 60_000 });
    });
    const r = await report(s, T + MIN, T + 3 * MIN);
    expect(r.ttl.overPolicy.map((f) => f.id)).toEqual(['tep-1', 'tep-3']);
    expect(r.ttl.withoutExpiry.map((f) => f.id)).toEqual(['twe-2']);
    expect(r.ttl.perKind.access_token).toMatchObject({
      tokens: 4,
      overPolicy: 2,
      noExpiryTokens: 1,
      conformance: 1 / 4,
    });
    expect(r.ttl.agreement).toEqual({
      overPolicy: { withoutFinding: 0, findingNotCounted: 0 },
      withoutExpiry: { withoutFinding: 0, findingNotCounted: 0 },
    });
  });
});
