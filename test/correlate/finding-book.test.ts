import { describe, expect, it } from 'vitest';
import { FindingBook, findingBase, parseFinding } from '../../src/correlate/finding-book.js';
import type { FindingSpec } from '../../src/correlate/finding-book.js';
import { resolveCorrelatorOptions } from '../../src/correlate/options.js';
import type { CorrelatorOptions } from '../../src/correlate/options.js';
import { TokenwatchError } from '../../src/errors.js';

const book = (o: CorrelatorOptions = {}) => new FindingBook(resolveCorrelatorOptions(o));
const spec = (key: string, more: Partial<FindingSpec> = {}): FindingSpec => ({
  rule: 'tokens_evicted',
  key,
  summary: `burst ${key}`,
  attributes: { n: 1 },
  ...more,
});

describe('FindingBook', () => {
  it('opens with the rule’s settings, only the fields given, and evidence deduplicated', () => {
    const b = book({ rules: { tokens_evicted: { severity: 'low', criteria: ['CC7.3'] } } });
    const f = b.open(spec('k', { kind: 'session', evidence: [3, undefined, 3, 4] }), 1000);
    expect(f).toEqual({
      id: 'tokens_evicted:k:1000',
      rule: 'tokens_evicted',
      state: 'opened',
      severity: 'low',
      criteria: ['CC7.3'],
      at: 1000,
      openedAt: 1000,
      summary: 'burst k',
      evidenceSeqs: [3, 4],
      attributes: { n: 1 },
      kind: 'session',
    });
    const all = b.open(
      spec('all', { kind: 'k', fingerprint: 'f', subject: 's', sessionId: 'x' }),
      1000,
    );
    expect(all).toMatchObject({ kind: 'k', fingerprint: 'f', subject: 's', sessionId: 'x' });
    expect(b.size).toBe(2);
    expect(b.enabled('tokens_evicted')).toBe(true);
  });

  it('gives copies: changing what it returned changes nothing inside', () => {
    const b = book();
    const f = b.open(spec('k', { evidence: [1] }), 1000) as NonNullable<
      ReturnType<FindingBook['open']>
    >;
    f.criteria.push('CC6.1');
    f.evidenceSeqs.push(99);
    f.attributes.n = 2;
    const listed = b.list()[0];
    expect(listed).toMatchObject({ criteria: ['A1.2'], evidenceSeqs: [1], attributes: { n: 1 } });
    (listed?.attributes as Record<string, unknown>).n = 3;
    expect(b.get(f.id)?.attributes.n).toBe(1);
    expect(b.get('nope')).toBeUndefined();
  });

  it('numbers ids opened in the same millisecond, and starts again the next', () => {
    const b = book();
    const ids = [1000, 1000, 1000, 1001].map((at) => b.open(spec('k'), at)?.id);
    expect(ids).toEqual([
      'tokens_evicted:k:1000',
      'tokens_evicted:k:1000#2',
      'tokens_evicted:k:1000#3',
      'tokens_evicted:k:1001',
    ]);
    expect(b.open(spec('other'), 1001)?.id).toBe('tokens_evicted:other:1001');
  });

  it('refuses when disabled (not counted) and at the cap (counted), until a slot frees', () => {
    const off = book({ rules: { tokens_evicted: { enabled: false } } });
    expect(off.open(spec('k'), 1)).toBeUndefined();
    expect(off.suppressed).toBe(0);
    expect(off.enabled('tokens_evicted')).toBe(false);

    const b = book({ limits: { maxOpenFindingsPerRule: 1 } });
    const first = b.open(spec('a'), 1);
    expect(b.open(spec('b'), 1)).toBeUndefined();
    expect(b.suppressed).toBe(1);
    // Another rule has its own cap.
    expect(b.open({ ...spec('c'), rule: 'churn_spike' }, 1)).toBeDefined();
    b.resolve(first?.id, 2, 'done', {});
    const second = b.open(spec('b'), 3);
    expect(second).toBeDefined();
    expect(b.forget(second?.id as string)).toBe(true);
    expect(b.forget('nope')).toBe(false);
    expect(b.open(spec('d'), 4)).toBeDefined();
    expect(b.suppressed).toBe(1);
  });

  it('adopted findings count against the cap, once per id', () => {
    const b = book({ limits: { maxOpenFindingsPerRule: 2 } });
    const f = book().open(spec('x'), 1) as NonNullable<ReturnType<FindingBook['open']>>;
    b.adopt({ ...f, state: 'resolved' });
    b.adopt(f);
    expect(b.list()).toMatchObject([{ id: f.id, state: 'opened' }]);
    expect(b.open(spec('y'), 2)).toBeDefined();
    expect(b.open(spec('z'), 3)).toBeUndefined();
  });

  it('updates open findings in place, and ignores unknown ids', () => {
    const b = book({ limits: { maxEvidenceSeqs: 3 } });
    const f = b.open(spec('k', { evidence: [1] }), 1);
    b.update(f?.id as string, { m: 2 }, [2, 2, undefined]);
    b.update(f?.id as string, { n: 5 });
    b.update('nope', { n: 9 }, [7]);
    b.update(f?.id as string, {}, [3, 4]);
    expect(b.list()[0]).toMatchObject({ evidenceSeqs: [1, 2, 3], attributes: { n: 5, m: 2 } });
    expect(b.isOpen(f?.id)).toBe(true);
    expect(b.isOpen(undefined)).toBe(false);
    expect(b.isOpen('nope')).toBe(false);
  });

  it('resolves with a summary (or one built from the opened finding), attributes and evidence', () => {
    const b = book();
    const f = b.open(spec('k', { evidence: [1] }), 1);
    expect(b.resolve(undefined, 2, 'x', {})).toBeUndefined();
    expect(b.resolve('nope', 2, 'x', {})).toBeUndefined();
    const r = b.resolve(f?.id, 5, (o) => `${o.summary}: over`, { done: true }, [2]);
    expect(r).toMatchObject({
      id: f?.id,
      state: 'resolved',
      at: 5,
      openedAt: 1,
      summary: 'burst k: over',
      evidenceSeqs: [1, 2],
      attributes: { n: 1, done: true },
    });
    expect(b.size).toBe(0);
    expect(b.resolve(f?.id, 6, 'again', {})).toBeUndefined();
  });

  it('while expecting recorded ids, reuses them oldest first, unless one is open; then stops', () => {
    const b = book();
    b.expect([
      { id: 'tokens_evicted:k:500', openedAt: 500 },
      { id: 'tokens_evicted:k:700#2', openedAt: 700 },
    ]);
    const first = b.open(spec('k'), 1000);
    expect(first).toMatchObject({ id: 'tokens_evicted:k:500', at: 500, openedAt: 500 });
    b.resolve(first?.id, 1001, 'x', {});
    expect(b.open(spec('k'), 1002)).toMatchObject({ id: 'tokens_evicted:k:700#2', openedAt: 700 });
    expect(b.open(spec('k'), 1003)?.id).toBe('tokens_evicted:k:1003');
    b.expect([{ id: 'tokens_evicted:k:1003', openedAt: 1003 }]);
    expect(b.open(spec('k'), 1004)?.id).toBe('tokens_evicted:k:1004'); // recorded id still open
    b.expect([{ id: 'tokens_evicted:q:1', openedAt: 1 }]);
    b.expect(undefined);
    expect(b.open(spec('q'), 1005)?.id).toBe('tokens_evicted:q:1005');
  });
});

