import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { ZERO_HASH } from '../../src/audit/canonical.js';
import { Ledger } from '../../src/audit/ledger.js';
import type { AuditInput } from '../../src/audit/record.js';
import { compactRows, RowWriter } from '../../src/audit/row-writer.js';
import { verifyLedger } from '../../src/audit/verify.js';
import { DIST_TIMEOUT_MS, ensureDist } from './dist.js';
import { FakeClock, tempDir } from './helpers.js';

const T = Date.UTC(2026, 0, 1);
const FP = `hmac-sha256:k1:${'ab'.repeat(32)}`;

/** Token records as the keyspace writes them, and the shapes that cannot be stored compact. */
const INPUTS: AuditInput[] = [
  {
    time: T,
    source: 'redis',
    type: 'token.written',
    kind: 'access_token',
    fingerprint: FP,
    attrs: {
      db: 0,
      dueAt: T + 3_600_000,
      key: { token: FP },
      node: '127.0.0.1:6379',
      redisEvent: 'set',
      ttlMs: 3_600_000,
      backlog: undefined,
    },
  },
  {
    time: T + 1,
    source: 'redis',
    type: 'token.expired',
    kind: 'session',
    fingerprint: FP,
    attrs: { lifetimeMs: 1.5, list: [1, 'a'], nested: { b: 1, a: null }, neg: -7, zero: -0 },
  },
  // A lone surrogate and a key order canonical JSON sorts differently: kept as text, whatever
  // side encodes them.
  {
    time: T + 2,
    source: 'redis',
    type: 'token.deleted',
    kind: 'access_token',
    fingerprint: 'not-a-fingerprint',
    attrs: { z: 'x\ud800y', a: true, b: false, big: 2 ** 60 },
  },
  { time: T + 3, source: 'system', type: 'keyspace.gap', attrs: { node: 'n', start: 1, end: 2 } },
  { time: Number.NaN, source: 'redis', type: 'token.present', kind: 'k', attrs: {} },
];

function encode(writer: RowWriter): { args: unknown[]; chain: string } {
  writer.begin(0, ZERO_HASH, T);
  for (const input of INPUTS) writer.add(input);
  const end = writer.end();
  return { args: end.args, chain: end.chain.toString('hex') };
}

describe('RowWriter deferCompact + compactRows (storage encoding on the writer thread)', () => {
  it('hashes the same chain and, once compacted, gives the very rows of the inline encoder', () => {
    const inline = encode(new RowWriter());
    const deferred = encode(new RowWriter(undefined, { deferCompact: true }));
    expect(deferred.chain).toBe(inline.chain);
    // Before compaction the token rows are in text form: attrs is the canonical JSON.
    expect(typeof deferred.args[6]).toBe('string');
    expect(inline.args[6]).toBeInstanceOf(Uint8Array);
    compactRows(deferred.args);
    expect(deferred.args).toEqual(inline.args);
    // The first two token rows are compact, the lone-surrogate one and the gap stay text.
    expect(deferred.args[2]).toBeNull();
    expect(deferred.args[9 + 2]).toBeNull();
    expect(deferred.args[18 + 6]).toBeTypeOf('string');
    expect(deferred.args[27 + 3]).toBe('keyspace.gap');
  });

  it('leaves text rows of other types untouched', () => {
    const args = [1, T, 'system', 'audit.started', null, null, '{"a":1}', 'ab', 'cd'];
    compactRows(args);
    expect(args).toEqual([1, T, 'system', 'audit.started', null, null, '{"a":1}', 'ab', 'cd']);
  });
});

beforeAll(() => ensureDist(), DIST_TIMEOUT_MS); // the writer thread runs the compiled writer-worker.js

describe('a ledger on its writer thread stores what an inline ledger stores', () => {
  it('same rows byte for byte, and both verify', async () => {
    const rows: unknown[][] = [];
    for (const writerThread of [true, false]) {
      const dir = tempDir();
      const clock = new FakeClock(T);
      const ledger = new Ledger({
        path: join(dir, 'audit.db'),
        batchSize: 3,
        flushIntervalMs: 5,
        maxPending: 1000,
        hmacKeyIds: ['k1'],
        now: clock.now,
        writerThread,
      });
      expect(ledger.writer).toBe(writerThread ? 'thread' : 'inline');
      for (const input of INPUTS) ledger.append(input);
      ledger.close();
      const report = await verifyLedger({ dbPath: join(dir, 'audit.db'), trusted: [] });
      expect(report.problems).toEqual([]);
      const db = new Database(join(dir, 'audit.db'), { readonly: true });
      rows.push(
        db
          .prepare(
            "SELECT seq, time, source, type, kind, fingerprint, attrs, leaf FROM records WHERE type IS NULL OR type LIKE 'token.%' ORDER BY seq",
          )
          .raw()
          .all(),
      );
      db.close();
    }
    // The chains differ (each ledger has its own id in its genesis); the rows must not.
    expect(rows[0]).toHaveLength(INPUTS.length - 1);
    expect(rows[0]).toEqual(rows[1]);
  });
});
