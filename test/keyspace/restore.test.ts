import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { Ledger } from '../../src/audit/ledger.js';
import type { AuditInput } from '../../src/audit/record.js';
import { Inventory } from '../../src/keyspace/inventory.js';
import { restoreInventory } from '../../src/keyspace/restore.js';

const f = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
const fp = (t: string) => f.ofLatin1(t);
const NODE = '127.0.0.1:6379';
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A real ledger file holding `records` after a `system.started`; returns it and that seq. */
function ledgerWith(records: AuditInput[]): { ledger: Ledger; fromSeq: number } {
  const dir = mkdtempSync(join(tmpdir(), 'tw-restore-'));
  dirs.push(dir);
  const ledger = new Ledger({
    path: join(dir, 'audit.db'),
    batchSize: 100,
    flushIntervalMs: 5,
    maxPending: 10_000,
    hmacKeyIds: ['k1'],
    writerThread: false,
  });
  ledger.append({ time: 1, source: 'system', type: 'system.started', attrs: {} });
  for (const r of records) ledger.append(r);
  ledger.flush();
  const fromSeq = ledger.list({ type: 'system.started' }).at(-1)?.seq ?? 0;
  return { ledger, fromSeq };
}

const tok = (type: string, t: string, attrs: Record<string, unknown> = {}): AuditInput => ({
  time: 10,
  source: 'redis',
  type: `token.${type}`,
  kind: 'a',
  fingerprint: fp(t),
  attrs: { node: NODE, ...attrs },
});
const baseline: AuditInput = {
  time: 5,
  source: 'redis',
  type: 'keyspace.baseline',
  attrs: { node: NODE },
};

function restore(records: AuditInput[], maxRecords = 1000) {
  const { ledger, fromSeq } = ledgerWith(records);
  const inventory = new Inventory(['a'], f.prefix);
  const r = restoreInventory({ ledger, inventory, node: NODE, nodeIndex: 0, fromSeq, maxRecords });
  ledger.close();
  return { r, inventory };
}

describe('restoreInventory: the previous run as its ledger left it', () => {
  it('replays present, writes, TTL changes, renames and ends of its node only', () => {
    const { r, inventory } = restore([
      tok('present', 'p', { dueAt: 100 }),
      tok('present', 'nottl', { dueAt: null }),
      baseline,
      tok('written', 'w', { dueAt: 200 }),
      tok('written', 'unknown'), // TTL unknown
      tok('ttl_changed', 'p', { dueAt: 150 }),
      tok('persisted', 'w', { dueAt: null }),
      tok('written', 'gone', { dueAt: 300 }),
      tok('deleted', 'gone'),
      tok('present', 'src', { dueAt: 400 }),
      tok('renamed', 'dst', { renamedFrom: { kind: 'a', fingerprint: fp('src') } }),
      tok('written', 'elsewhere', { dueAt: 1, node: '10.0.0.9:6379' }),
    ]);
    expect(r).toMatchObject({ restored: true, tokens: 5 });
    expect(inventory.get('a', fp('p'))).toEqual({ due: 150, written: 0, node: 0 });
    expect(inventory.get('a', fp('nottl'))?.due).toBeNull();
    expect(inventory.get('a', fp('w'))).toEqual({ due: null, written: 10, node: 0 });
    expect(inventory.get('a', fp('unknown'))?.due).toBeNaN();
    expect(inventory.get('a', fp('gone'))).toBeUndefined();
    expect(inventory.get('a', fp('src'))).toBeUndefined();
    expect(inventory.get('a', fp('dst'))?.due).toBe(400); // RENAME keeps the TTL
    expect(inventory.get('a', fp('elsewhere'))).toBeUndefined();
  });

  it('refuses a previous run that never completed its baseline', () => {
    const { r, inventory } = restore([tok('present', 'p', { dueAt: 100 })]);
    expect(r).toEqual({ restored: false, why: 'the previous run never completed its baseline' });
    expect(inventory.size('a')).toBe(0); // the caller starts from a plain baseline
  });

  it('refuses (and leaves nothing) beyond maxRecords', () => {
    const many = Array.from({ length: 30 }, (_, i) => tok('present', `t${i}`, { dueAt: i }));
    const { r, inventory } = restore([...many, baseline], 20);
    expect(r).toMatchObject({ restored: false });
    expect(inventory.size('a')).toBe(0);
  });

  it('an unreconciled restart gap does not count as a completed baseline', () => {
    const gap: AuditInput = {
      time: 5,
      source: 'redis',
      type: 'keyspace.gap',
      attrs: { node: NODE, reason: 'tokenwatch_crashed', unreconciled: 'cluster: not restored' },
    };
    expect(restore([gap]).r.restored).toBe(false);
    const reconciled = { ...gap, attrs: { node: NODE, reason: 'tokenwatch_stopped' } };
    expect(restore([reconciled]).r.restored).toBe(true);
  });
});
