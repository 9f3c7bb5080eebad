import { describe, expect, it } from 'vitest';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { UnownedPrelude } from '../../src/keyspace/unowned-prelude.js';

const T0 = 1_800_000_000_000;

function ev(n: number, at = T0): TokenEvent {
  return {
    type: 'deleted',
    kind: 'access_token',
    fingerprint: `fp-${n}`,
    keyAttrs: {},
    node: 'redis:7000',
    db: 0,
    observedAt: at,
    redisEvent: 'del',
  };
}

const fps = (events: TokenEvent[]): string[] => events.map((e) => e.fingerprint);

describe('UnownedPrelude', () => {
  it('keeps every event of a node nobody owns, in order, and hands them over once', () => {
    const p = new UnownedPrelude({ maxEvents: 10, maxAgeMs: 60_000, now: () => T0 });
    for (let i = 0; i < 3; i++) p.push(ev(i));
    expect(p.depth).toBe(3);
    const r = p.take();
    expect(r).toMatchObject({ complete: true, owned: false });
    expect(fps(r.events)).toEqual(['fp-0', 'fp-1', 'fp-2']);
    // Taken: the node is owned from now on, nothing more is collected.
    p.push(ev(3));
    expect(p.take()).toEqual({ events: [], complete: true, owned: true });
  });

  it('stops collecting at a marker of the node (its owner records) and hands nothing over', () => {
    const p = new UnownedPrelude({ maxEvents: 10, maxAgeMs: 60_000, now: () => T0 });
    p.push(ev(0));
    p.markerSeen();
    p.push(ev(1));
    expect(p.take()).toEqual({ events: [], complete: true, owned: true });
  });

  it('is bounded in count and age; what it dropped makes it incomplete (a gap, never silent)', () => {
    let now = T0;
    const p = new UnownedPrelude({ maxEvents: 3, maxAgeMs: 1000, now: () => now });
    for (let i = 0; i < 5; i++) p.push(ev(i, now));
    expect(p.depth).toBe(3);
    let r = p.take();
    expect(r.complete).toBe(false);
    expect(fps(r.events)).toEqual(['fp-2', 'fp-3', 'fp-4']);

    const q = new UnownedPrelude({ maxEvents: 3000, maxAgeMs: 1000, now: () => now });
    for (let i = 0; i < 2000; i++) q.push(ev(i, now));
    now += 1001;
    q.push(ev(2000, now));
    r = q.take();
    expect(r.complete).toBe(false);
    expect(fps(r.events)).toEqual(['fp-2000']);
  });
});
