import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  canonicalJson,
  canonicalRecord,
  chainHashHex,
  leafHashHex,
  ZERO_HASH,
} from '../audit/canonical.js';
import type { Ledger } from '../audit/ledger.js';
import { openLedgerFile } from '../audit/ledger-file.js';
import { CompactEncoder } from '../audit/compact-encoder.js';
import { encodeColumns, LEAF_HINT_BYTES } from '../audit/record-codec.js';
import { insertSql, ROWS_PER_INSERT } from '../audit/row-writer.js';
import { round } from './stats.js';

/** The record scenario 6 appends, as the keyspace writes it for a SET EX. */
export function benchRecordAttrs(now: number): Record<string, unknown> {
  return {
    node: '127.0.0.1:6379',
    db: 0,
    redisEvent: 'set',
    ttlMs: 3_600_000,
    dueAt: now + 3_600_000,
  };
}

export const BENCH_FINGERPRINT = `hmac-sha256:k1:${'ab'.repeat(32)}`;

/**
 * Scenario 6's append loop: `records` token records, flushed; resolves to the seconds it took.
 * The event loop turns between chunks (the writer thread's replies arrive as messages); at most
 * four batches wait, as the service's bounded queue would hold them.
 */
export async function appendBenchRecords(ledger: Ledger, records: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < records; i++) {
    const now = Date.now();
    ledger.append({
      time: now,
      source: 'redis',
      type: 'token.written',
      kind: 'access_token',
      fingerprint: BENCH_FINGERPRINT,
      attrs: benchRecordAttrs(now),
    });
    if (i % 1000 === 999) {
      do await new Promise((r) => setImmediate(r));
      while (ledger.state().pending > 4000);
    }
  }
  ledger.flush();
  return (performance.now() - started) / 1000;
}

export interface LedgerCeilings {
  /** INSERTs alone: same schema (indexes, seq trigger), statements, batches and fsync; no encoding or hashing. */
  insertPerSec: number;
  /** Encoding, both hashes and the storage encoding (what RowWriter.add does before the INSERT), one core. */
  hashPerSec: number;
  /** The two together on one thread: 1 / (1/insert + 1/hash), what a serial writer can reach. */
  serialPerSec: number;
  /** Verification's hashing alone (leaf and chain from the canonical text), one core. */
  verifyHashPerSec: number;
}

/**
 * The raw ceilings scenario 6 is measured against, in the same run: what SQLite with the
 * ledger's schema accepts when nothing is encoded or hashed, and what encoding plus hashing
 * cost when nothing is inserted.
 */
export function ledgerCeilings(records: number, batch: number): LedgerCeilings {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-ceiling-'));
  // A raw connection outside src/audit/ on purpose: the bare INSERT speed is the point, on a
  // throw-away file of its own, never the service's ledger (the one exception named in
  // test/architecture/ledger-sql.test.ts).
  const db = openLedgerFile(join(dir, 'audit.db'));
  const many = db.prepare(insertSql(ROWS_PER_INSERT));
  const one = db.prepare(insertSql(1));
  const now0 = Date.now();
  const attrs = canonicalJson(benchRecordAttrs(now0));
  // The row as the ledger stores it (schema v5: compact form, 4-byte leaf hint), encoded once.
  const stored = encodeColumns(
    {
      seq: 1,
      time: now0,
      source: 'redis',
      type: 'token.written',
      kind: 'access_token',
      fingerprint: BENCH_FINGERPRINT,
      attrs,
    },
    benchRecordAttrs(now0),
  );
  const blob = typeof stored.attrs === 'string' ? stored.attrs : Buffer.from(stored.attrs);
  const leaf = 'cd'.repeat(LEAF_HINT_BYTES);
  const chain = 'ef'.repeat(32);
  let seq = 0;
  const row = (): unknown[] => {
    seq += 1;
    return [
      seq,
      now0,
      stored.source,
      stored.type,
      stored.kind,
      stored.fingerprint,
      blob,
      leaf,
      chain,
    ];
  };
  const commit = db.transaction((n: number) => {
    let i = 0;
    for (; i + ROWS_PER_INSERT <= n; i += ROWS_PER_INSERT) {
      const args: unknown[] = [];
      for (let j = 0; j < ROWS_PER_INSERT; j++) args.push(...row());
      many.run(...args);
    }
    for (; i < n; i++) one.run(...row());
  });
  let started = performance.now();
  for (let done = 0; done < records; done += batch) commit(Math.min(batch, records - done));
  const insertPerSec = records / ((performance.now() - started) / 1000);
  db.close();
  rmSync(dir, { recursive: true, force: true });

  const hashed = Math.min(records, 300_000);
  let prev = ZERO_HASH.toString('hex');
  started = performance.now();
  // What RowWriter does per record: the compact encoder writes the blob and the canonical attrs
  // text in one pass, then leaf and chain.
  const compact = new CompactEncoder();
  for (let s = 1; s <= hashed; s++) {
    const now = Date.now();
    const input = benchRecordAttrs(now);
    const f = {
      seq: s,
      time: now,
      source: 'redis',
      type: 'token.written',
      kind: 'access_token',
      fingerprint: BENCH_FINGERPRINT,
      attrs: '',
    };
    f.attrs = compact.encode(f, input)?.attrs ?? canonicalJson(input);
    const l = leafHashHex(canonicalRecord(f));
    prev = chainHashHex(prev, l);
  }
  const hashPerSec = hashed / ((performance.now() - started) / 1000);

  const canon = canonicalRecord({
    seq: 123_456,
    time: Date.now(),
    source: 'redis',
    type: 'token.written',
    kind: 'access_token',
    fingerprint: BENCH_FINGERPRINT,
    attrs,
  });
  started = performance.now();
  for (let s = 1; s <= hashed; s++) prev = chainHashHex(prev, leafHashHex(canon));
  const verifyHashPerSec = hashed / ((performance.now() - started) / 1000);

  return {
    insertPerSec: round(insertPerSec),
    hashPerSec: round(hashPerSec),
    serialPerSec: round(1 / (1 / insertPerSec + 1 / hashPerSec)),
    verifyHashPerSec: round(verifyHashPerSec),
  };
}
