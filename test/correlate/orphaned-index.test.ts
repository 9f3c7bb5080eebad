import { describe, expect, it } from 'vitest';
import { Correlator } from '../../src/correlate/index.js';
import { FakeClock, KINDS, fp } from './helpers.js';

const obs = (orphans: number, fingerprints: string[] = []) => ({
  index: 'user_sessions',
  kind: 'session',
  members: 10,
  orphans,
  keysWithOrphans: orphans > 0 ? 1 : 0,
  fingerprints,
});

describe('orphaned_index_entries', () => {
  it('opens once per index, keeps it current, resolves when the index is clean', () => {
    const clock = new FakeClock();
    const c = new Correlator({ kinds: KINDS }, { clock });
    expect(c.onIndexObservations([obs(0)], 1)).toEqual([]);

    const [opened, ...rest] = c.onIndexObservations([obs(2, [fp('a'), fp('b')])], 2);
    expect(rest).toEqual([]);
    expect(opened).toMatchObject({
      rule: 'orphaned_index_entries',
      state: 'opened',
      criteria: ['CC6.2'],
      kind: 'session',
      evidenceSeqs: [2],
    });
    expect(opened?.attributes).toMatchObject({ index: 'user_sessions', orphans: 2 });
    expect(String(opened?.attributes.fingerprints)).toBe(`${fp('a')} ${fp('b')}`);

    clock.t += 1000;
    expect(c.onIndexObservations([obs(3, [fp('a')])], 3)).toEqual([]);
    const open = c.openFindings().filter((f) => f.rule === 'orphaned_index_entries');
    expect(open).toHaveLength(1);
    expect(open[0]?.attributes.orphans).toBe(3);
    expect(open[0]?.evidenceSeqs).toEqual([2, 3]);

    clock.t += 1000;
    const [resolved] = c.onIndexObservations([obs(0)], 4);
    expect(resolved).toMatchObject({ state: 'resolved', id: opened?.id });
    expect(resolved?.attributes).toMatchObject({ orphans: 0, resolution: 'cleaned' });
    expect(c.openFindings()).toEqual([]);
    // Clean again: nothing more to resolve.
    expect(c.onIndexObservations([obs(0)], 5)).toEqual([]);
  });

  it('can be disabled like every rule', () => {
    const c = new Correlator(
      { kinds: KINDS, rules: { orphaned_index_entries: { enabled: false } } },
      { clock: new FakeClock() },
    );
    expect(c.onIndexObservations([obs(5)], 1)).toEqual([]);
  });

  it('resolves a finding restored from a snapshot instead of opening a second one', () => {
    const clock = new FakeClock();
    const before = new Correlator({ kinds: KINDS }, { clock });
    const [opened] = before.onIndexObservations([obs(2, [fp('a')])], 1);
    expect(opened?.state).toBe('opened');
    const raw: unknown = JSON.parse(JSON.stringify(before.snapshot()));
    const after = Correlator.fromSnapshot({ kinds: KINDS }, { clock }, raw);
    clock.t += 1000;
    // Still orphaned after the restart: the restored finding is kept current, not doubled.
    expect(after.onIndexObservations([obs(1, [fp('a')])], 2)).toEqual([]);
    expect(after.openFindings().filter((f) => f.rule === 'orphaned_index_entries')).toHaveLength(1);
    clock.t += 1000;
    const [resolved] = after.onIndexObservations([obs(0)], 3);
    expect(resolved).toMatchObject({ state: 'resolved', id: opened?.id });
    expect(after.openFindings()).toEqual([]);
  });

  it('keeps indexes apart: a clean index resolves nothing of another, or of another rule', () => {
    const clock = new FakeClock();
    const c = new Correlator({ kinds: KINDS }, { clock });
    c.onTokenEvent(
      {
        type: 'written',
        kind: 'session',
        fingerprint: fp('s1'),
        keyAttrs: { sid: fp('s1'), sub: 'alice' },
        node: 'redis-a:6379',
        db: 0,
        observedAt: clock.t,
        redisEvent: 'set',
        dueAt: null,
        ttlMs: null,
      },
      1,
    );
    const [opened] = c.onIndexObservations([obs(2, [fp('a')])], 2);
    const other = { ...obs(0), index: 'client_tokens' };
    expect(c.onIndexObservations([other], 3)).toEqual([]);
    expect(
      c
        .openFindings()
        .map((f) => f.rule)
        .sort(),
    ).toEqual(['orphaned_index_entries', 'token_without_expiry']);
    const [resolved] = c.onIndexObservations([obs(0)], 4);
    expect(resolved).toMatchObject({ id: opened?.id, state: 'resolved' });
    expect(c.openFindings().map((f) => f.rule)).toEqual(['token_without_expiry']);
  });
});
