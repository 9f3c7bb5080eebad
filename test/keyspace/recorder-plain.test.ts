import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical.js';
import { Ledger } from '../../src/audit/ledger.js';
import type { AuditInput } from '../../src/audit/record.js';
import { verifyLedger } from '../../src/audit/verify.js';
import { TOKEN_EVENT_TYPES, type TokenEvent } from '../../src/domain/token-event.js';
import { KeyspaceRecorder } from '../../src/keyspace/recorder.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { DIST_TIMEOUT_MS, ensureDist } from '../audit/dist.js';
import { tempDir } from '../audit/helpers.js';

beforeAll(() => ensureDist(), DIST_TIMEOUT_MS); // the writer thread runs the compiled worker

const FP = `hmac-sha256:k1:${'ab'.repeat(32)}`;

/** Every shape a TokenEvent takes, with every optional field set, unset and at its edges. */
function events(): TokenEvent[] {
  const out: TokenEvent[] = [];
  // keyAttrs as TokenRules makes them: a null-prototype chain, a placeholder named __proto__,
  // non-secret values decoded from raw key bytes (U+FFFD, astral, quotes, control characters).
  const keyAttrs = Object.create(Object.freeze(Object.create(null) as object)) as Record<
    string,
    string
  >;
  keyAttrs.__proto__ = FP;
  keyAttrs.sub = 'u\uFFFD\u{1F600}"\\\n\u0000';
  keyAttrs.token = FP;
  let t = 1_800_000_000_000;
  for (const type of TOKEN_EVENT_TYPES) {
    const base = { type, kind: 'access_token', fingerprint: FP, keyAttrs, node: 'n:1', db: 0 };
    out.push({ ...base, observedAt: t++, redisEvent: 'set' });
    out.push({
      ...base,
      observedAt: t++,
      redisEvent: 'rename_to',
      dueAt: null,
      ttlMs: null,
      lifetimeMs: 0,
      expiryLagMs: -0,
      backlog: true,
      rewrite: true,
      renamedFrom: null,
    });
    out.push({
      ...base,
      observedAt: t++,
      redisEvent: 'expired',
      dueAt: t + 0.5,
      ttlMs: 1234.5,
      lifetimeMs: Number.MAX_SAFE_INTEGER,
      expiryLagMs: 1e21,
      renamedFrom: { kind: 'refresh_token', fingerprint: FP },
    });
  }
  return out;
}

describe('KeyspaceRecorder token records (Ledger.appendToken)', () => {
  it('go to the writer thread as columns and are stored as the recorder made them', async () => {
    const dir = tempDir();
    const ledger = new Ledger({
      path: join(dir, 'audit.db'),
      batchSize: 7,
      flushIntervalMs: 5,
      maxPending: 10_000,
      hmacKeyIds: ['k1'],
      writerEncodes: 'writer',
    });
    const made: AuditInput[] = [];
    const append = ledger.appendToken.bind(ledger);
    ledger.appendToken = (input, event) => {
      made.push(input);
      append(input, event);
    };
    const recorder = new KeyspaceRecorder(ledger, createMetrics(['access_token']), 0);
    for (const [i, ev] of events().entries()) {
      recorder.token(ev, i % 2 === 0 ? { epoch: 3, pos: `3.${i}.0` } : undefined);
    }
    expect(ledger.flush()).toBe(true);
    expect(made).toHaveLength(TOKEN_EVENT_TYPES.length * 3);
    expect(ledger.encodedBy?.columns).toBe(ledger.encodedBy?.writer);
    expect(ledger.encodedBy?.columns).toBeGreaterThanOrEqual(Math.floor(made.length / 7));
    const stored = ledger.list({ type: 'token.*' });
    expect(stored).toHaveLength(made.length);
    for (const [i, m] of made.entries()) {
      const s = stored[i];
      // What the file holds is what the recorder made, to the canonical byte.
      expect(canonicalJson(s?.attrs)).toBe(canonicalJson(m.attrs));
      expect([s?.type, s?.time, s?.fingerprint, s?.kind]).toEqual([
        m.type,
        m.time,
        m.fingerprint,
        m.kind,
      ]);
    }
    ledger.close();
    const report = await verifyLedger({ dbPath: join(dir, 'audit.db'), trusted: [] });
    expect(report.problems).toEqual([]);
  });
});
