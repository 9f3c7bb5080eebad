import type { Ledger } from '../audit/ledger.js';
import type { BaselineReport, GapReport } from '../keyspace/node-watcher.js';
import { KeyspaceRecorder } from '../keyspace/recorder.js';
import type { Metrics } from '../metrics/registry.js';
import type { Tracing } from './tracing.js';

/**
 * A KeyspaceRecorder that also turns the node watchers' reconciliation reports into spans:
 * `tokenwatch.keyspace.baseline` (the SCAN at start) and `tokenwatch.keyspace.reconcile` (the
 * SCAN that repairs a blind spot). The watcher reports each SCAN with its duration, so the span
 * is recorded after the fact with the real timings (`end - durationMs` .. `end`); attributes
 * are the node label, the gap reason and counts, never a key.
 */
export class TracedKeyspaceRecorder extends KeyspaceRecorder {
  readonly #tracing: Tracing;

  constructor(ledger: Ledger, metrics: Metrics, db: number, tracing: Tracing) {
    super(ledger, metrics, db);
    this.#tracing = tracing;
  }

  override baseline(r: BaselineReport): void {
    this.#tracing.record({
      name: 'tokenwatch.keyspace.baseline',
      attrs: { node: r.node, scanned: r.scanned },
      startMs: r.at - r.durationMs,
      endMs: r.at,
    });
    super.baseline(r);
  }

  override gap(r: GapReport): void {
    // `tokenwatch_stopped` / `tokenwatch_crashed` gaps cover downtime found at start-up: no
    // SCAN ran for them (the baseline that follows has its own span).
    if (!r.reason.startsWith('tokenwatch_')) {
      this.#tracing.record({
        name: 'tokenwatch.keyspace.reconcile',
        attrs: {
          node: r.node,
          reason: r.reason,
          scanned: r.scanned,
          changes: r.changes.length,
          gap_seconds: Math.max(0, r.end - r.start) / 1000,
        },
        startMs: r.end - r.durationMs,
        endMs: r.end,
      });
    }
    super.gap(r);
  }
}
