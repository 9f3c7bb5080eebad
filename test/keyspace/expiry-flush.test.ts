import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { tokenRuleSchema } from '../../src/config/schema.js';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { KeyEventApplier, type Item } from '../../src/keyspace/event-applier.js';
import { Inventory } from '../../src/keyspace/inventory.js';
import type { WatcherSink } from '../../src/keyspace/node-watcher.js';
import { TokenRules } from '../../src/keyspace/token-rules.js';

/**
 * Issue #16.3: a lazy-expiry flush delivers keys due long ago together with keys due less than
 * the tolerance ago; the whole flush is backlog. Expirations Redis delivers on time stay churn.
 */

const TOLERANCE = 2000;
const NOW = 1_800_000_000_000;

function setup() {
  const f = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
  const rules = new TokenRules(
    [tokenRuleSchema.parse({ kind: 'session', key: 'session:{sid}' })],
    f,
  );
  const inventory = new Inventory(['session'], f.prefix);
  const events: TokenEvent[] = [];
  const sink: WatcherSink = {
    token: (ev) => events.push(ev),
    unmatched: () => undefined,
    baseline: () => undefined,
    gap: () => undefined,
    status: () => undefined,
    hitMiss: () => undefined,
  };
  const applier = new KeyEventApplier({
    nodeIndex: 0,
    label: 'n:1',
    db: 0,
    commands: {} as Redis,
    rules,
    inventory,
    sink,
    maxKeyBytes: 1024,
    expiryBacklogToleranceMs: TOLERANCE,
    logger: pino({ level: 'silent' }),
  });
  /** Sessions that became due `lagMs` before NOW, expired in one batch received at NOW. */
  const batch = (lags: number[]): void => {
    const items: Item[] = lags.map((lag, i) => {
      const key = `session:s${lag}-${i}`;
      const c = rules.classify(key)!;
      inventory.set(c.kind, c.fingerprint, { due: NOW - lag, written: NOW - 60_000, node: 0 });
      return { event: 'expired', key: Buffer.from(key, 'latin1'), at: NOW };
    });
    const prepared = applier.classify(items);
    applier.markExpiryFlush(prepared);
    for (const p of prepared) applier.apply(p);
  };
  const backlog = () => events.map((e) => e.backlog === true);
  return { applier, batch, backlog, events };
}

describe('expiry flush marking', () => {
  it('marks every expiration of a flush as backlog, also those due less than the tolerance ago', () => {
    const s = setup();
    s.batch([30_000, 500, 12_000, 1500, 9000]);
    expect(s.backlog()).toEqual([true, true, true, true, true]);
    expect(s.events.map((e) => e.expiryLagMs)).toEqual([30_000, 500, 12_000, 1500, 9000]);
  });

  it('keeps expirations on time as churn', () => {
    const s = setup();
    s.batch([10, 80, 1500]);
    expect(s.backlog()).toEqual([false, false, false]);
  });

  it('marks only the late one when a batch is mostly on time', () => {
    const s = setup();
    s.batch([10, 5000, 80, 120]);
    expect(s.backlog()).toEqual([false, true, false, false]);
  });

  it('marks every expiration received during our own SCAN as backlog, none after it', () => {
    const s = setup();
    s.applier.beginOwnScan(NOW - 100);
    s.batch([10]);
    s.applier.endOwnScan(NOW - 1);
    s.batch([10]);
    expect(s.backlog()).toEqual([true, false]);
  });
});
