import type { AuditInput } from '../../src/audit/record.js';
import { buildScenario, fp, type Scenario } from './helpers.js';

type Emit = (input: Omit<AuditInput, 'time'> & { at?: number }) => void;

export const DAY = 86_400_000;
export const T0 = Date.UTC(2026, 0, 1);

/** What the scripted day contains, for assertions written by hand. */
export const EXPECTED = {
  accessWritten: 10,
  revocationLatencies: [2, 5, 8, 12, 40],
  slaSeconds: 30,
  gapMs: 15_000,
  degradedMs: 5_000,
};

function written(emit: Emit, kind: string, n: number, ttlMs: number | null, at?: number): void {
  emit({
    source: 'redis',
    type: 'token.written',
    kind,
    fingerprint: fp(n),
    attrs: {
      node: 'redis-0',
      db: 0,
      redisEvent: 'set',
      key: { token: fp(n) },
      ttlMs,
      dueAt: ttlMs === null ? null : T0 + ttlMs,
    },
    ...(at === undefined ? {} : { at }),
  });
}

function ended(emit: Emit, type: string, kind: string, n: number): void {
  emit({
    source: 'redis',
    type: `token.${type}`,
    kind,
    fingerprint: fp(n),
    attrs: { node: 'redis-0', db: 0, redisEvent: type === 'deleted' ? 'del' : type },
  });
}

function finding(
  emit: Emit,
  rule: string,
  id: string,
  state: 'opened' | 'resolved',
  extra: {
    severity?: string;
    criteria?: string[];
    evidenceSeqs?: number[];
    attributes?: Record<string, unknown>;
    openedAt?: number;
    kind?: string;
    fingerprint?: string;
  } = {},
): void {
  emit({
    source: 'correlator',
    type: `finding.${rule}`,
    kind: extra.kind ?? null,
    fingerprint: extra.fingerprint ?? null,
    attrs: {
      id,
      state,
      severity: extra.severity ?? 'high',
      criteria: extra.criteria ?? ['CC6.2'],
      summary: `${rule} ${state}`,
      openedAt: extra.openedAt,
      evidenceSeqs: extra.evidenceSeqs ?? [],
      attributes: extra.attributes ?? {},
    },
  });
}

/**
 * One scripted day of a small deployment: a baseline, token churn of three kinds, a revocation
 * SLA breach among on-time ones, findings of every section, a blind spot and a degraded window.
 * Seqs: genesis is 1, so the n-th emit gets seq n + 1.
 */
