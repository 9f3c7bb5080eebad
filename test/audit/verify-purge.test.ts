import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../src/audit/checkpoint.js';
import { DAY_MS } from '../../src/audit/retention.js';
import { checkPurge, type PurgeCheckInput } from '../../src/audit/verify-purge.js';

// checkPurge on hand-made inputs: which rule of a retention purge fails, and what it says.
const T0 = Date.UTC(2026, 0, 1);
const CHAIN = 'a'.repeat(64);

function cp(n: number, seq: number, time: number, extra: Partial<Checkpoint> = {}): Checkpoint {
  return {
    ledgerId: 'L',
    n,
    seq,
    chain: seq === 100 ? CHAIN : 'b'.repeat(64),
    time,
    reason: 'records',
    keyId: 'k',
    prev: null,
    sig: 'sig',
    ...extra,
  };
}

/** A purge of 1..100 at seq 150, 40 days after checkpoint #1 (seq 100) was signed, under 30 days. */
function input(over: Partial<PurgeCheckInput> = {}): PurgeCheckInput {
  return {
    purge: { seq: 150, time: T0 + 40 * DAY_MS, fromSeq: 1, toSeq: 100, chain: CHAIN },
    valid: [
      cp(0, 1, T0 - 1, { retentionDays: 30 }),
      cp(1, 100, T0, { retentionDays: 30 }),
      cp(2, 200, T0 + 41 * DAY_MS, { retentionDays: 30 }),
    ],
    logged: new Set([0, 1, 2]),
    signedUpTo: 200,
    ...over,
  };
}

