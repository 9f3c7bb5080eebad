import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signCheckpoint, type Checkpoint } from '../../src/audit/checkpoint.js';
import { keyIdOf, type SigningKey, type TrustedKey } from '../../src/audit/signing-keys.js';
import { analyzeCheckpoints, type CheckpointInput } from '../../src/audit/verify-checkpoints.js';

// analyzeCheckpoints on hand-signed checkpoints: which finding each fault gives, at which seq.
function newKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}
const KEY = newKey();
const OTHER = newKey();
const trusted = (k: SigningKey): TrustedKey => ({
  keyId: k.keyId,
  publicKey: k.publicKey,
  source: 'x',
});

const chainAt = (seq: number, fork = ''): string =>
  (fork + seq.toString(16)).padStart(64, fork ? 'f' : '0');

/** Checkpoints #1..#count at seq 10, 20, ..., each linked to the previous signature. */
function signedChain(count: number, key = KEY, ledgerId = 'L', fork = ''): Checkpoint[] {
  const out: Checkpoint[] = [];
  for (let n = 1; n <= count; n++) {
    out.push(
      signCheckpoint(
        {
          ledgerId,
          n,
          seq: n * 10,
          chain: chainAt(n * 10, fork),
          time: 1_000 + n,
          reason: 'records',
          prev: out.at(-1)?.sig ?? null,
        },
        key,
      ),
    );
  }
  return out;
}

function run(over: Partial<CheckpointInput>) {
  return analyzeCheckpoints({
    ledgerId: 'L',
    database: [],
    databaseMalformed: [],
    log: null,
    trusted: [trusted(KEY)],
    firstSeq: 1,
    maxSeq: 50,
    ...over,
  });
}

