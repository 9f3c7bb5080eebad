import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile, parseArchive } from '../audit/archive-file.js';
import { rehashArchivedRows } from '../audit/archive-rehash.js';
import { archiveWholeLedger } from '../audit/archive-segment.js';
import { ZERO_HASH } from '../audit/canonical.js';
import { ledgerDiskUsage } from '../audit/disk-usage.js';
import { Ledger } from '../audit/ledger.js';
import type { AuditInput } from '../audit/record.js';
import { RowWriter } from '../audit/row-writer.js';
import { resolveSigningKey } from '../audit/signing-keys.js';
import { verifyRange } from '../audit/verify-rows.js';

/** Bytes on disk of a ledger of token records: the figure behind "Sizing the disk". */
export interface LedgerDiskResult {
  records: number;
  batch: number;
  fileBytes: number;
  bytesPerRecord: number;
  /** dbstat: bytes of pages used by each table and index, per record. */
  perRecord: Record<string, number>;
  /** RowWriter.add alone (canonical text, hashes, storage encoding), no INSERT, one core. */
  encodePerSec: number;
  /** verifyRange over the whole file on one thread (leaf and chain of every row). */
  verifyPerSec: number;
  /**
   * The whole ledger as one archive file (archive-segment.ts, what the archive job writes):
   * gzip bytes per record, records archived per second (read, re-hash, gzip, fsync), and
   * records re-hashed per second from the file (what `verify --archive` does per file).
   */
  archiveBytesPerRecord: number;
  archivePerSec: number;
  archiveRehashPerSec: number;
}

const FP = (i: number): string =>
  `hmac-sha256:k1:${(i * 2654435761).toString(16).padStart(64, '0').slice(-64)}`;

/**
 * Writes `records` token records shaped as the keyspace recorder writes them for
 * `oauth:access:{token}` (written with SET EX, then expired or deleted), committed `batch` at a
 * time (one batch seal each), then measures the file with SQLite's dbstat table.
 */
export function ledgerDisk(records: number, batch: number): LedgerDiskResult {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-disk-'));
  try {
    const path = join(dir, 'audit.db');
    const { key } = resolveSigningKey(undefined, path);
    let now = Date.UTC(2026, 0, 1);
    const ledger = new Ledger({
      path,
      batchSize: batch,
      flushIntervalMs: 1_000_000,
      maxPending: batch * 4,
      hmacKeyIds: ['k1'],
      signingKey: key,
      writerThread: false,
      now: () => now,
    });
    const inputs: AuditInput[] = [];
    for (let i = 0; i < records; i++) {
      now += 2;
      const n = Math.floor(i / 2);
      const fingerprint = FP(n);
      const written = i % 2 === 0;
      inputs.push({
        time: now,
        source: 'redis',
        type: written ? 'token.written' : i % 6 === 1 ? 'token.deleted' : 'token.expired',
        kind: 'access_token',
        fingerprint,
        attrs: written
          ? {
              db: 0,
              dueAt: now + 3_600_000,
              key: { token: fingerprint },
              node: '10.0.3.17:6379',
              redisEvent: 'set',
              ttlMs: 3_600_000,
            }
          : i % 6 === 1
            ? {
                db: 0,
                key: { token: fingerprint },
                lifetimeMs: 1_234_567,
                node: '10.0.3.17:6379',
                redisEvent: 'del',
              }
            : {
                db: 0,
                dueAt: now - 3,
                expiryLagMs: 3,
                key: { token: fingerprint },
                lifetimeMs: 3_600_000,
                node: '10.0.3.17:6379',
                redisEvent: 'expired',
              },
      });
    }
    const encoder = new RowWriter();
    const started = performance.now();
    encoder.begin(0, ZERO_HASH, now);
    for (const input of inputs) encoder.add(input);
    encoder.end();
    const encodePerSec = Math.round(records / ((performance.now() - started) / 1000));
    for (let i = 0; i < records; i++) {
      ledger.append(inputs[i] as AuditInput);
      if (i % batch === batch - 1) ledger.flush();
    }
    ledger.close();
    const { records: total, objects: stat } = ledgerDiskUsage(path);
    const fileBytes = statSync(path).size;
    const verifyStarted = performance.now();
    const checked = verifyRange({
      dbPath: path,
      from: 1,
      to: total,
      checkpoints: [],
      clockToleranceMs: 1000,
    });
    if (checked.problems.length > 0)
      throw new Error(`ledger does not verify: ${checked.problems[0]?.detail}`);
    const verifyPerSec = Math.round(total / ((performance.now() - verifyStarted) / 1000));
    const archivePath = join(dir, 'archive.twa.gz');
    const archiveStarted = performance.now();
    const written = archiveWholeLedger(path, archivePath);
    const archivePerSec = Math.round(total / ((performance.now() - archiveStarted) / 1000));
    const rehashStarted = performance.now();
    const content = parseArchive(hashFile(archivePath).data);
    const rehash = rehashArchivedRows(content.header.prevChain, 1, content.records);
    if (rehash.problem || rehash.chain !== content.header.chain)
      throw new Error('archive does not re-hash');
    const archiveRehashPerSec = Math.round(total / ((performance.now() - rehashStarted) / 1000));
    const perRecord: Record<string, number> = {};
    for (const s of stat) perRecord[s.name] = Math.round((s.bytes / total) * 10) / 10;
    return {
      records: total,
      batch,
      fileBytes,
      bytesPerRecord: Math.round((fileBytes / total) * 10) / 10,
      perRecord,
      encodePerSec,
      verifyPerSec,
      archiveBytesPerRecord: Math.round((written.bytes / total) * 10) / 10,
      archivePerSec,
      archiveRehashPerSec,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('ledger-disk.js') || process.argv[1]?.endsWith('ledger-disk.ts')) {
  const records = Number(process.argv[2] ?? 100_000);
  for (const batch of (process.argv[3] ?? '1000,10').split(',').map(Number)) {
    process.stdout.write(`${JSON.stringify(ledgerDisk(records, batch))}\n`);
  }
}
