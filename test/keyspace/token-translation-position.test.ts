import { describe, expect, it } from 'vitest';
import { formatPosition, type StreamPosition } from '../../src/domain/position.js';
import type { InventoryEntry } from '../../src/keyspace/inventory.js';
import {
  classifyBatch,
  planLookup,
  recordExpiries,
} from '../../src/keyspace/notification-batch.js';
import type { Item } from '../../src/keyspace/notification-batch.js';
import { translate } from '../../src/keyspace/token-translation.js';
import { MAX_KEY_BYTES, NOW, rules } from './translation-harness.js';

/** Issue #20: token events carry the stream position of the notification that made them. */

const D = NOW + 100_000;

function items(notes: readonly (readonly [string, string, number | undefined])[]): Item[] {
  return notes.map(([event, key, offset], i) => {
    const it: Item = { event, key: Buffer.from(key, 'latin1'), at: NOW + i };
    if (offset !== undefined) it.pos = { epoch: 2, marker: 7, offset } satisfies StreamPosition;
    return it;
  });
}

function events(batch: Item[], live: Record<string, InventoryEntry> = {}) {
  const { prepared } = classifyBatch(batch, (k) => rules.classify(k), MAX_KEY_BYTES);
  const need = planLookup(prepared);
  recordExpiries(
    need,
    need.map(() => D),
  );
  const byFp = new Map<string, InventoryEntry>();
  for (const [k, e] of Object.entries(live)) byFp.set(rules.classify(k)!.fingerprint, e);
  const view = { get: (_kind: string, fp: string) => byFp.get(fp) };
  const ctx = {
    nodeIndex: 0,
    label: 'redis:6379',
    db: 0,
    offsetMs: 0,
    expiryBacklogToleranceMs: 2000,
  };
  return translate(prepared, view, ctx).events;
}

describe('token events with stream positions', () => {
  it('carry the position of their notification, index 0', () => {
    const evs = events(
      items([
        ['set', 'at:a', 3],
        ['expire', 'at:a', 4], // folded into the write: no event of its own
        ['set', 'other', 5],
        ['del', 'at:a', 6],
      ]),
    );
    expect(evs.map((e) => [e.type, formatPosition(e.position!, e.positionIndex)])).toEqual([
      ['written', '2.7.3.0'],
      ['deleted', '2.7.6.0'],
    ]);
  });

  it('number the two events of one RENAME over a live token 0 and 1', () => {
    const live = { 'at:b': { due: D, written: NOW - 10, node: 0 } };
    const evs = events(
      items([
        ['rename_from', 'at:a', 10],
        ['rename_to', 'at:b', 11],
        ['set', 'at:c', 12],
      ]),
      live,
    );
    expect(evs.map((e) => [e.type, formatPosition(e.position!, e.positionIndex)])).toEqual([
      ['deleted', '2.7.11.0'],
      ['renamed', '2.7.11.1'],
      ['written', '2.7.12.0'],
    ]);
  });

  it('have no position fields at all when their notification has none', () => {
    const evs = events(
      items([
        ['set', 'at:a', undefined],
        ['del', 'at:a', 0],
      ]),
    );
    expect(evs).toHaveLength(2);
    expect('position' in evs[0]! || 'positionIndex' in evs[0]!).toBe(false);
    expect(evs[1]!.position).toEqual({ epoch: 2, marker: 7, offset: 0 });
    expect(evs[1]!.positionIndex).toBe(0);
  });
});
