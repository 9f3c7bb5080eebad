import type { AuditInput } from '../../src/audit/record.js';
import { buildScenario, fp, type Scenario } from './helpers.js';
import { DAY, T0 } from './scenario.js';
import { mulberry32 } from '../helpers/mulberry32.js';

/** `evidence`: the events whose seqs the finding's evidenceSeqs name (resolved once sorted). */
type Input = Omit<AuditInput, 'time'> & { at: number; evidence?: Input[] };

/**
 * A realistic day for the rendered report: daytime login traffic writing sessions, access and
 * refresh tokens that expire, logouts, provider revocations with two SLA breaches, a churn spike
 * in the afternoon, an eviction burst, a keyspace blind spot and a degraded ledger window.
 */
export function dayScenario(): Scenario {
  const rnd = mulberry32(7);
  const events: Input[] = [];
  let id = 1000;
  const min = 60_000;
  const token = (
    at: number,
    kind: string,
    ttlMs: number | null,
    end: 'expired' | 'deleted' | null,
  ): void => {
    const n = id++;
    events.push({
      at,
      source: 'redis',
      type: 'token.written',
      kind,
      fingerprint: fp(n),
      attrs: {
        node: 'redis-0',
        db: 0,
        redisEvent: 'set',
        ttlMs,
        dueAt: ttlMs === null ? null : at + ttlMs,
      },
    });
    if (end === 'expired' && ttlMs !== null && at + ttlMs < T0 + DAY) {
      events.push({
        at: at + ttlMs + Math.floor(rnd() * 2000),
        source: 'redis',
        type: 'token.expired',
        kind,
        fingerprint: fp(n),
        attrs: { node: 'redis-0', db: 0, redisEvent: 'expired', lifetimeMs: ttlMs },
      });
    } else if (end === 'deleted') {
      events.push({
        at: at + Math.floor(rnd() * 3 * 3_600_000),
        source: 'redis',
        type: 'token.deleted',
        kind,
        fingerprint: fp(n),
        attrs: { node: 'redis-0', db: 0, redisEvent: 'del' },
      });
    }
  };
  events.push({
    at: T0 + 30_000,
    source: 'redis',
    type: 'keyspace.baseline',
    attrs: {
      node: 'redis-0',
      counts: { access_token: 140, refresh_token: 95, session: 60 },
      scanned: 295,
      unmatched: 3,
      durationMs: 41,
    },
  });
  events.push({
    at: T0 + 20_000,
    source: 'system',
    type: 'system.started',
    attrs: { version: '0.1.0', pid: 4242 },
  });
  for (let t = T0 + min; t < T0 + DAY - 10 * min; t += 5 * min) {
    const hour = (t - T0) / 3_600_000;
    const daytime = Math.max(0, Math.sin(((hour - 6) / 16) * Math.PI));
    const logins = Math.round(2 + 10 * daytime + rnd() * 3);
    for (let i = 0; i < logins; i++) {
      const at = t + Math.floor(rnd() * 5 * min);
      token(at, 'session', 8 * 3_600_000, rnd() < 0.4 ? 'deleted' : 'expired');
      token(at + 50, 'access_token', 3_600_000, rnd() < 0.05 ? 'deleted' : 'expired');
      token(at + 80, 'refresh_token', 24 * 3_600_000, rnd() < 0.3 ? 'deleted' : null);
    }
  }
  // Churn spike 14:00-14:10: a deploy refreshing every client at once.
  for (let i = 0; i < 260; i++)
    token(T0 + 14 * 3_600_000 + Math.floor(rnd() * 10 * min), 'access_token', 3_600_000, 'expired');
  events.push({
    at: T0 + 14 * 3_600_000 + 4 * min,
    source: 'correlator',
    type: 'finding.churn_spike',
    kind: 'access_token',
    fingerprint: null,
    attrs: {
      id: 'churn_spike:access_token:1',
      state: 'opened',
      severity: 'medium',
      criteria: ['CC7.3'],
      summary: 'access_token writes at 9.4x their baseline rate (262 in 5 min).',
      openedAt: T0 + 14 * 3_600_000 + 4 * min,
      evidenceSeqs: [],
      attributes: { ratio: 9.4 },
    },
  });
  events.push({
    at: T0 + 14 * 3_600_000 + 19 * min,
    source: 'correlator',
    type: 'finding.churn_spike',
    kind: 'access_token',
    fingerprint: null,
    attrs: {
      id: 'churn_spike:access_token:1',
      state: 'resolved',
      severity: 'medium',
      criteria: ['CC7.3'],
      summary: 'access_token write rate back under 2x its baseline.',
      openedAt: T0 + 14 * 3_600_000 + 4 * min,
      evidenceSeqs: [],
      attributes: {},
    },
  });
  // Evictions at 16:30 under memory pressure.
  for (let i = 0; i < 38; i++) {
    const n = id++;
    const at = T0 + 16.5 * 3_600_000 + i * 900;
    events.push({
      at: at - 3_600_000,
      source: 'redis',
      type: 'token.written',
      kind: 'session',
      fingerprint: fp(n),
      attrs: {
        node: 'redis-0',
        db: 0,
        redisEvent: 'set',
        ttlMs: 8 * 3_600_000,
        dueAt: at + 7 * 3_600_000,
      },
    });
    events.push({
      at,
      source: 'redis',
      type: 'token.evicted',
      kind: 'session',
      fingerprint: fp(n),
      attrs: { node: 'redis-0', db: 0, redisEvent: 'evicted' },
    });
  }
  events.push({
    at: T0 + 16.5 * 3_600_000 + 20_000,
    source: 'correlator',
    type: 'finding.tokens_evicted',
    kind: 'session',
    fingerprint: null,
    attrs: {
      id: 'tokens_evicted:session:1',
      state: 'opened',
      severity: 'high',
      criteria: ['CC7.4', 'A1.2'],
      summary: '38 session tokens evicted by Redis (maxmemory-policy allkeys-lru).',
      openedAt: T0 + 16.5 * 3_600_000 + 20_000,
      evidenceSeqs: [],
      attributes: {},
    },
  });
  events.push({
    at: T0 + 17.25 * 3_600_000,
    source: 'correlator',
    type: 'finding.tokens_evicted',
    kind: 'session',
    fingerprint: null,
    attrs: {
      id: 'tokens_evicted:session:1',
      state: 'resolved',
      severity: 'high',
      criteria: ['CC7.4', 'A1.2'],
      summary: 'No eviction for 30 min after maxmemory was raised.',
      openedAt: T0 + 16.5 * 3_600_000 + 20_000,
      evidenceSeqs: [],
      attributes: {},
    },
  });
  // Revocations: most propagate in seconds, two do not.
  for (let i = 0; i < 24; i++) {
    const at = T0 + 7 * 3_600_000 + i * 31 * min + Math.floor(rnd() * min);
    const breach = i === 9 || i === 17;
    const latency = breach
      ? i === 9
        ? 47.2
        : 95.5
      : Math.round((0.4 + rnd() * rnd() * 22) * 100) / 100;
    const eventId = `okta-rev-${100 + i}`;
    const revoked: Input = {
      at,
      source: 'provider',
      type: 'provider.token_revoked',
      fingerprint: fp(50_000 + i),
      attrs: {
        provider: i % 3 === 0 ? 'auth0' : 'okta',
        eventId,
        vendorType: 'app.oauth2.as.token.revoke',
        occurredAt: at - 400,
        subject: `user-${i}`,
        tokenIds: [fp(50_000 + i)],
        outcome: 'success',
        attributes: { ip: `10.1.0.${i}` },
        via: 'push',
      },
    };
    events.push(revoked);
    if (breach) {
      events.push({
        at: at + 30_000,
        source: 'correlator',
        type: 'finding.revocation_not_propagated',
        kind: 'access_token',
        fingerprint: fp(50_000 + i),
        attrs: {
          id: `revocation_not_propagated:${eventId}`,
          state: 'opened',
          severity: 'high',
          criteria: ['CC6.2'],
          summary: `1 token of 1 still in Redis 30 s after okta token_revoked for subject user-${i}.`,
          openedAt: at + 30_000,
          evidenceSeqs: [],
          attributes: { providerEventId: eventId, provider: 'okta', slaSeconds: 30 },
        },
        evidence: [revoked],
      });
      events.push({
        at: at + latency * 1000 + 10,
        source: 'correlator',
        type: 'finding.revocation_not_propagated',
        kind: 'access_token',
        fingerprint: fp(50_000 + i),
        attrs: {
          id: `revocation_not_propagated:${eventId}`,
          state: 'resolved',
          severity: 'high',
          criteria: ['CC6.2'],
          summary: `All 1 token revoked by okta token_revoked left Redis after ${latency} s (SLA 30 s).`,
          openedAt: at + 30_000,
          evidenceSeqs: [],
          attributes: { providerEventId: eventId, latencySeconds: latency, slaMet: false },
        },
        evidence: [revoked],
      });
    }
    events.push({
      at: at + latency * 1000,
      source: 'correlator',
      type: 'revocation.propagation',
      attrs: {
        provider: 'okta',
        providerEventId: eventId,
        eventType: 'token_revoked',
        latencySeconds: latency,
        metSla: latency <= 30,
        slaSeconds: 30,
        tokens: 1,
        tokensGoneBeforeEvent: 0,
      },
    });
  }
  const policy = (
    at: number,
    rule: string,
    kind: string,
    n: number,
    summary: string,
    criteria: string,
    severity: string,
    resolveAfter?: number,
    ttlMs: number | null = 3_600_000,
  ): void => {
    const fid = `${rule}:${fp(n)}:${at}`;
    const write: Input = {
      at: at - 5,
      source: 'redis',
      type: 'token.written',
      kind,
      fingerprint: fp(n),
      attrs: {
        node: 'redis-0',
        db: 0,
        redisEvent: 'set',
        ttlMs,
        dueAt: ttlMs === null ? null : at + ttlMs,
      },
    };
    events.push(write);
    events.push({
      at,
      source: 'correlator',
      type: `finding.${rule}`,
      kind,
      fingerprint: fp(n),
      attrs: {
        id: fid,
        state: 'opened',
        severity,
        criteria: [criteria],
        summary,
        openedAt: at,
        evidenceSeqs: [],
        attributes: {},
      },
      evidence: [write],
    });
    if (resolveAfter !== undefined)
      events.push({
        at: at + resolveAfter,
        source: 'correlator',
        type: `finding.${rule}`,
        kind,
        fingerprint: fp(n),
        attrs: {
          id: fid,
          state: 'resolved',
          severity,
          criteria: [criteria],
          summary: `${summary} Resolved.`,
          openedAt: at,
          evidenceSeqs: [],
          attributes: {},
        },
        evidence: [write],
      });
  };
  policy(
    T0 + 10.2 * 3_600_000 + 5,
    'token_without_expiry',
    'refresh_token',
    90_001,
    'refresh_token written without a TTL.',
    'CC6.1',
    'medium',
    2 * 3_600_000,
    null,
  );
  policy(
    T0 + 11.7 * 3_600_000,
    'ttl_exceeds_policy',
    'access_token',
    90_002,
    'access_token TTL 43200 s exceeds the policy of 3600 s.',
    'CC6.1',
    'low',
    undefined,
    43_200_000,
  );
  policy(
    T0 + 12.4 * 3_600_000,
    'unattributed_token',
    'access_token',
    90_003,
    'access_token written with no matching provider issuance within 60 s.',
    'CC7.2',
    'medium',
    20 * min,
  );
  policy(
    T0 + 15.1 * 3_600_000,
    'write_after_revocation',
    'access_token',
    90_004,
    'access_token written 12 s after okta revoked the grant of subject user-9.',
    'CC7.2',
    'critical',
    4 * min,
  );
  // A keyspace blind spot (subscriber reconnect) and a degraded ledger window.
  const gapStart = T0 + 9.2 * 3_600_000;
  events.push({
    at: gapStart + 3 * min,
    source: 'redis',
    type: 'keyspace.gap',
    attrs: {
      node: 'redis-0',
      start: gapStart,
      end: gapStart + 3 * min,
      durationMs: 3 * min,
      reason: 'subscriber_disconnected',
      appeared: { access_token: 4 },
      vanished: { session: 2 },
      ttl_changed: {},
      scanned: 512,
      reconcileMs: 38,
    },
  });
  const degStart = T0 + 19.66 * 3_600_000;
  events.push({
    at: degStart + 45_000,
    source: 'system',
    type: 'audit.degraded',
    attrs: {
      start: degStart,
      end: degStart + 45_000,
      durationMs: 45_000,
      reason: 'SQLITE_FULL: database or disk is full',
      droppedRecords: 0,
    },
  });
  for (const who of ['auditor', 'auditor', 'soc-bot']) {
    events.push({
      at: T0 + DAY - 30 * min + events.length,
      source: 'admin',
      type: 'admin.access',
      attrs: {
        principal: who,
        method: 'GET',
        route: '/v1/reports/soc2',
        outcome: 'allowed',
        remoteAddress: '10.8.0.5',
      },
    });
  }
  events.sort((a, b) => a.at - b.at);
  // Seq = position + 2 (genesis is seq 1; the ledger adds no record in between).
  const seqOf = new Map(events.map((e, i) => [e, i + 2] as const));
  return buildScenario(
    (emit) => {
      for (const { evidence, ...e } of events) {
        if (evidence)
          (e.attrs as { evidenceSeqs: number[] }).evidenceSeqs = evidence.map(
            (x) => seqOf.get(x) ?? 0,
          );
        emit(e);
      }
    },
    { checkpointEvery: 2000, flushEvery: 500 },
  );
}
