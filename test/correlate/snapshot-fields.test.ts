import { describe, expect, it } from 'vitest';
import { Correlator } from '../../src/correlate/correlator.js';
import type { CorrelatorOptions } from '../../src/correlate/options.js';
import { TokenwatchError } from '../../src/errors.js';
import { KINDS, World, access, fp, refresh, session } from './helpers.js';

/**
 * Restore trusts no field of a snapshot (snapshot-read.ts): every field is type-checked and a bad
 * one fails with ERR_SNAPSHOT_INVALID naming its path. Checked here field by field, on a snapshot
 * in which every section and every optional field is filled.
 */

const OPTIONS: CorrelatorOptions = {
  kinds: KINDS.map((k) => (k.kind === 'access_token' ? { ...k, requireProviderEvent: true } : k)),
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A snapshot with every section non-empty, as the ledger stores it (through JSON). */
function richSnapshot(): { [k: string]: Json } {
  const w = new World(OPTIONS);
  // Revocation in flight with a live and an ended token, remembered for write_after_revocation.
  w.token('written', session('s1'));
  w.token('written', refresh('r1', 's1'));
  w.token('deleted', refresh('r1', 's1'));
  w.provider('session_revoked', { sessionId: fp('s1'), subject: 'alice' });
  w.provider('token_revoked', { tokenIds: [fp('j9')], subject: 'alice' });
  w.provider('account_disabled', { subject: 'bob' });
  // Rotation family, issuance remembered for attribution.
  w.provider('token_refreshed', {
    subject: 'alice',
    clientId: 'web',
    sessionId: fp('s2'),
    tokenIds: [fp('j2')],
    rotation: { familyId: 'fam-1', previous: [fp('j1')], next: [fp('j2')] },
  });
  // Pending attribution and an open token_without_expiry tied to its token.
  w.token('written', access('j3', 'carol', 'cli'));
  w.token('persisted', access('j3', 'carol', 'cli'));
  // An eviction burst.
  w.token('evicted', session('s3'));
  w.advance(2000);
  const snap = JSON.parse(JSON.stringify(w.c.snapshot())) as { [k: string]: Json };
  // Fields a short run leaves empty (an open spike, a shortfall, a pending second): filled with
  // values restore accepts, checked below.
  const churn = snap.churn as { [k: string]: Json }[];
  const kind = churn[0];
  if (!kind) throw new Error('no churn kind in the snapshot');
  kind.spike = {
    findingId: 'churn_spike:session:1',
    openedAt: 1,
    peak: 2,
    events: 3,
    buckets: 1,
    calm: 0,
    learnCredit: 0.5,
  };
  kind.shortfall = [1.5];
  kind.pending = [[Number(kind.next), 4]];
  return snap;
}

const restore = (raw: unknown): Correlator =>
  Correlator.fromSnapshot(OPTIONS, { clock: { now: () => 1_700_000_100_000 } }, raw);

/** The path restore reports for a JSON location (the live view's sections sit under `view`). */
function reportedPath(parts: readonly (string | number)[]): string {
  let out = '';
  for (const [i, p] of parts.entries()) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (i === 0) out = p === 'tokens' || p === 'ended' ? `view.${p}` : p;
    else out += `.${p}`;
  }
  return out;
}

/** Every location in `v` (containers and leaves), with its value. */
function* locations(
  v: Json,
  parts: (string | number)[] = [],
): Generator<[(string | number)[], Json]> {
  if (parts.length > 0) yield [parts, v];
  if (Array.isArray(v)) for (const [i, x] of v.entries()) yield* locations(x, [...parts, i]);
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) yield* locations(x, [...parts, k]);
}

function withValue(root: Json, parts: readonly (string | number)[], value: Json): Json {
  const copy = structuredClone(root);
  let at = copy as Record<string | number, Json>;
  for (const p of parts.slice(0, -1)) at = at[p] as Record<string | number, Json>;
  at[parts[parts.length - 1] as string | number] = value;
  return copy;
}

/** Values of the wrong type for `v`: each must be refused. */
function wrongValues(v: Json, freeForm: boolean): Json[] {
  if (Array.isArray(v)) return ['x', { length: 0 }];
  if (v !== null && typeof v === 'object') return [[], 'x'];
  // Finding attributes take any scalar: only an object is wrong there.
  if (freeForm) return [{}];
  if (typeof v === 'number') return ['x', {}, Number.POSITIVE_INFINITY];
  if (typeof v === 'string') return [7, {}, true];
  if (typeof v === 'boolean') return ['x', 0, {}];
  return ['x']; // null: an optional field, unset
}

