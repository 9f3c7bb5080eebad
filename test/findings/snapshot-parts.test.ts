import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/audit/ledger.js';
import type { AuditInput, Committed } from '../../src/audit/record.js';
import {
  assembleSnapshot,
  planSnapshot,
  SNAPSHOT_PART_RECORD,
  SNAPSHOT_RECORD,
  snapshotParts,
} from '../../src/findings/snapshot-parts.js';
import { findSnapshot } from '../../src/findings/snapshot-store.js';
import { SnapshotWriter } from '../../src/findings/snapshot-writer.js';
import { access, World } from '../correlate/helpers.js';

const T = Date.UTC(2026, 11, 3, 8);

/** A correlator whose snapshot holds `n` tokens awaiting attribution (and their judgements). */
function bigState(n: number): object {
  const w = new World({
    kinds: [
      {
        kind: 'access_token',
        joins: { tokenId: 'jti', subject: 'sub', clientId: 'client' },
        requireProviderEvent: true,
      },
    ],
  });
  for (let i = 0; i < n; i++) w.token('written', access(`jti-${i}`, `user-${i % 50}`));
  return w.c.snapshot();
}

let dir: string;
let ledger: Ledger;
let batches: Committed[][];
let writer: SnapshotWriter;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tw-snapparts-'));
  batches = [];
  ledger = new Ledger({
    path: join(dir, 'audit.db'),
    batchSize: 100,
    flushIntervalMs: 1,
    maxPending: 10_000,
    hmacKeyIds: ['k1'],
    writerThread: false,
    now: () => T,
    onCommit: (b) => {
      batches.push([...b]);
      writer?.onCommitted(b);
    },
  });
});
afterEach(() => {
  if (!ledger.closed) ledger.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Lets paced writing run until the ledger holds a new head (or `turns` pass). */
async function settle(turns = 10_000): Promise<void> {
  const heads = ledger.list({ type: SNAPSHOT_RECORD }).length;
  for (let i = 0; i < turns; i++) {
    await new Promise((r) => setTimeout(r, 0));
    ledger.flush();
    if (ledger.list({ type: SNAPSHOT_RECORD }).length > heads) return;
  }
}

const roundTrip = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('split snapshots', () => {
  it('splits any state into parts of bounded size and assembles exactly the same state', () => {
    const state = bigState(2000);
    const plan = planSnapshot(state);
    expect(plan.sections).toMatchObject({ tokens: 2000, 'attribution.pending': 2000 });
    const parts = [...snapshotParts(plan, 16 * 1024)];
    expect(parts.length).toBeGreaterThan(10);
    for (const p of parts) expect(JSON.stringify(p).length).toBeLessThan(17 * 1024);
    const back = assembleSnapshot(roundTrip(plan.head), plan.sections, roundTrip(parts) as []);
    expect(back).toEqual(roundTrip(state));
  });

  it('refuses a set with a part missing or an entry too many', () => {
    const plan = planSnapshot(bigState(300));
    const parts = roundTrip([...snapshotParts(plan, 8 * 1024)]) as Record<string, unknown[]>[];
    expect(() => assembleSnapshot(plan.head, plan.sections, parts.slice(1))).toThrow(
      expect.objectContaining({ code: 'ERR_SNAPSHOT_INVALID' }) as Error,
    );
    const extra = [...parts, { tokens: [{}] }];
    expect(() => assembleSnapshot(plan.head, plan.sections, extra)).toThrow(/more than/);
  });

  it('paced: one part per commit, on later turns, then the head; restore reads it back', async () => {
    writer = new SnapshotWriter(ledger, 8 * 1024);
    const state = bigState(500);
    writer.write({ reason: 'interval', throughSeq: 1, time: T, state }, true);
    // Nothing is encoded in the turn that captured the state.
    expect(ledger.list({ type: SNAPSHOT_PART_RECORD })).toEqual([]);
    await settle();
    const parts = ledger.list({ type: SNAPSHOT_PART_RECORD });
    expect(parts.length).toBeGreaterThan(5);
    for (const b of batches)
      expect(b.filter((c) => c.input.type === SNAPSHOT_PART_RECORD).length).toBeLessThanOrEqual(1);
    const [head] = ledger.list({ type: SNAPSHOT_RECORD });
    expect(head?.seq).toBeGreaterThan(parts.at(-1)!.seq);
    expect(head?.attrs).toMatchObject({ reason: 'interval', throughSeq: 1, parts: parts.length });
    const { found, incomplete } = findSnapshot(ledger);
    expect(incomplete).toEqual([]);
    expect(found?.head.seq).toBe(head?.seq);
    expect(found?.state).toEqual(roundTrip(state));
  });

  it('passes over a snapshot missing a part for the complete one before it', () => {
    const first = bigState(50);
    new SnapshotWriter(ledger, 4 * 1024).write(
      { reason: 'start', throughSeq: 1, time: T, state: first },
      false,
    );
    // A part the ledger dropped (back-pressure): the head still comes, its set is incomplete.
    const dropping = {
      append: (input: AuditInput) => {
        if (input.type !== SNAPSHOT_PART_RECORD || input.attrs?.part !== 2) ledger.append(input);
      },
    };
    new SnapshotWriter(dropping, 4 * 1024).write(
      { reason: 'interval', throughSeq: 2, time: T + 1000, state: bigState(60) },
      false,
    );
    ledger.flush();
    const { found, incomplete } = findSnapshot(ledger);
    expect(incomplete).toEqual([expect.stringMatching(/part 2 of \d+ is missing/)]);
    expect(found?.head.attrs.throughSeq).toBe(1);
    expect(found?.state).toEqual(roundTrip(first));
  });

  it('a snapshot still being written at shutdown is finished at once, before the next', async () => {
    writer = new SnapshotWriter(ledger, 4 * 1024);
    writer.write({ reason: 'interval', throughSeq: 1, time: T, state: bigState(200) }, true);
    await new Promise((r) => setTimeout(r, 0));
    ledger.flush();
    expect(writer.busySince).toBe(T);
    const written = ledger.list({ type: SNAPSHOT_PART_RECORD }).length;
    expect(written).toBeGreaterThan(0);
    writer.write({ reason: 'shutdown', throughSeq: 2, time: T + 1, state: bigState(3) }, false);
    expect(writer.busySince).toBeUndefined();
    ledger.flush();
    const heads = ledger.list({ type: SNAPSHOT_RECORD }).map((r) => r.attrs.reason);
    expect(heads).toEqual(['interval', 'shutdown']);
    const last = findSnapshot(ledger).found?.head;
    expect(last?.attrs.reason).toBe('shutdown');
    // The interval snapshot finished first is complete too.
    const earlier = findSnapshot({
      list: (f) => ledger.list(f),
      lastOfType: (t, before) => ledger.lastOfType(t, before ?? last?.seq),
    });
    expect(earlier).toMatchObject({
      incomplete: [],
      found: { head: { attrs: { reason: 'interval' } } },
    });
  });

  it('a ledger closed while parts are being written ends the snapshot quietly', async () => {
    writer = new SnapshotWriter(ledger, 4 * 1024);
    writer.write({ reason: 'interval', throughSeq: 1, time: T, state: bigState(200) }, true);
    ledger.close();
    await new Promise((r) => setTimeout(r, 5));
    expect(writer.busySince).toBeUndefined();
  });

  it('parts written before a crash, without their head, are ignored', async () => {
    new SnapshotWriter(ledger).write(
      { reason: 'start', throughSeq: 1, time: T, state: bigState(5) },
      false,
    );
    writer = new SnapshotWriter(ledger, 4 * 1024);
    writer.write({ reason: 'interval', throughSeq: 2, time: T + 5, state: bigState(200) }, true);
    await new Promise((r) => setTimeout(r, 0));
    ledger.flush();
    expect(ledger.list({ type: SNAPSHOT_PART_RECORD }).length).toBeGreaterThan(0);
    writer.abandon(); // the crash
    const { found, incomplete } = findSnapshot(ledger);
    expect(incomplete).toEqual([]);
    expect(found?.head.attrs).toMatchObject({ reason: 'start', throughSeq: 1 });
  });
});
