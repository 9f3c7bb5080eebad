import { describe, expect, it } from 'vitest';
import { Correlator } from '../../src/correlate/index.js';
import { FakeClock, KINDS, World, fp, session } from './helpers.js';

describe('orphaned_index_entries: what it records', () => {
  it('summarises the index, its orphans and keys, and all counts as attributes', () => {
    const c = new Correlator({ kinds: KINDS }, { clock: new FakeClock() });
    const [opened] = c.onIndexObservations(
      [
        {
          index: 'user_sessions',
          kind: 'session',
          members: 10,
          orphans: 3,
          keysWithOrphans: 2,
          fingerprints: [fp('a')],
        },
      ],
      7,
    );
    expect(opened).toMatchObject({
      summary:
        'Index user_sessions lists 3 session id(s) whose token is gone (2 index key(s)): revoked access still referenced.',
      attributes: {
        index: 'user_sessions',
        orphans: 3,
        members: 10,
        keysWithOrphans: 2,
        fingerprints: fp('a'),
      },
    });
    const [resolved] = c.onIndexObservations(
      [
        {
          index: 'user_sessions',
          kind: 'session',
          members: 8,
          orphans: 0,
          keysWithOrphans: 0,
          fingerprints: [],
        },
      ],
      8,
    );
    expect(resolved).toMatchObject({
      summary: `${opened?.summary} Resolved: the index no longer lists gone tokens.`,
      evidenceSeqs: [7, 8],
      attributes: { members: 8, keysWithOrphans: 0, fingerprints: '', resolution: 'cleaned' },
    });
  });

  it('a refused open (rule at its cap) is retried at the next observation', () => {
    const c = new Correlator(
      { kinds: KINDS, limits: { maxOpenFindingsPerRule: 1 } },
      { clock: new FakeClock() },
    );
    const o = (index: string, orphans: number) => ({
      index,
      kind: 'session',
      members: 1,
      orphans,
      keysWithOrphans: orphans,
      fingerprints: [],
    });
    expect(c.onIndexObservations([o('a', 1)])).toHaveLength(1);
    expect(c.onIndexObservations([o('b', 1)])).toEqual([]);
    c.onIndexObservations([o('a', 0)]);
    expect(c.onIndexObservations([o('b', 1)]).map((f) => f.attributes.index)).toEqual(['b']);
  });

  it('does not take another rule’s open finding for its own, nor resolve one dropped from the book', () => {
    const w = new World();
    w.token('evicted', session('s1')); // tokens_evicted stays open
    const o = (orphans: number) => ({
      index: 'user_sessions',
      kind: 'session',
      members: 1,
      orphans,
      keysWithOrphans: orphans,
      fingerprints: [],
    });
    const [opened] = w.c.onIndexObservations([o(1)]);
    expect(opened).toMatchObject({ rule: 'orphaned_index_entries', state: 'opened' });
    w.c.findings.forget(opened?.id as string);
    expect(w.c.onIndexObservations([o(0)])).toEqual([]);
  });
});
