import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  canonicalRecord,
  chainHash,
  leafHash,
  ZERO_HASH,
} from '../../src/audit/canonical.js';
import { SCHEMA_VERSION, migrate } from '../../src/audit/schema.js';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { verifyLedger } from '../../src/audit/verify.js';
import {
  appendRecords,
  buildLedger,
  FakeClock,
  openLedger,
  tempDir,
  verifyBuilt,
} from './helpers.js';

describe('verify: intact ledgers', () => {
  it('passes and summarises records, checkpoints, range and time', async () => {
    const b = buildLedger(200, { checkpointEvery: 50 });
    const r = await verifyBuilt(b);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.records).toBe(201);
    expect(r.range).toEqual({ first: 1, last: 201 });
    expect(r.time?.first).toBeLessThan(r.time?.last ?? 0);
    // start (genesis), 4 x records, shutdown
    expect(r.checkpoints.database).toBe(r.checkpoints.log);
    expect(r.checkpoints.last?.seq).toBe(201);
    expect(r.checkpoints.keyIds).toEqual([b.key.keyId]);
    expect(r.unsealed).toBe(0);
    // The key and log of buildLedger sit beside the database: said, never silently trusted.
    expect(r.anchors.anchored).toBe(false);
    expect(r.anchors.publicKeys).toEqual([
      { keyId: b.key.keyId, source: b.publicKeyPath, besideDatabase: true },
    ]);
    expect(r.warnings).toEqual([expect.stringMatching(/^anchored: false/)]);
  });

  it('reads a v1 ledger (no checkpoints table), then the same file after migration', async () => {
    const dir = tempDir();
    const dbPath = join(dir, 'audit.db');
    const db = new Database(dbPath);
    migrate(db, 1);
    db.prepare("INSERT INTO meta (k, v) VALUES ('ledger_id', 'v1-ledger')").run();
    let chain = ZERO_HASH;
    for (let seq = 1; seq <= 30; seq++) {
      const f = {
        seq,
        time: 1_700_000_000_000 + seq,
        source: seq === 1 ? 'system' : 'redis',
        type: seq === 1 ? 'ledger.genesis' : 'token.written',
        kind: null,
        fingerprint: null,
        attrs: canonicalJson(
          seq === 1 ? { ledgerId: 'v1-ledger', formatVersion: 1, hmacKeyIds: ['k1'] } : { i: seq },
        ),
      };
      const leaf = leafHash(canonicalRecord(f));
      chain = chainHash(chain, leaf);
      db.prepare('INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)').run(
        f.seq,
        f.time,
        f.source,
        f.type,
        f.kind,
        f.fingerprint,
        f.attrs,
        leaf,
        chain,
      );
    }
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    db.close();

    const v1 = await verifyLedger({ dbPath, trusted: [] });
    expect(v1.ok).toBe(true);
    expect(v1.schemaVersion).toBe(1);
    expect(v1.records).toBe(30);
    expect(v1.warnings.join('\n')).toMatch(/without checkpoints/);

    // The new writer migrates it in place and seals it; the v1 records still verify.
    const { ledger, checkpointer, clock } = openLedger(dir, {
      clock: new FakeClock(1_800_000_000_000),
    });
    expect(ledger.ledgerId).toBe('v1-ledger');
    appendRecords(ledger, clock, 20);
    checkpointer.close();
    ledger.close();
    const v2 = await verifyLedger({
      dbPath,
      checkpointLog: join(dir, 'checkpoints.jsonl'),
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    });
    expect(v2.problems).toEqual([]);
    expect(v2.schemaVersion).toBe(SCHEMA_VERSION);
    expect(v2.records).toBe(50);
    expect(v2.checkpoints.last?.seq).toBe(50);
  });

  it('verifies records whose text needs JSON escaping (the JS path) and control characters', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir);
    ledger.append({
      time: clock.now(),
      source: 'admin',
      type: 'odd"type\\x',
      kind: 'k\n1',
      fingerprint: 'fp\u0001',
      attrs: { a: 'é"\\' },
    });
    ledger.append({ time: clock.now(), source: 'admin', type: 'lone\ud800surrogate', attrs: {} });
    appendRecords(ledger, clock, 5);
    checkpointer.close();
    ledger.close();
    const r = await verifyLedger({
      dbPath: join(dir, 'audit.db'),
      checkpointLog: join(dir, 'checkpoints.jsonl'),
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    });
    expect(r.problems).toEqual([]);
    expect(r.records).toBe(8);
  });
});