describe('analyzeCheckpoints', () => {
  it('an intact chain in the database and the log: no finding, merged in order', () => {
    const cps = signedChain(5);
    const r = run({ database: cps, log: [...cps].reverse() });
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.valid.map((c) => c.n)).toEqual([1, 2, 3, 4, 5]);
    expect(r.keyIds).toEqual([KEY.keyId]);
    expect([...(r.logged ?? [])].sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('without a log: logged is null and the database copies are valid', () => {
    const r = run({ database: signedChain(3) });
    expect(r.logged).toBeNull();
    expect(r.valid.map((c) => c.seq)).toEqual([10, 20, 30]);
    expect(r.problems).toEqual([]);
  });

  it('a malformed database row → bad_signature at its seq and number', () => {
    const r = run({
      database: signedChain(2),
      databaseMalformed: [{ n: 3, seq: 30, message: 'bad chain' }],
      maxSeq: 30,
    });
    expect(r.problems).toEqual([
      {
        class: 'bad_signature',
        seq: 30,
        checkpoint: 3,
        detail: 'checkpoint #3 in the database is malformed: bad chain',
      },
    ]);
  });

  it('a log of another ledger only → rollback at seq 1 naming both ledgers', () => {
    const r = run({ database: signedChain(2), log: signedChain(2, KEY, 'M') });
    expect(r.problems).toEqual([
      {
        class: 'rollback',
        seq: 1,
        detail:
          'the checkpoint log belongs to ledger M, the database is ledger L: the database was replaced',
      },
    ]);
    expect([...(r.logged ?? [])]).toEqual([]);
  });

  it("another ledger's lines beside this ledger's: a warning, and they are ignored", () => {
    const mine = signedChain(2);
    const r = run({ database: mine, log: [...mine, ...signedChain(4, KEY, 'M')] });
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([
      'checkpoint log also holds checkpoints of other ledgers (M); ignored',
    ]);
    expect([...(r.logged ?? [])].sort()).toEqual([1, 2]);
  });

  it('a database without a ledger id takes the log as it is', () => {
    const r = run({
      ledgerId: null,
      database: signedChain(2, KEY, 'M'),
      log: signedChain(2, KEY, 'M'),
    });
    expect(r.problems).toEqual([]);
    expect(r.valid.map((c) => c.ledgerId)).toEqual(['M', 'M']);
  });

  it('an altered checkpoint → bad_signature saying where it was found', () => {
    const cps = signedChain(3);
    const edited = { ...cps[1], chain: chainAt(99) } as Checkpoint;
    const inDb = run({ database: [cps[0], edited, cps[2]] as Checkpoint[] });
    expect(inDb.problems).toEqual([
      {
        class: 'bad_signature',
        seq: 20,
        checkpoint: 2,
        detail: `checkpoint #2 (seq 20) in the database does not verify under key ${KEY.keyId}`,
      },
    ]);
    expect(inDb.valid.map((c) => c.n)).toEqual([1, 3]);
    const inLog = run({ database: cps, log: [cps[0], edited] as Checkpoint[] });
    expect(inLog.problems.map((p) => p.detail)).toEqual([
      `checkpoint #2 (seq 20) in the checkpoint log does not verify under key ${KEY.keyId}`,
    ]);
    expect([...(inLog.logged ?? [])]).toEqual([1]);
  });

  it('the same forged checkpoint in the database and the log is reported in both places', () => {
    const cps = signedChain(2);
    const edited = { ...cps[1], seq: 25 } as Checkpoint;
    const r = run({
      database: [cps[0], edited] as Checkpoint[],
      log: [cps[0], edited] as Checkpoint[],
    });
    expect(r.problems.map((p) => p.detail)).toEqual([
      expect.stringContaining('in the database does not verify'),
      expect.stringContaining('in the checkpoint log does not verify'),
    ]);
  });

  it('checkpoints of an untrusted key → one unknown_key from the first of them', () => {
    const r = run({ database: signedChain(3, OTHER) });
    expect(r.problems).toEqual([
      {
        class: 'unknown_key',
        seq: 10,
        checkpoint: 1,
        detail: `3 checkpoint(s) from #1 are signed by key ${OTHER.keyId}, which is not trusted`,
      },
    ]);
    expect(r.valid).toEqual([]);
    expect(r.keyIds).toEqual([]);
  });

  it('with no trusted key at all the finding says no --public-key was given', () => {
    const r = run({ database: signedChain(2), trusted: [] });
    expect(r.problems.map((p) => p.detail)).toEqual([
      `2 checkpoint(s) from #1 are signed by key ${KEY.keyId}, which is not trusted (no --public-key given)`,
    ]);
  });

  it('two different checkpoints with one number in the log → bad_signature', () => {
    const cps = signedChain(2);
    const twin = signedChain(2, KEY, 'L', 'e')[1] as Checkpoint;
    const r = run({ database: cps, log: [...cps, twin], maxSeq: 20 });
    expect(r.problems).toContainEqual({
      class: 'bad_signature',
      seq: 20,
      checkpoint: 2,
      detail: 'the checkpoint log holds two different checkpoints #2',
    });
    // The first copy stands; an identical repeat is not a finding.
    expect(r.valid[1]?.sig).toBe(cps[1]?.sig);
    expect(
      run({ database: cps, log: [...cps, cps[1] as Checkpoint], maxSeq: 20 }).problems,
    ).toEqual([]);
  });

  it('the database and the log disagreeing on a number → rollback (fork), the log wins', () => {
    const db = signedChain(2);
    const forked = signCheckpoint(
      {
        ledgerId: 'L',
        n: 2,
        seq: 15,
        chain: chainAt(15),
        time: 5,
        reason: 'records',
        prev: db[0]?.sig ?? null,
      },
      KEY,
    );
    const r = run({ database: db, log: [db[0] as Checkpoint, forked] });
    expect(r.problems).toEqual([
      {
        class: 'rollback',
        seq: 15,
        checkpoint: 2,
        detail:
          'checkpoint #2 in the database (seq 20) differs from #2 in the checkpoint log (seq 15): the database was replaced by a copy that forked',
      },
    ]);
    expect(r.valid[1]?.seq).toBe(15);
  });

  it('checkpoints absent from both → missing, counting only the truly absent ones', () => {
    const cps = signedChain(6);
    const r = run({ database: [cps[0], cps[4], cps[5]] as Checkpoint[], maxSeq: 60 });
    expect(r.problems).toEqual([
      {
        class: 'missing',
        seq: 50,
        checkpoint: 2,
        detail: '3 checkpoint(s) between #1 and #5 are in neither the database nor the log',
      },
    ]);
  });

  it('numbers present but not authentic are not counted as missing', () => {
    const cps = signedChain(5);
    const bad = { ...cps[1], chain: chainAt(7) } as Checkpoint;
    const r = run({
      database: [cps[0], bad, cps[4]] as Checkpoint[],
      databaseMalformed: [{ n: 4, seq: 40, message: 'x' }],
    });
    // #2 does not verify, #4 is malformed: only #3 is absent, and the first absent is #3.
    expect(r.problems.filter((p) => p.class === 'missing')).toEqual([
      {
        class: 'missing',
        seq: 50,
        checkpoint: 3,
        detail: '1 checkpoint(s) between #1 and #5 are in neither the database nor the log',
      },
    ]);
    // Every number between present (in some form): no missing finding at all.
    const r2 = run({
      database: [cps[0], bad, cps[4]] as Checkpoint[],
      databaseMalformed: [
        { n: 3, seq: 30, message: 'x' },
        { n: 4, seq: 40, message: 'x' },
      ],
    });
    expect(r2.problems.filter((p) => p.class === 'missing')).toEqual([]);
  });

  it('a gap before the first checkpoint is missing too', () => {
    const cps = signedChain(3);
    const r = run({ database: [cps[2]] as Checkpoint[] });
    expect(r.problems).toEqual([
      {
        class: 'missing',
        seq: 30,
        checkpoint: 1,
        detail: '2 checkpoint(s) between #0 and #3 are in neither the database nor the log',
      },
    ]);
  });

  it('a checkpoint not linked to the previous signature → bad_signature', () => {
    const cps = signedChain(2);
    const unlinked = signCheckpoint(
      {
        ledgerId: 'L',
        n: 3,
        seq: 30,
        chain: chainAt(30),
        time: 9,
        reason: 'records',
        prev: cps[0]?.sig ?? null,
      },
      KEY,
    );
    const r = run({ database: [...cps, unlinked] });
    expect(r.problems).toEqual([
      {
        class: 'bad_signature',
        seq: 30,
        checkpoint: 3,
        detail: 'checkpoint #3 does not link to the signature of checkpoint #2',
      },
    ]);
    // The first checkpoint must have no prev.
    const first = signCheckpoint(
      { ledgerId: 'L', n: 1, seq: 10, chain: chainAt(10), time: 9, reason: 'records', prev: 'x' },
      KEY,
    );
    expect(run({ database: [first] }).problems.map((p) => p.detail)).toEqual([
      'checkpoint #1 does not link to the signature of checkpoint #0',
    ]);
  });

  it('a checkpoint covering less than the previous one → bad_signature', () => {
    const cps = signedChain(1);
    const back = signCheckpoint(
      {
        ledgerId: 'L',
        n: 2,
        seq: 5,
        chain: chainAt(5),
        time: 9,
        reason: 'records',
        prev: cps[0]?.sig ?? null,
      },
      KEY,
    );
    const r = run({ database: [...cps, back] });
    expect(r.problems).toEqual([
      {
        class: 'bad_signature',
        seq: 5,
        checkpoint: 2,
        detail: 'checkpoint #2 covers seq 5, less than #1 (seq 10)',
      },
    ]);
    // Equal seq with the same chain (a heartbeat) is fine.
    const same = signCheckpoint(
      {
        ledgerId: 'L',
        n: 2,
        seq: 10,
        chain: chainAt(10),
        time: 9,
        reason: 'heartbeat',
        prev: cps[0]?.sig ?? null,
      },
      KEY,
    );
    expect(run({ database: [...cps, same] }).problems).toEqual([]);
  });

  it('two checkpoints signing different chains for one seq → rollback (fork)', () => {
    const cps = signedChain(1);
    const fork = signCheckpoint(
      {
        ledgerId: 'L',
        n: 2,
        seq: 10,
        chain: chainAt(10, 'e'),
        time: 9,
        reason: 'records',
        prev: cps[0]?.sig ?? null,
      },
      KEY,
    );
    const r = run({ database: [...cps, fork] });
    expect(r.problems).toEqual([
      {
        class: 'rollback',
        seq: 10,
        checkpoint: 2,
        detail: 'checkpoints #1 and #2 sign different chains for seq 10: the ledger forked',
      },
    ]);
  });

  it('a log reaching past the database’s newest checkpoint → rollback after its end', () => {
    const cps = signedChain(4);
    const r = run({ database: cps.slice(0, 2), log: cps, maxSeq: 25 });
    expect(r.problems).toEqual([
      {
        class: 'rollback',
        seq: 26,
        checkpoint: 4,
        detail:
          'the database is older than the checkpoint log: it ends at seq 25 with checkpoint #2, the log reaches checkpoint #4 at seq 40',
      },
    ]);
  });

  it('a log no newer than the database: no rollback', () => {
    const cps = signedChain(4);
    expect(run({ database: cps, log: cps.slice(0, 3), maxSeq: 40 }).problems).toEqual([]);
  });

  it('a checkpoint beyond the end of the database → truncated up to the farthest one', () => {
    const cps = signedChain(4);
    const r = run({ database: cps, maxSeq: 25 });
    expect(r.problems).toEqual([
      {
        class: 'truncated',
        seq: 26,
        toSeq: 40,
        checkpoint: 4,
        detail:
          'checkpoint #4 covers seq 40 but the database ends at seq 25: 15 record(s) were cut from the tail',
      },
    ]);
    // Ending exactly at a checkpoint is not a cut.
    expect(run({ database: cps, maxSeq: 40 }).problems).toEqual([]);
  });

  it('keyIds lists each signing key once', () => {
    const a = signedChain(2);
    const b = signCheckpoint(
      {
        ledgerId: 'L',
        n: 3,
        seq: 30,
        chain: chainAt(30),
        time: 9,
        reason: 'records',
        prev: a[1]?.sig ?? null,
      },
      OTHER,
    );
    const r = run({ database: [...a, b], trusted: [trusted(KEY), trusted(OTHER)] });
    expect(r.problems).toEqual([]);
    expect(r.keyIds).toEqual([KEY.keyId, OTHER.keyId]);
  });

  it('names every other ledger in the log, in both the rollback and the warning', () => {
    const others = [...signedChain(1, KEY, 'M'), ...signedChain(1, KEY, 'N')];
    expect(run({ database: signedChain(1), log: others }).problems[0]?.detail).toBe(
      'the checkpoint log belongs to ledger M, N, the database is ledger L: the database was replaced',
    );
    const mine = signedChain(1);
    expect(run({ database: mine, log: [...mine, ...others] }).warnings).toEqual([
      'checkpoint log also holds checkpoints of other ledgers (M, N); ignored',
    ]);
  });

  it('orders checkpoints by number whatever order the database and the log list them in', () => {
    const cps = signedChain(4);
    const shuffled = [cps[2], cps[0], cps[3], cps[1]] as Checkpoint[];
    const r = run({ database: shuffled.slice(0, 2).concat(shuffled.slice(3)), log: shuffled });
    expect(r.valid.map((c) => c.n)).toEqual([1, 2, 3, 4]);
    // The log's newest (#4) is beyond the database's (#3): named as the log's reach.
    expect(r.problems).toEqual([expect.objectContaining({ class: 'rollback', checkpoint: 4 })]);
    expect(r.problems[0]?.detail).toMatch(
      /with checkpoint #3, the log reaches checkpoint #4 at seq 40$/,
    );
  });
});
