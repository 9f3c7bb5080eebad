import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeverityNumber } from '@opentelemetry/api';
import { emptyResource } from '@opentelemetry/resources';
import { describe, expect, it } from 'vitest';
import type { ChainedRecord } from '../../src/audit/record-stream.js';
import { otelSchema } from '../../src/config/otel-schema.js';
import { toLogRecord, type AuditLogContext } from '../../src/telemetry/audit-log-record.js';
import { readCursor, writeCursor } from '../../src/telemetry/log-cursor.js';
import { resolveAuditLogSettings } from '../../src/telemetry/otel.js';

const ctx: AuditLogContext = {
  ledgerId: 'ledger-1',
  productVersion: '0.1.0',
  resource: emptyResource(),
  scope: { name: 'tokenwatch.audit', version: '0.1.0' },
};
const fp = `hmac-sha256:k1:${'ab'.repeat(32)}`;
const record = (over: Partial<ChainedRecord>): ChainedRecord => ({
  seq: 42,
  time: 1_700_000_000_123,
  source: 'redis',
  type: 'token.written',
  kind: 'access_token',
  fingerprint: fp,
  attrs: '{"node":"n1","ttlMs":60000}',
  chain: 'cd'.repeat(32),
  ...over,
});

describe('toLogRecord', () => {
  it('carries seq, type, kind, fingerprint, chain and the canonical attributes', () => {
    const lr = toLogRecord(record({}), ctx);
    expect(lr.attributes).toMatchObject({
      'tokenwatch.ledger.id': 'ledger-1',
      'tokenwatch.audit.seq': 42,
      'tokenwatch.audit.type': 'token.written',
      'tokenwatch.audit.source': 'redis',
      'tokenwatch.audit.kind': 'access_token',
      'tokenwatch.audit.fingerprint': fp,
      'tokenwatch.audit.chain': 'cd'.repeat(32),
      'tokenwatch.audit.attrs': '{"node":"n1","ttlMs":60000}',
      'ocsf.class_uid': 6003,
      'ocsf.activity_id': 1,
      'ocsf.activity_name': 'Create',
      'ocsf.type_uid': 600301,
    });
    expect(lr.hrTime).toEqual([1_700_000_000, 123_000_000]);
    expect(lr.severityNumber).toBe(SeverityNumber.INFO);
    expect(lr.eventName).toBe('tokenwatch.audit.token.written');
    expect(lr.instrumentationScope).toBe(ctx.scope);
  });

  it('maps finding severity onto the log severity and omits null kind/fingerprint', () => {
    const lr = toLogRecord(
      record({
        source: 'correlator',
        type: 'finding.revocation_not_propagated',
        kind: null,
        fingerprint: null,
        attrs: '{"severity":"high","state":"opened","summary":"tokens outlived a revocation"}',
      }),
      ctx,
    );
    expect(lr.severityNumber).toBe(SeverityNumber.ERROR);
    expect(lr.body).toBe('tokens outlived a revocation');
    expect(lr.attributes['ocsf.class_uid']).toBe(2004);
    expect(lr.attributes).not.toHaveProperty('tokenwatch.audit.kind');
    expect(lr.attributes).not.toHaveProperty('tokenwatch.audit.fingerprint');
  });

  it('gives no OCSF attributes where the mapping has none (Base Event)', () => {
    const lr = toLogRecord(record({ source: 'system', type: 'something.new', attrs: '{}' }), ctx);
    expect(Object.keys(lr.attributes).filter((k) => k.startsWith('ocsf.'))).toEqual([]);
  });
});

describe('resolveAuditLogSettings', () => {
  const parse = (v: unknown) => otelSchema.parse(v);
  it('is off without the section, with enabled: false, OTEL_SDK_DISABLED or OTEL_LOGS_EXPORTER=none', () => {
    expect(resolveAuditLogSettings(parse({}), '/d/a.db', {})).toBeUndefined();
    // An OTLP endpoint in the environment alone does not ship the audit trail off the host.
    expect(
      resolveAuditLogSettings(parse({}), '/d/a.db', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }),
    ).toBeUndefined();
    expect(
      resolveAuditLogSettings(parse({ logs: { enabled: false } }), '/d/a.db', {}),
    ).toBeUndefined();
    expect(
      resolveAuditLogSettings(parse({ enabled: false, logs: {} }), '/d/a.db', {}),
    ).toBeUndefined();
    expect(
      resolveAuditLogSettings(parse({ logs: {} }), '/d/a.db', { OTEL_SDK_DISABLED: 'true' }),
    ).toBeUndefined();
    expect(
      resolveAuditLogSettings(parse({ logs: {} }), '/d/a.db', { OTEL_LOGS_EXPORTER: 'none' }),
    ).toBeUndefined();
  });

  it('defaults the cursor beside the database and leaves the URL to the OTLP env', () => {
    const s = resolveAuditLogSettings(parse({ logs: {} }), '/d/a.db', {});
    expect(s).toEqual({
      url: undefined,
      serviceName: 'tokenwatch',
      batchSize: 512,
      cursorFile: '/d/otlp-logs.cursor.json',
      retryMaxMs: 30_000,
      drainTimeoutMs: 5_000,
      timeoutMs: 10_000,
    });
  });

  it('rejects a bad endpoint and an out-of-range batch size with the key path', () => {
    const r = otelSchema.safeParse({ logs: { endpoint: 'ftp://x', batchSize: 0 } });
    expect(r.success).toBe(false);
    const paths = r.error?.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['logs.endpoint', 'logs.batchSize']));
  });
});

describe('log cursor file', () => {
  it('round-trips and refuses malformed or truncated content', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-cursor-'));
    try {
      const path = join(dir, 'c.json');
      expect(readCursor(path)).toEqual({ ok: false, reason: 'missing' });
      const cursor = { ledgerId: 'l', seq: 9, chain: 'ef'.repeat(32) };
      writeCursor(path, cursor);
      expect(readCursor(path)).toEqual({ ok: true, cursor });
      for (const bad of [
        '{"v":1,"ledgerId":"l","seq":9,"chain":"ef"}',
        '{"v":1,"ledgerId":"l","seq":-1,"chain":"' + 'ef'.repeat(32) + '"}',
        '{"v":2,"ledgerId":"l","seq":9,"chain":"' + 'ef'.repeat(32) + '"}',
        '{"v":1,"ledgerId":"l","seq":9,',
      ]) {
        writeFileSync(path, bad);
        expect(readCursor(path)).toEqual({ ok: false, reason: 'malformed' });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
