import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditInput } from '../../src/audit/record.js';
import { exportBundle } from '../../src/compliance/export-bundle.js';
import { OCSF_SCHEMA_VERSION, toOcsf } from '../../src/compliance/ocsf.js';
import { verifyExport } from '../../src/compliance/verify-export.js';
import { buildScenario, fp, readOnly, tempDir } from './helpers.js';
import { OcsfSchema } from './ocsf-schema.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';

/**
 * issue #15.9: every row the OCSF exporter emits is valid against ONE schema version, checked
 * with the class and object definitions vendored from github.com/ocsf/ocsf-schema
 * (test/fixtures/ocsf/<version>/, see its README for the source commit).
 */

const SCHEMA_DIR = resolve(import.meta.dirname, '../fixtures/ocsf', OCSF_SCHEMA_VERSION);
const schema = new OcsfSchema(SCHEMA_DIR);
type Emit = (input: Omit<AuditInput, 'time'> & { at?: number }) => void;

const T = Date.UTC(2026, 0, 1);

/** One record of every type (and outcome) the ledger holds, so every mapping branch is taken. */
function everyRecordType(emit: Emit): void {
  const provider = (type: string, attrs: Record<string, unknown> = {}): void =>
    emit({
      source: 'provider',
      type: `provider.${type}`,
      fingerprint: fp(1),
      attrs: {
        provider: 'okta',
        eventId: `ev-${type}`,
        occurredAt: T,
        subject: 'alice',
        sessionId: fp(2),
        tokenIds: [fp(1)],
        outcome: 'success',
        attributes: { ip: '10.0.0.1', userAgent: 'curl/8', reason: 'r' },
        via: 'push',
        ...attrs,
      },
    });
  for (const t of [
    'session_started',
    'session_ended',
    'session_revoked',
    'token_issued',
    'token_refreshed',
    'token_revoked',
    'refresh_reuse_detected',
    'account_disabled',
    'credential_changed',
    'something_new',
  ])
    provider(t);
  provider('token_revoked', { provider: 'oidc', outcome: 'failure', subject: undefined });
  provider('session_started', { attributes: { ip: 'not-an-ip' } }); // a vendor's junk stays out of ip
  emit({
    source: 'provider',
    type: 'provider.rejected',
    attrs: { provider: 'auth0', reason: 'bad_signature', remoteAddress: '::ffff:127.0.0.1' },
  });
  emit({
    source: 'provider',
    type: 'provider.rejected',
    attrs: { provider: 'auth0', reason: 'x' },
  });
  emit({ source: 'provider', type: 'provider.stream_verified', attrs: { provider: 'ssf' } });
  const token = (type: string, attrs: Record<string, unknown>): void =>
    emit({
      source: 'redis',
      type: `token.${type}`,
      kind: 'access_token',
      fingerprint: fp(3),
      attrs: { node: 'redis-0', db: 0, ...attrs },
    });
  token('written', { redisEvent: 'set', ttlMs: 60_000, dueAt: T + 60_000 });
  token('written', { redisEvent: 'set', ttlMs: null, dueAt: null });
  token('written', { redisEvent: 'set', ttlUnknown: true });
  token('present', { via: 'baseline', ttlMs: 50_000, dueAt: T + 50_000 });
  token('appeared', { via: 'reconcile', gapStart: T, gapEnd: T + 1 });
  token('ttl_changed', { redisEvent: 'expire', ttlMs: 1000 });
  token('persisted', { redisEvent: 'persist' });
  token('renamed', {
    redisEvent: 'rename_to',
    renamedFrom: { kind: 'access_token', fingerprint: fp(4) },
  });
  token('expired', { redisEvent: 'expired', lifetimeMs: 60_000, expiryLagMs: 3 });
  token('deleted', { redisEvent: 'del', lifetimeMs: 5 });
  token('evicted', { redisEvent: 'evicted' });
  token('vanished', { via: 'reconcile' });
  const finding = (rule: string, state: string, withToken: boolean): void =>
    emit({
      source: 'correlator',
      type: `finding.${rule}`,
      kind: withToken ? 'access_token' : null,
      fingerprint: withToken ? fp(3) : null,
      attrs: {
        id: `${rule}-1`,
        state,
        severity: state === 'opened' ? 'high' : 'info',
        criteria: ['CC6.1', 'CC7.2'],
        summary: `${rule} ${state}`,
        openedAt: T,
        evidenceSeqs: [2, 3],
        attributes: { x: 1 },
      },
    });
  finding('ttl_exceeds_policy', 'opened', true);
  finding('ttl_exceeds_policy', 'resolved', true);
  finding('churn_spike', 'opened', false);
  finding('rotation_incomplete', 'opened', false);
  const propagation = (metSla: boolean | null, latencySeconds: number | null): void =>
    emit({
      source: 'correlator',
      type: 'revocation.propagation',
      attrs: {
        provider: 'okta',
        providerEventId: `ev-${String(metSla)}`,
        eventType: 'token_revoked',
        latencySeconds,
        metSla,
        slaSeconds: 5,
        tokens: 2,
        tokensGoneBeforeEvent: 0,
      },
    });
  propagation(true, 1.234);
  propagation(false, 7.5);
  propagation(null, null);
  const admin = (outcome: string, remoteAddress: string): void =>
    emit({
      source: 'admin',
      type: 'admin.access',
      attrs: {
        principal: 'auditor',
        method: 'GET',
        route: '/v1/reports/soc2',
        outcome,
        remoteAddress,
      },
    });
  admin('allowed', '127.0.0.1');
  admin('forbidden', '::1');
  emit({
    source: 'admin',
    type: 'admin.access_suppressed',
    attrs: {
      source: '10.0.0.9',
      from: T,
      to: T + 60_000,
      recorded: 20,
      suppressed: 7,
      outcomes: {},
    },
  });
  emit({ source: 'system', type: 'system.started', attrs: { version: '0.1.0', pid: 1 } });
  emit({
    source: 'system',
    type: 'config.policy',
    attrs: { tokens: [], correlate: {}, digest: 'd' },
  });
  const log = (type: string, attrs: Record<string, unknown>): void =>
    emit({ source: 'system', type, attrs });
  log('keyspace.baseline', { node: 'redis-0', counts: { access_token: 1 }, scanned: 1 });
  log('keyspace.gap', { node: 'redis-0', start: T, end: T + 1, durationMs: 1, reason: 'x' });
  log('keyspace.flush', { node: 'redis-0', start: T, end: T + 1 });
  log('audit.degraded', { start: T, end: T + 1, droppedRecords: 0 });
  log('audit.clock_skew', { backwardsMs: 5 });
  log('audit.retention_purge', { beforeSeq: 1, records: 0 });
  log('audit.archived', { fromSeq: 1, toSeq: 1, records: 1 });
  log('audit.archive_expired', { files: [], retentionDays: 400 });
  log('something.unmapped', { a: 1 });
  emit({ source: 'system', type: 'system.stopped', attrs: { reason: 'shutdown' } });
}

