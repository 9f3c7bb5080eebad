import type { Committed } from '../audit/record.js';
import { auditTypeLabel, type Metrics } from './registry.js';

/**
 * The audit metrics of a committed batch, as a subscriber of the ledger's committed channel:
 * records per type, the last seq, and how long a token event took from Redis to the ledger.
 * One counter update per record type and batch, not per record (the audit hot path).
 */
export function commitMetrics(
  m: Pick<Metrics, 'auditRecords' | 'auditLastSeq' | 'eventToAudit'>,
  now: () => number,
): (batch: readonly Committed[]) => void {
  return (batch) => {
    const t = now();
    const perType = new Map<string, number>();
    for (const c of batch) {
      perType.set(c.input.type, (perType.get(c.input.type) ?? 0) + 1);
      if (c.input.source === 'redis' && c.input.type.startsWith('token.')) {
        m.eventToAudit.observe(Math.max(0, t - c.input.time) / 1000);
      }
    }
    for (const [type, n] of perType) m.auditRecords.inc({ type: auditTypeLabel(type) }, n);
    const last = batch.at(-1);
    if (last) m.auditLastSeq.set(last.seq);
  };
}