/** Fields restore does not read: derived again from others, so a snapshot cannot forge them. */
const DERIVED = [
  /^obligations\[\d+\]\.(key|eventKey)$/,
  /^attribution\.issuances\[\d+\]\.key$/,
  /^truncated$/,
];

const errorPath = (raw: unknown): string | undefined => {
  try {
    restore(raw);
  } catch (e) {
    if (e instanceof TokenwatchError && e.code === 'ERR_SNAPSHOT_INVALID')
      return String(e.details?.path);
    throw e;
  }
  return undefined;
};

describe('correlator snapshot: every field is checked', () => {
  const snap = richSnapshot();

  it('the filled snapshot restores, and every section holds something', () => {
    expect(() => restore(snap)).not.toThrow();
    for (const section of [
      'findings',
      'tokens',
      'ended',
      'obligations',
      'families',
      'evictions',
      'churn',
    ])
      expect(snap[section], section).not.toHaveLength(0);
    const revoked = snap.revoked as Record<string, Json[]>;
    const attribution = snap.attribution as Record<string, Json[]>;
    for (const list of [
      revoked.tokenIds,
      revoked.sessions,
      revoked.subjects,
      attribution.issuances,
      attribution.pending,
    ])
      expect(list).not.toHaveLength(0);
  });

  it('refuses a wrong type in any field, naming the field', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const [parts, value] of locations(snap)) {
      const path = reportedPath(parts);
      if (DERIVED.some((re) => re.test(path))) continue;
      const freeForm = /^findings\[\d+\]\.attributes\./.test(path);
      for (const bad of wrongValues(value, freeForm)) {
        checked++;
        const got = errorPath(withValue(snap, parts, bad));
        if (got !== path) wrong.push(`${path} = ${JSON.stringify(bad)}: ${got ?? 'accepted'}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(300);
  });

  it('ignores the derived fields (they are recomputed, not trusted)', () => {
    for (const [parts] of locations(snap)) {
      const path = reportedPath(parts);
      if (!DERIVED.some((re) => re.test(path))) continue;
      expect(errorPath(withValue(snap, parts, 'forged')), path).toBeUndefined();
    }
  });

  it('takes counts and audit seqs only as integers, seqs from 1, counts from 0', () => {
    const refused = (bad: (v: number) => number): string[] => {
      const out: string[] = [];
      for (const [parts, value] of locations(snap)) {
        const path = reportedPath(parts);
        if (typeof value !== 'number' || path === 'version' || path.includes('.attributes.'))
          continue;
        if (errorPath(withValue(snap, parts, bad(value))) === path) out.push(path);
      }
      return out;
    };
    const seqs = [
      'findings[0].evidenceSeqs[0]',
      'findings[1].evidenceSeqs[0]',
      'view.tokens[0].seq',
      'view.ended[0].seq',
      'view.ended[0].endSeq',
      'view.ended[1].endSeq',
      'obligations[0].evidence[0]',
      'obligations[0].evidence[1]',
      'obligations[0].evidence[2]',
      'evictions[0].seqs[0]',
    ];
    const counts = [
      'obligations[0].matched',
      'obligations[0].goneBeforeEvent',
      'obligations[0].lost',
      'evictions[0].count',
      'churn[0].next',
      'churn[0].pending[0][0]',
      'churn[0].pending[0][1]',
      'churn[0].spike.buckets',
      'churn[0].spike.calm',
      'churn[1].next',
      'churn[2].next',
    ];
    const all = [...seqs, ...counts].sort();
    expect(refused((v) => v + 0.5).sort()).toEqual(all);
    expect(refused(() => -1).sort()).toEqual(all);
    expect(refused(() => 0).sort()).toEqual([...seqs].sort());
  });

  it('refuses a finding id, rule, state, severity or criterion it does not know', () => {
    for (const [field, value] of [
      ['rule', 'nope'],
      ['state', 'closed'],
      ['severity', 'urgent'],
    ] as const) {
      const findings = structuredClone(snap.findings) as { [k: string]: Json }[];
      (findings[0] as { [k: string]: Json })[field] = value;
      expect(errorPath({ ...snap, findings })).toBe(`findings[0].${field}`);
    }
    const findings = structuredClone(snap.findings) as { [k: string]: Json }[];
    (findings[0] as { [k: string]: Json }).criteria = ['CC9.9'];
    expect(errorPath({ ...snap, findings })).toBe('findings[0].criteria[0]');
  });
});