describe(`OCSF rows are valid OCSF ${OCSF_SCHEMA_VERSION}`, () => {
  it('validates every exported row against the vendored class and object definitions', async () => {
    const s = buildScenario(everyRecordType, { checkpointEvery: 25 });
    const out = join(tempDir(), 'ocsf');
    const db = readOnly(s.dbPath);
    try {
      await exportBundle({
        store: new LedgerStore(db),
        from: T,
        to: T + 86_400_000,
        format: 'ocsf',
        outDir: out,
        key: s.key,
      });
    } finally {
      db.close();
    }
    expect(verifyExport(out, s.trusted).problems).toEqual([]);
    const rows = readdirSync(out)
      .filter((n) => n.endsWith('.ocsf.jsonl'))
      .flatMap((n) => readFileSync(join(out, n), 'utf8').trim().split('\n'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.length).toBeGreaterThan(40);
    const problems = rows.flatMap((e) =>
      schema.validate(e).map((p) => `${(e.metadata as { event_code: string }).event_code}: ${p}`),
    );
    expect(problems).toEqual([]);
    // Every class the mapping uses was exercised.
    expect([...new Set(rows.map((e) => e.class_uid))].sort()).toEqual([
      0, 1008, 2003, 2004, 3001, 3002, 6002, 6003,
    ]);
    const byCode = (code: string) =>
      rows.filter((e) => (e.metadata as { event_code: string }).event_code === code);
    // The propagation latency is a typed field; its outcome a compliance status.
    expect(byCode('revocation.propagation').map((e) => [e.duration, e.compliance])).toEqual([
      [1234, expect.objectContaining({ control: 'CC6.2', status_id: 1, status: 'Pass' })],
      [7500, expect.objectContaining({ status_id: 3, status: 'Fail' })],
      [undefined, expect.objectContaining({ status_id: 2, status: 'Warning' })],
    ]);
    for (const e of rows) expect((e.metadata as { version: string }).version).toBe('1.4.0');
    expect(byCode('token.present')[0]).toMatchObject({ activity_id: 2, type_uid: 600302 });
    expect(byCode('audit.archived')[0]).toMatchObject({ activity_id: 4, type_uid: 100804 });
    expect(byCode('audit.archive_expired')[0]).toMatchObject({ activity_id: 2, type_uid: 100802 });
    // Only the definitions this test reads are vendored.
    const vendored = readdirSync(SCHEMA_DIR, { recursive: true })
      .map(String)
      .filter((n) => n.endsWith('.json'));
    expect(vendored.sort()).toEqual([...schema.used].sort());
  });

  it('the validator catches what the issue found: a 1.4.0 attribute under 1.3.0, a bad enum, an unknown attribute', () => {
    const ctx = { ledgerId: 'L', productVersion: '0.1.0' };
    const good = toOcsf(
      {
        seq: 7,
        time: T,
        source: 'correlator',
        type: 'finding.x',
        kind: null,
        fingerprint: null,
        attrs: '{}',
      },
      { id: 'f', state: 'opened', severity: 'high', criteria: ['CC6.1'], summary: 's' },
      '[1,7]',
      ctx,
    );
    expect(schema.validate(good)).toEqual([]);
    const meta = good.metadata as Record<string, unknown>;
    expect(schema.validate({ ...good, metadata: { ...meta, version: '1.3.0' } })).toContain(
      'metadata.version: "1.3.0", expected "1.4.0"',
    );
    expect(schema.validate({ ...good, status_id: 42 })).toContain(
      'status_id: 42 is not in its enum',
    );
    expect(schema.validate({ ...good, severity: 'Low' })).toContain(
      'severity: "Low", expected "High"',
    );
    expect(schema.validate({ ...good, latency_ms: 5 })).toContain(
      'latency_ms: not an attribute of detection_finding',
    );
    expect(schema.validate({ ...good, time: '2026-01-01' })).toContain('time: not a long');
    const noInfo = { ...good };
    delete noInfo.finding_info;
    expect(schema.validate(noInfo)).toContain('finding_info: required by detection_finding');
    expect(schema.validate({ ...good, type_uid: 200402 })).toContain(
      'type_uid: 200402, expected 200401',
    );
    // `actor` comes with the host profile, which these events do not apply.
    expect(schema.validate({ ...good, actor: { app_name: 'x' } })).toContain(
      'actor: not an attribute of detection_finding',
    );
  });
});