describe('checkPurge', () => {
  it('accepts a signed, logged purge of records older than the signed retention', () => {
    expect(checkPurge(input())).toEqual({ problems: [], warnings: [], retentionDays: 30 });
  });

  it('a purge record beyond every signature → forged_purge over the pruned range', () => {
    const r = checkPurge(input({ signedUpTo: 149 }));
    expect(r.problems).toEqual([
      {
        class: 'forged_purge',
        seq: 1,
        toSeq: 100,
        detail:
          'audit.retention_purge record 150 (seq 1..100): no checkpoint or batch seal signs it (signatures reach seq 149): it was not written by the ledger',
      },
    ]);
  });

  it('a purge record exactly at the signed end is covered', () => {
    expect(checkPurge(input({ signedUpTo: 150 })).problems).toEqual([]);
  });

  it('a pruned range that does not end at a signed checkpoint → forged_purge, no retention read', () => {
    const base = input();
    const r = checkPurge({ ...base, purge: { ...base.purge, toSeq: 99 } });
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]?.class).toBe('forged_purge');
    expect(r.problems[0]?.toSeq).toBe(99);
    expect(r.problems[0]?.detail).toContain(
      'no signed checkpoint at seq 99: the pruned range does not end at one',
    );
    expect(r.retentionDays).toBeNull();
    expect(r.warnings).toEqual([]);
  });

  it('a chain other than the one the checkpoint signs → forged_purge', () => {
    const base = input();
    const r = checkPurge({ ...base, purge: { ...base.purge, chain: 'c'.repeat(64) } });
    expect(r.problems.map((p) => p.detail)).toEqual([
      'audit.retention_purge record 150 (seq 1..100): the chain it states for seq 100 is not the one the checkpoint signs',
    ]);
    expect(r.retentionDays).toBeNull();
  });

  it('one of two checkpoints at the pruned end with another chain → forged_purge', () => {
    const base = input();
    const other = cp(9, 100, T0, { chain: 'd'.repeat(64), retentionDays: 30 });
    const r = checkPurge({ ...base, valid: [...base.valid, other] });
    expect(r.problems.map((p) => p.class)).toEqual(['forged_purge']);
    expect(r.problems[0]?.detail).toMatch(/is not the one the checkpoint signs/);
  });

  it('the sealing checkpoint missing from the external log → forged_purge naming it', () => {
    const r = checkPurge(input({ logged: new Set([0, 2]) }));
    expect(r.problems.map((p) => p.detail)).toEqual([
      'audit.retention_purge record 150 (seq 1..100): checkpoint #1 at seq 100 is not in the external checkpoint log',
    ]);
  });

  it('no external log: a warning naming the checkpoint, not damage', () => {
    const r = checkPurge(input({ logged: null }));
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([
      'retention purge record 150: no external checkpoint log given, so whether checkpoint #1 was published cannot be checked',
    ]);
    expect(r.retentionDays).toBe(30);
  });

  it('records sealed less than the signed retention before the purge → forged_purge', () => {
    const base = input();
    const r = checkPurge({ ...base, purge: { ...base.purge, time: T0 + 20 * DAY_MS } });
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]?.detail).toBe(
      `audit.retention_purge record 150 (seq 1..100): the pruned records were sealed at ${new Date(T0).toISOString()}, less than the signed retention of 30 days (checkpoint #1) before the purge at ${new Date(T0 + 20 * DAY_MS).toISOString()}`,
    );
    expect(r.retentionDays).toBe(30);
  });

  it('the age bound is strict: sealed exactly the retention before the purge → forged_purge', () => {
    const base = input();
    const exact = checkPurge({ ...base, purge: { ...base.purge, time: T0 + 30 * DAY_MS } });
    expect(exact.problems.map((p) => p.class)).toEqual(['forged_purge']);
    const older = checkPurge({ ...base, purge: { ...base.purge, time: T0 + 30 * DAY_MS + 1 } });
    expect(older.problems).toEqual([]);
  });

  it('the age is taken from the earliest checkpoint at the pruned end', () => {
    const base = input();
    // A second checkpoint at seq 100 signed later (same chain): the first signing time counts.
    const later = cp(5, 100, T0 + 15 * DAY_MS, { retentionDays: 30 });
    const r = checkPurge({ ...base, valid: [later, ...base.valid] });
    expect(r.problems).toEqual([]);
  });

  it('the retention is the newest stated before the purge record, never one signed after it', () => {
    const base = input();
    // #2 (seq 120, before the purge at 150) says 60 days; #3 at seq 200 (after it) says 1 day.
    const valid = [
      cp(0, 1, T0 - 1, { retentionDays: 1 }),
      cp(1, 100, T0, { retentionDays: 1 }),
      cp(2, 120, T0 + DAY_MS, { retentionDays: 60 }),
      cp(3, 200, T0 + 41 * DAY_MS, { retentionDays: 1 }),
    ];
    const r = checkPurge({ ...base, valid, logged: new Set([0, 1, 2, 3]) });
    expect(r.retentionDays).toBe(60);
    expect(r.problems.map((p) => p.detail)).toEqual([
      expect.stringContaining('less than the signed retention of 60 days (checkpoint #2)'),
    ]);
    // Listed out of order: the highest number wins, not the last in the list.
    const shuffled = checkPurge({
      ...base,
      valid: [valid[2], valid[0], valid[1], valid[3]] as Checkpoint[],
      logged: new Set([0, 1, 2, 3]),
    });
    expect(shuffled.retentionDays).toBe(60);
    // A checkpoint exactly at the purge record's seq is not before it.
    const atPurge = [...valid.slice(0, 2), cp(4, 150, T0 + 2 * DAY_MS, { retentionDays: 90 })];
    expect(checkPurge({ ...base, valid: atPurge, logged: new Set([0, 1, 4]) }).retentionDays).toBe(
      1,
    );
  });

  it('checkpoints stating a retention, none before the purge → forged_purge', () => {
    const base = input();
    const valid = [cp(1, 100, T0), cp(2, 200, T0 + 41 * DAY_MS, { retentionDays: 30 })];
    const r = checkPurge({ ...base, valid, logged: new Set([1, 2]) });
    expect(r.problems.map((p) => p.detail)).toEqual([
      'audit.retention_purge record 150 (seq 1..100): no checkpoint signed before it states the retention the ledger ran under',
    ]);
    expect(r.retentionDays).toBeNull();
  });

  it('no checkpoint states a retention (pre-v3 ledger) → a warning, the age not checked', () => {
    const base = input();
    const valid = [cp(1, 100, T0), cp(2, 200, T0 + DAY_MS)];
    const r = checkPurge({
      ...base,
      purge: { ...base.purge, time: T0 + 1 },
      valid,
      logged: new Set([1, 2]),
    });
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([
      'retention purge record 150: no checkpoint states a signed retention (ledger written before schema v3); the age of the pruned records is not checked',
    ]);
    expect(r.retentionDays).toBeNull();
  });

  it('several rules failing at once are each reported', () => {
    const r = checkPurge(input({ signedUpTo: 10, logged: new Set() }));
    expect(r.problems.map((p) => p.detail)).toEqual([
      expect.stringContaining('no checkpoint or batch seal signs it'),
      expect.stringContaining('is not in the external checkpoint log'),
    ]);
  });
});