describe('findingBase', () => {
  it('strips the opening time and any #n suffix, keeping colons of the key', () => {
    expect(findingBase('rule:a:b:c:1000')).toBe('rule:a:b:c');
    expect(findingBase('rule:k:1000#12')).toBe('rule:k');
    expect(findingBase('rule#2:k:1')).toBe('rule#2:k');
    expect(findingBase('nocolon')).toBe('');
  });
});

describe('parseFinding', () => {
  const good = {
    id: 'x',
    rule: 'churn_spike',
    state: 'opened',
    severity: 'high',
    criteria: ['CC7.2'],
    at: 1,
    openedAt: 1,
    summary: 's',
    evidenceSeqs: [1],
    attributes: { a: null, b: true, c: 2, d: 'x' },
  };
  const pathOf = (v: unknown) => {
    try {
      parseFinding(v, 'f');
    } catch (e) {
      return e instanceof TokenwatchError ? e.details?.path : 'other';
    }
    return undefined;
  };

  it('keeps scalar attributes as they are and optional fields only when present', () => {
    const f = parseFinding(good, 'f');
    expect(f).toEqual(good);
    expect(parseFinding({ ...good, kind: null, subject: 'u' }, 'f')).toEqual({
      ...good,
      subject: 'u',
    });
  });

  it('refuses non-finite numbers, objects and too many attributes', () => {
    expect(pathOf({ ...good, attributes: { n: Number.NaN } })).toBe('f.attributes.n');
    expect(pathOf({ ...good, attributes: { n: [] } })).toBe('f.attributes.n');
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i]));
    expect(pathOf({ ...good, attributes: many })).toBe('f.attributes');
    const enough = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, i]));
    expect(pathOf({ ...good, attributes: enough })).toBeUndefined();
    expect(pathOf({ ...good, criteria: Array.from({ length: 8 }, () => 'CC7.2') })).toBe(
      'f.criteria',
    );
    expect(pathOf({ ...good, id: 'i'.repeat(1025) })).toBe('f.id');
    expect(pathOf({ ...good, id: 'i'.repeat(1024) })).toBeUndefined();
  });
});
