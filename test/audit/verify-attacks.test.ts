import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  checkpointLine,
  checkpointRowValues,
  signCheckpoint,
  type Checkpoint,
} from '../../src/audit/checkpoint.js';
import {
  generateSigningKeyPem,
  loadSigningKey,
  loadTrustedKey,
} from '../../src/audit/signing-keys.js';
import { verifyLedger } from '../../src/audit/verify.js';
import {
  appendRecords,
  buildLedger,
  copyDb,
  fieldsAt,
  openLedger,
  recomputeChain,
  rewriteRecord,
  tamper,
  tempDir,
  verifyBuilt,
} from './helpers.js';

function seqOf(dbPath: string, marker: string): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (
      // Byte search: token records store attrs as a compact BLOB (record-codec.ts).
      (
        db
          .prepare('SELECT seq FROM records WHERE instr(attrs, CAST(? AS BLOB)) > 0')
          .get(marker) as {
          seq: number;
        }
      ).seq
    );
  } finally {
    db.close();
  }
}

/** Seq of the (single) record of `type`. */
function seqOfType(dbPath: string, type: string): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT seq FROM records WHERE type = ?').get(type) as { seq: number }).seq;
  } finally {
    db.close();
  }
}

function logLines(path: string): Checkpoint[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Checkpoint);
}