export function socScenario(opts: { checkpointEvery?: number } = {}): Scenario {
  return buildScenario(
    (emit, clock) => {
      emit({
        source: 'redis',
        type: 'keyspace.baseline',
        attrs: {
          node: 'redis-0',
          counts: { access_token: 2, refresh_token: 1 },
          scanned: 3,
          unmatched: 0,
          durationMs: 4,
        },
      });
      emit({ source: 'system', type: 'system.started', attrs: { version: '0.1.0', pid: 1 } });
      for (let i = 1; i <= 10; i++) written(emit, 'access_token', i, 3_600_000);
      written(emit, 'refresh_token', 100, null); // no expiry
      finding(emit, 'token_without_expiry', 'twe-1', 'opened', {
        severity: 'medium',
        criteria: ['CC6.1'],
        evidenceSeqs: [14],
        kind: 'refresh_token',
        fingerprint: fp(100),
      });
      written(emit, 'session', 200, 7_200_000);
      finding(emit, 'ttl_exceeds_policy', 'ttl-1', 'opened', {
        severity: 'low',
        criteria: ['CC6.1'],
        evidenceSeqs: [16],
        kind: 'session',
        fingerprint: fp(200),
      });
      ended(emit, 'expired', 'access_token', 1);
      ended(emit, 'expired', 'access_token', 2);
      ended(emit, 'deleted', 'access_token', 3);
      ended(emit, 'evicted', 'access_token', 4);
      ended(emit, 'evicted', 'access_token', 5);
      ended(emit, 'expired', 'access_token', 900); // a baseline token (known only by count)
      written(emit, 'access_token', 6, 3_600_000); // overwrite of a live token: refreshed
      emit({
        source: 'redis',
        type: 'token.ttl_changed',
        kind: 'access_token',
        fingerprint: fp(7),
        attrs: { node: 'redis-0', db: 0, redisEvent: 'expire', ttlMs: 60_000 },
      });
      emit({
        source: 'provider',
        type: 'provider.token_revoked',
        fingerprint: fp(8),
        attrs: {
          provider: 'okta',
          eventId: 'ev-1',
          vendorType: 'app.oauth2.token.revoke',
          occurredAt: clock.t,
          subject: 'alice',
          tokenIds: [fp(8)],
          outcome: 'success',
          attributes: { ip: '10.0.0.1' },
          via: 'push',
        },
      });
      EXPECTED.revocationLatencies.forEach((latency, i) => {
        emit({
          source: 'correlator',
          type: 'revocation.propagation',
          attrs: {
            provider: 'okta',
            providerEventId: `ev-${i + 1}`,
            eventType: 'token_revoked',
            latencySeconds: latency,
            metSla: latency <= EXPECTED.slaSeconds,
            slaSeconds: EXPECTED.slaSeconds,
            tokens: 1,
            tokensGoneBeforeEvent: 0,
          },
        });
      });
      finding(emit, 'revocation_not_propagated', 'rnp-1', 'opened', {
        evidenceSeqs: [26, 9],
        attributes: { providerEventId: 'ev-5', slaSeconds: 30 },
      });
      finding(emit, 'revocation_not_propagated', 'rnp-1', 'resolved', {
        evidenceSeqs: [26, 9, 31],
        attributes: { providerEventId: 'ev-5', latencySeconds: 40, slaMet: false },
      });
      finding(emit, 'unattributed_token', 'ua-1', 'opened', {
        severity: 'medium',
        criteria: ['CC7.2'],
        evidenceSeqs: [12],
        kind: 'access_token',
        fingerprint: fp(9),
      });
      finding(emit, 'write_after_revocation', 'war-1', 'opened', {
        severity: 'critical',
        criteria: ['CC7.2'],
        evidenceSeqs: [26, 12],
      });
      finding(emit, 'write_after_revocation', 'war-1', 'resolved', {
        severity: 'critical',
        criteria: ['CC7.2'],
        evidenceSeqs: [26, 12],
      });
      finding(emit, 'churn_spike', 'cs-1', 'opened', {
        severity: 'medium',
        criteria: ['CC7.3'],
        attributes: { kind: 'access_token' },
      });
      finding(emit, 'churn_spike', 'cs-1', 'resolved', { severity: 'medium', criteria: ['CC7.3'] });
      finding(emit, 'tokens_evicted', 'te-1', 'opened', {
        severity: 'high',
        criteria: ['CC7.4'],
        evidenceSeqs: [20, 21],
      });
      const gapStart = clock.t;
      emit({
        source: 'redis',
        type: 'keyspace.gap',
        attrs: {
          node: 'redis-0',
          start: gapStart,
          end: gapStart + EXPECTED.gapMs,
          durationMs: EXPECTED.gapMs,
          reason: 'subscriber_disconnected',
          appeared: { access_token: 1 },
          vanished: { access_token: 1 },
          ttl_changed: {},
          scanned: 10,
          reconcileMs: 3,
        },
        at: gapStart + EXPECTED.gapMs,
      });
      emit({
        source: 'redis',
        type: 'token.appeared',
        kind: 'access_token',
        fingerprint: fp(300),
        attrs: { node: 'redis-0', via: 'reconcile', gapStart, gapEnd: gapStart + EXPECTED.gapMs },
        at: clock.t,
      });
      emit({
        source: 'redis',
        type: 'token.vanished',
        kind: 'access_token',
        fingerprint: fp(10),
        attrs: { node: 'redis-0', via: 'reconcile', gapStart, gapEnd: gapStart + EXPECTED.gapMs },
        at: clock.t,
      });
      finding(emit, 'tokens_evicted', 'te-1', 'resolved', {
        severity: 'high',
        criteria: ['CC7.4'],
        evidenceSeqs: [20, 21],
      });
      const degradedStart = clock.t + 1000;
      emit({
        source: 'system',
        type: 'audit.degraded',
        attrs: {
          start: degradedStart,
          end: degradedStart + EXPECTED.degradedMs,
          durationMs: EXPECTED.degradedMs,
          reason: 'SQLITE_FULL: database or disk is full',
          droppedRecords: 0,
        },
        at: degradedStart + EXPECTED.degradedMs,
      });
      emit({
        source: 'admin',
        type: 'admin.access',
        attrs: {
          principal: 'auditor',
          method: 'GET',
          route: '/v1/reports/soc2',
          outcome: 'allowed',
          remoteAddress: '127.0.0.1',
        },
      });
      emit({ source: 'system', type: 'system.stopped', attrs: { reason: 'shutdown' } });
    },
    { checkpointEvery: opts.checkpointEvery ?? 10, stepMs: 60_000 },
  );
}
