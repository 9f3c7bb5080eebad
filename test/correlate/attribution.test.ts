import { describe, expect, it } from 'vitest';
import type { KindRule } from '../../src/correlate/options.js';
import { KINDS, T0, World, access, fp, rules } from './helpers.js';

const REQUIRED: KindRule[] = KINDS.map((k) =>
  k.kind === 'access_token' ? { ...k, requireProviderEvent: true } : k,
);

describe('unattributed_token', () => {
  it('opens at write + window when no issuance explains the write, resolves on a late issuance', () => {
    const w = new World({ kinds: REQUIRED });
    w.token('written', access('j1'));
    expect(w.advance(29_000)).toEqual([]);
    const [opened] = w.advance(1000);
    expect(opened).toMatchObject({
      rule: 'unattributed_token',
      state: 'opened',
      severity: 'medium',
      criteria: ['CC6.2', 'CC7.2'],
      fingerprint: fp('j1'),
      subject: 'alice',
      evidenceSeqs: [1],
      attributes: { writtenAt: T0, windowSeconds: 30 },
    });
    // The issuance arrives very late but happened next to the write.
    const [resolved] = w.provider('token_issued', { tokenIds: [fp('j1')], occurredAt: T0 + 1000 });
    expect(resolved).toMatchObject({
      id: opened?.id,
      state: 'resolved',
      attributes: { resolution: 'attributed_late' },
    });
  });

  it('is satisfied by an issuance before the write', () => {
    const w = new World({ kinds: REQUIRED });
    w.provider('token_issued', { tokenIds: [fp('j1')] });
    w.advance(2000);
    w.token('written', access('j1'));
    expect(w.advance(60_000)).toEqual([]);
  });

  it('is satisfied by an issuance arriving after the write but within the window', () => {
    const w = new World({ kinds: REQUIRED });
    w.token('written', access('j1'));
    w.advance(10_000);
    w.provider('token_refreshed', { rotation: { previous: [fp('j0')], next: [fp('j1')] } });
    expect(w.advance(60_000)).toEqual([]);
  });

  it('joins on (subject, client) when the provider names no token id', () => {
    const w = new World({ kinds: REQUIRED });
    w.provider('session_started', { subject: 'alice', clientId: 'web' });
    w.token('written', access('j1', 'alice', 'web'));
    w.token('written', access('j2', 'alice', 'cli'));
    const out = w.advance(31_000);
    expect(out.map((f) => f.fingerprint)).toEqual([fp('j2')]);
  });

  it('does not accept an issuance outside the window', () => {
    const w = new World({ kinds: REQUIRED });
    w.provider('token_issued', { tokenIds: [fp('j1')] });
    w.advance(40_000);
    w.token('written', access('j1'));
    expect(rules(w.advance(30_000))).toEqual(['unattributed_token:opened']);
  });

  it('ignores failed issuances', () => {
    const w = new World({ kinds: REQUIRED });
    w.provider('token_issued', { tokenIds: [fp('j1')], outcome: 'failure' });
    w.token('written', access('j1'));
    expect(rules(w.advance(30_000))).toEqual(['unattributed_token:opened']);
  });

  it('still reports a token that left before its judgement, opened and resolved together', () => {
    const w = new World({ kinds: REQUIRED });
    w.token('written', access('j1'));
    w.advance(5000);
    w.token('deleted', access('j1'));
    const out = w.advance(25_000);
    expect(rules(out)).toEqual(['unattributed_token:opened', 'unattributed_token:resolved']);
    expect(out[1]?.attributes.resolution).toBe('left_redis');
  });

  it('resolves when the unattributed token leaves Redis', () => {
    const w = new World({ kinds: REQUIRED });
    w.token('written', access('j1'));
    w.advance(30_000);
    expect(rules(w.token('expired', access('j1')))).toEqual(['unattributed_token:resolved']);
  });

  it('applies only to kinds with requireProviderEvent, and only to new tokens', () => {
    const w = new World({ kinds: REQUIRED });
    w.token('written', { ...access('j1'), kind: 'session' });
    w.token('appeared', access('j2'));
    expect(w.advance(60_000)).toEqual([]);
  });
});