describe('verify: the attack and fault table (audit-integrity.md)', () => {
  it('edit a row with the trigger dropped → modified at that seq', async () => {
    const b = buildLedger();
    const seq = seqOf(b.dbPath, 'needle-000042');
    tamper(b.dbPath, (db) => {
      rewriteRecord(db, seq, (f) => ({ ...f, attrs: f.attrs.replace('redis-0', 'redis-9') }));
    });
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ class: 'modified', seq });
  });

  it('a field rewritten as its own JSON escape (same bytes when concatenated raw) → modified', async () => {
    // Hashed as "odd\"type" (JSON.stringify of odd"type); stored afterwards as the literal text
    // odd\"type, whose unescaped concatenation would reproduce the hashed bytes exactly.
    const b = buildLedger(5, {
      first: [{ time: 1000, source: 'admin', type: 'odd"type', attrs: { a: 1 } }],
    });
    const seq = seqOfType(b.dbPath, 'odd"type');
    tamper(b.dbPath, (db) => {
      db.prepare("UPDATE records SET type = 'odd\\\"type' WHERE seq = ?").run(seq);
      expect(db.prepare('SELECT type FROM records WHERE seq = ?').get(seq)).toEqual({
        type: 'odd\\"type',
      });
    });
    const r = await verifyBuilt(b);
    expect(r.problems).toEqual([expect.objectContaining({ class: 'modified', seq })]);
  });

  it('a table rebuilt without STRICT, time stored as text that shifts every field along → modified', async () => {
    // The tampered row concatenates to exactly the bytes that were hashed: only the column
    // types give it away.
    const attrs = { k: ['a', 'b', 'c', null, 'd', { z: 1 }] };
    const b = buildLedger(5, {
      first: [{ time: 1000, source: 'admin', type: 'x.y', fingerprint: 'F', attrs }],
    });
    const seq = seqOfType(b.dbPath, 'x.y');
    tamper(b.dbPath, (db) => {
      db.exec(`CREATE TABLE loose (seq INTEGER PRIMARY KEY, time, source, type, kind, fingerprint,
                 attrs, leaf, chain);
               INSERT INTO loose SELECT * FROM records;
               DROP TABLE records;
               ALTER TABLE loose RENAME TO records;`);
      db.prepare(
        `UPDATE records SET time = ?, source = 'b', type = 'c', kind = NULL, fingerprint = 'd',
           attrs = '{"z":1}]}' WHERE seq = ?`,
      ).run('1000,"admin","x.y",null,"F",{"k":["a"', seq);
      const raw = db
        .prepare(
          `SELECT concat('[1,', seq, ',', time, ',', json_quote(source), ',', json_quote(type), ',',
             json_quote(kind), ',', json_quote(fingerprint), ',', attrs, ']') AS c
           FROM records WHERE seq = ?`,
        )
        .get(seq) as { c: string };
      expect(raw.c).toBe(
        `[1,${seq},1000,"admin","x.y",null,"F",{"k":["a","b","c",null,"d",{"z":1}]}]`,
      );
    });
    const r = await verifyBuilt(b);
    expect(r.problems).toEqual([
      expect.objectContaining({ class: 'modified', seq, detail: expect.stringMatching(/type/) }),
    ]);
  });

  it('a row moved to a far-off seq is found in one pass (the scan pages by row, not by seq)', async () => {
    const b = buildLedger(50);
    const far = 10_000_000_000_000;
    tamper(b.dbPath, (db) => {
      db.prepare(
        'INSERT INTO records SELECT ?, time, source, type, kind, fingerprint, attrs, leaf, chain FROM records WHERE seq = 7',
      ).run(far);
    });
    const started = performance.now();
    const r = await verifyBuilt(b, { threads: 1 });
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(r.problems).toEqual(
      expect.arrayContaining([expect.objectContaining({ class: 'missing', toSeq: far - 1 })]),
    );
  });

  it('the UPDATE trigger rejects the edit in the first place', () => {
    const b = buildLedger(10);
    const db = new Database(b.dbPath);
    try {
      expect(() => db.prepare("UPDATE records SET attrs = '{}' WHERE seq = 3").run()).toThrow(
        /append-only/,
      );
    } finally {
      db.close();
    }
  });

  it('edit a row by flipping one byte of the file → modified at that seq', async () => {
    const b = buildLedger();
    const seq = seqOf(b.dbPath, 'needle-000123');
    const copy = join(b.dir, 'flipped.db');
    const bytes = readFileSync(b.dbPath);
    const at = bytes.indexOf('needle-000123');
    expect(at).toBeGreaterThan(0);
    expect(bytes.indexOf('needle-000123', at + 1)).toBe(-1); // the row's only copy in the file
    bytes[at + 7] = 'X'.charCodeAt(0);
    writeFileSync(copy, bytes);
    const r = await verifyBuilt(b, { dbPath: copy });
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ class: 'modified', seq });
  });

  it('delete a middle row → missing at that seq', async () => {
    const b = buildLedger();
    tamper(b.dbPath, (db) => db.prepare('DELETE FROM records WHERE seq = 77').run());
    const r = await verifyBuilt(b);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ class: 'missing', seq: 77, toSeq: 77 });
  });

  it('reorder rows → reordered at the first moved seq', async () => {
    const b = buildLedger();
    tamper(b.dbPath, (db) => {
      db.prepare('UPDATE records SET seq = -seq WHERE seq IN (60, 61)').run();
      db.prepare('UPDATE records SET seq = 61 WHERE seq = -60').run();
      db.prepare('UPDATE records SET seq = 60 WHERE seq = -61').run();
    });
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ class: 'reordered', seq: 60 });
    expect(r.problems.map((p) => p.class)).toEqual(['reordered', 'reordered']);
  });

  it('INSERT OR REPLACE over an old row is rejected by the schema', () => {
    const b = buildLedger(10);
    const db = new Database(b.dbPath);
    try {
      const row = db.prepare('SELECT * FROM records WHERE seq = 5').get() as Record<
        string,
        unknown
      >;
      for (const verb of ['INSERT OR REPLACE', 'REPLACE']) {
        expect(() =>
          db
            .prepare(
              `${verb} INTO records (seq, time, source, type, kind, fingerprint, attrs, leaf, chain) VALUES (?,?,?,?,?,?,?,?,?)`,
            )
            .run(
              5,
              row.time,
              row.source,
              'token.deleted',
              row.kind,
              row.fingerprint,
              row.attrs,
              row.leaf,
              row.chain,
            ),
        ).toThrow(/append-only/);
      }
      expect(fieldsAt(db, 5).type).toBe('token.written');
    } finally {
      db.close();
    }
  });

  it('edit a row and recompute the chain → modified: the signed checkpoint disagrees', async () => {
    const b = buildLedger(200, { checkpointEvery: 50 });
    tamper(b.dbPath, (db) => {
      rewriteRecord(db, 120, (f) => ({ ...f, type: 'token.deleted' }));
      recomputeChain(db, 120);
    });
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    const [first] = r.problems;
    expect(first?.class).toBe('modified');
    // Only the segment since the previous checkpoint can be named: it must contain seq 120.
    expect(first?.seq).toBeLessThanOrEqual(120);
    expect(first?.toSeq).toBeGreaterThanOrEqual(120);
  });

  it('truncate the tail → truncated (a checkpoint covers seqs beyond the database)', async () => {
    const b = buildLedger(200, { checkpointEvery: 50 });
    tamper(b.dbPath, (db) => db.prepare('DELETE FROM records WHERE seq > 150').run());
    const r = await verifyBuilt(b);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ class: 'truncated', seq: 151, toSeq: 201 });
    // The database's own checkpoints show it even without the external log.
    const alone = await verifyBuilt(b, { checkpointLog: undefined });
    expect(alone.problems[0]).toMatchObject({ class: 'truncated', seq: 151 });
  });

  it('truncate the tail and its checkpoints → the external log still shows the cut', async () => {
    const b = buildLedger(200, { checkpointEvery: 50 });
    tamper(b.dbPath, (db) => {
      db.prepare('DELETE FROM records WHERE seq > 150').run();
      db.prepare('DELETE FROM checkpoints WHERE seq > 150').run();
    });
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ class: 'rollback', seq: 151 });
  });

  it('restore an older copy of the database → rollback', async () => {
    const dir = tempDir();
    const first = openLedger(dir, { checkpointEvery: 50 });
    appendRecords(first.ledger, first.clock, 120);
    first.checkpointer.close();
    first.ledger.close();
    const dbPath = join(dir, 'audit.db');
    copyDb(dbPath, join(dir, 'backup.db'));
    const second = openLedger(dir, { checkpointEvery: 50, clock: first.clock });
    appendRecords(second.ledger, second.clock, 120, 120);
    second.checkpointer.close();
    second.ledger.close();
    rmSync(dbPath);
    copyDb(join(dir, 'backup.db'), dbPath);
    const r = await verifyLedger({
      dbPath,
      checkpointLog: join(dir, 'checkpoints.jsonl'),
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    });
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ class: 'rollback', seq: 122 });
  });

  it('forged checkpoint in the log → bad_signature', async () => {
    const b = buildLedger(100, { checkpointEvery: 50 });
    const lines = logLines(b.logPath);
    const last = lines.at(-1)!;
    // Claims more records than exist, reusing a real signature: the claim does not verify.
    appendFileSync(
      b.logPath,
      checkpointLine({ ...last, n: last.n + 1, seq: last.seq + 500, prev: last.sig }),
    );
    const r = await verifyBuilt(b);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ class: 'bad_signature', checkpoint: last.n + 1 });
  });

  it('forged checkpoint in the database (chain recomputed, checkpoint edited) → bad_signature', async () => {
    const b = buildLedger(100, { checkpointEvery: 50 });
    tamper(b.dbPath, (db) => {
      rewriteRecord(db, 30, (f) => ({ ...f, type: 'token.deleted' }));
      recomputeChain(db, 30);
      const head = db.prepare('SELECT seq, chain FROM records ORDER BY seq DESC LIMIT 1').get() as {
        seq: number;
        chain: Buffer;
      };
      db.prepare('UPDATE checkpoints SET chain = ? WHERE seq = ?').run(head.chain, head.seq);
    });
    const r = await verifyBuilt(b, { checkpointLog: undefined });
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.class)).toContain('bad_signature');
  });

  it('checkpoints signed by an untrusted key → unknown_key', async () => {
    const b = buildLedger(100, { checkpointEvery: 50 });
    const dir = tempDir();
    const pem = generateSigningKeyPem();
    writeFileSync(join(dir, 'evil.key'), pem.privatePem);
    const evil = loadSigningKey(join(dir, 'evil.key'));
    // The attacker rewrites history and re-signs it with their own key.
    let replacement: Checkpoint | undefined;
    tamper(b.dbPath, (db) => {
      rewriteRecord(db, 30, (f) => ({ ...f, type: 'token.deleted' }));
      recomputeChain(db, 30);
      const head = db.prepare('SELECT seq, chain FROM records ORDER BY seq DESC LIMIT 1').get() as {
        seq: number;
        chain: Buffer;
      };
      const last = db.prepare('SELECT n, sig FROM checkpoints ORDER BY n DESC LIMIT 1').get() as {
        n: number;
        sig: Buffer;
      };
      const ledgerId = (
        db.prepare("SELECT v FROM meta WHERE k = 'ledger_id'").get() as { v: string }
      ).v;
      replacement = signCheckpoint(
        {
          ledgerId,
          n: last.n + 1,
          seq: head.seq,
          chain: head.chain.toString('hex'),
          time: Date.now(),
          reason: 'interval',
          prev: last.sig.toString('base64'),
        },
        evil,
      );
      db.prepare(
        'INSERT INTO checkpoints (n, seq, chain, time, reason, key_id, prev, sig, retention_days) VALUES (?,?,?,?,?,?,?,?,?)',
      ).run(...checkpointRowValues(replacement));
    });
    appendFileSync(b.logPath, checkpointLine(replacement!));
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    const unknown = r.problems.find((p) => p.class === 'unknown_key');
    expect(unknown).toMatchObject({ checkpoint: replacement!.n });
    expect(unknown?.detail).toContain(evil.keyId);
    // Without any trusted key, every checkpoint is unverifiable: never a silent pass.
    const untrusted = await verifyBuilt(buildLedger(10), { trusted: [] });
    expect(untrusted.problems.map((p) => p.class)).toEqual(['unknown_key']);
  });

  it('a database replaced by a fresh one → rollback (the log names another ledger)', async () => {
    const b = buildLedger(20);
    rmSync(b.dbPath);
    const other = buildLedger(5);
    const r = await verifyBuilt(b, {
      dbPath: other.dbPath,
      trusted: [...b.trusted, ...other.trusted],
    });
    expect(r.problems[0]).toMatchObject({ class: 'rollback', seq: 1 });
  });

  it('clock jumping backwards: seq stays authoritative, the jump is flagged, verify passes', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir);
    appendRecords(ledger, clock, 10);
    clock.advance(-3_600_000); // NTP step back one hour
    appendRecords(ledger, clock, 10, 10);
    checkpointer.close();
    ledger.close();
    const r = await verifyLedger({
      dbPath: join(dir, 'audit.db'),
      checkpointLog: join(dir, 'checkpoints.jsonl'),
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    });
    expect(r.ok).toBe(true);
    expect(r.clock.flagged).toBe(1);
    expect(r.clock.regressions).toBeGreaterThanOrEqual(1);
    const db = new Database(join(dir, 'audit.db'), { readonly: true });
    const flag = db
      .prepare("SELECT seq, attrs FROM records WHERE type = 'audit.clock_skew'")
      .get() as { seq: number; attrs: string };
    db.close();
    expect(JSON.parse(flag.attrs)).toMatchObject({ backwardsMs: expect.any(Number) as number });
    expect(JSON.parse(flag.attrs).backwardsMs).toBeGreaterThan(3_500_000);
  });

  it('a middle checkpoint removed from both the database and the log → missing', async () => {
    const b = buildLedger(100, { checkpointEvery: 20 }); // #1 start, #2 records, #3 shutdown
    tamper(b.dbPath, (db) => db.prepare('DELETE FROM checkpoints WHERE n = 2').run());
    const kept = readFileSync(b.logPath, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && (JSON.parse(l) as Checkpoint).n !== 2);
    writeFileSync(b.logPath, kept.map((l) => `${l}\n`).join(''));
    const r = await verifyBuilt(b);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ class: 'missing', checkpoint: 2 });
  });

  it('a torn last line in the log (crash mid-append) is a warning, not damage', async () => {
    const b = buildLedger(30);
    appendFileSync(b.logPath, '{"v":1,"ledgerId":"');
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/torn last line/);
  });
});
