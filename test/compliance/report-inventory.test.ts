import { describe, expect, it } from 'vitest';
import { InventoryReplay, type ReplayRecord } from '../../src/compliance/report-inventory.js';

/** The replay against the order the keyspace watcher really writes records in (issue #15). */

let seq = 0;
const rec = (type: string, fingerprint: string | null = null, attrs = {}): ReplayRecord => ({
  seq: ++seq,
  time: seq,
  type,
  kind: fingerprint === null ? null : 'access_token',
  fingerprint,
  attrs: { node: 'n1', ...attrs },
});
const baseline = (n: number) => rec('keyspace.baseline', null, { counts: { access_token: n } });

describe('InventoryReplay', () => {
  it("keeps the baseline's own token.present fingerprints, written before its record", () => {
    const r = new InventoryReplay();
    r.apply(rec('system.started'));
    expect(r.apply(rec('token.present', 'pre1'))).toBe('present');
    r.apply(rec('token.present', 'pre2'));
    r.apply(baseline(2));
    expect(r.sizes()).toEqual({ access_token: 2 });
    // A rewrite of a token that predates tokenwatch is a refresh, not a second token.
    expect(r.apply(rec('token.written', 'pre1'))).toBe('refreshed');
    expect(r.apply(rec('token.written', 't2'))).toBe('issued');
    expect(r.sizes()).toEqual({ access_token: 3 });
    r.apply(rec('token.deleted', 'pre2'));
    expect(r.sizes()).toEqual({ access_token: 2 });
    expect(r.known()).toBe(true);
  });

  it('counts by number what a baseline found without a record of this run', () => {
    const r = new InventoryReplay();
    r.apply(rec('system.started'));
    r.apply(rec('token.present', 'a'));
    r.apply(baseline(3)); // two found tokens had no record (written during the SCAN, say)
    expect(r.sizes()).toEqual({ access_token: 3 });
    r.apply(rec('token.deleted', 'unknown-1'));
    expect(r.sizes()).toEqual({ access_token: 2 });
    expect(r.apply(rec('token.written', 'a'))).toBe('refreshed');
  });

  it("drops an earlier run's fingerprints at a new run's baseline", () => {
    const r = new InventoryReplay();
    r.apply(rec('system.started'));
    r.apply(rec('token.present', 'old'));
    r.apply(baseline(1));
    r.apply(rec('token.written', 'gone-while-down'));
    // A new run whose inventory could not be restored: a fresh baseline that finds one token.
    r.apply(rec('system.started'));
    r.apply(rec('token.present', 'old'));
    r.apply(baseline(1));
    expect(r.sizes()).toEqual({ access_token: 1 });
    expect(r.apply(rec('token.written', 'old'))).toBe('refreshed');
  });

  it('a restored restart re-sending present for live tokens changes nothing', () => {
    const r = new InventoryReplay();
    r.apply(rec('system.started'));
    r.apply(rec('token.present', 'a'));
    r.apply(baseline(1));
    r.apply(rec('token.written', 'b'));
    r.apply(rec('system.started'));
    r.apply(rec('token.present', 'a'));
    r.apply(rec('token.present', 'b'));
    r.apply(rec('keyspace.gap', null, { reason: 'tokenwatch_stopped' }));
    r.apply(rec('token.appeared', 'c'));
    expect(r.sizes()).toEqual({ access_token: 3 });
  });
});
