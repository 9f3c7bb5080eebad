import type { LedgerStore } from '../audit/store/ledger-store.js';
import { summarize } from './percentiles.js';
import type { Breach, FindingRow, RevocationSection } from './report-types.js';

const nums = (v: unknown): number[] =>
  Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)) : [];
const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/**
 * Findings active during the range [firstSeq, lastSeq]: opened at or before lastSeq and not
 * resolved before firstSeq. A finding is its `opened` record plus, when it came, its `resolved`
 * one (the same `attrs.id`); evidence seqs are the union of both.
 */
export function findingsActive(
  store: LedgerStore,
  firstSeq: number,
  lastSeq: number,
): FindingRow[] {
  const byId = new Map<string, FindingRow>();
  for (const rows of store.findingPages(lastSeq)) {
    for (const r of rows) {
      const a = obj(JSON.parse(r.attrs));
      const id = typeof a.id === 'string' ? a.id : `seq-${r.seq}`;
      const rule = r.type.slice('finding.'.length);
      const existing = byId.get(id);
      if (a.state === 'resolved') {
        if (!existing) continue; // opened before the replay window (or never): nothing to show
        existing.resolvedAt = r.time;
        existing.resolvedSeq = r.seq;
        existing.durationMs = Math.max(0, r.time - existing.openedAt);
        existing.summary = typeof a.summary === 'string' ? a.summary : existing.summary;
        for (const s of nums(a.evidenceSeqs))
          if (!existing.evidenceSeqs.includes(s)) existing.evidenceSeqs.push(s);
        Object.assign(existing.attributes, obj(a.attributes));
        continue;
      }
      byId.set(id, {
        id,
        rule,
        severity: typeof a.severity === 'string' ? a.severity : 'info',
        criteria: strs(a.criteria),
        openedAt: typeof a.openedAt === 'number' ? a.openedAt : r.time,
        openedSeq: r.seq,
        resolvedAt: null,
        resolvedSeq: null,
        durationMs: null,
        summary: typeof a.summary === 'string' ? a.summary : rule,
        kind: r.kind,
        fingerprint: r.fingerprint,
        evidenceSeqs: nums(a.evidenceSeqs),
        attributes: { ...obj(a.attributes) },
      });
    }
  }
  return [...byId.values()].filter((f) => f.resolvedSeq === null || f.resolvedSeq >= firstSeq);
}

/** One `revocation.propagation` record (docs/compliance.md#revocation-propagation). */
export interface PropagationObservation {
  seq: number;
  provider: string | null;
  providerEventId: string;
  eventType: string | null;
  latencySeconds: number | null;
  metSla: boolean | null;
  slaSeconds: number | null;
  /** Tokens the revocation matched in Redis. */
  tokens: number;
}

/** Reads an observation from a record's attrs. */
export function observation(seq: number, a: Record<string, unknown>): PropagationObservation {
  return {
    seq,
    provider: typeof a.provider === 'string' ? a.provider : null,
    providerEventId: typeof a.providerEventId === 'string' ? a.providerEventId : `seq-${seq}`,
    eventType: typeof a.eventType === 'string' ? a.eventType : null,
    latencySeconds: typeof a.latencySeconds === 'number' ? a.latencySeconds : null,
    metSla: typeof a.metSla === 'boolean' ? a.metSla : null,
    slaSeconds: typeof a.slaSeconds === 'number' ? a.slaSeconds : null,
    tokens: typeof a.tokens === 'number' && a.tokens >= 0 ? a.tokens : 0,
  };
}

/** The SLA stated by most observations (ties: the larger), else `fallback`. */
function prevailingSla(
  obs: readonly PropagationObservation[],
  fallback: number | undefined,
): number | null {
  const counts = new Map<number, number>();
  for (const o of obs)
    if (o.slaSeconds !== null) counts.set(o.slaSeconds, (counts.get(o.slaSeconds) ?? 0) + 1);
  let best: number | null = fallback ?? null;
  let bestCount = 0;
  for (const [sla, n] of counts) {
    if (n > bestCount || (n === bestCount && best !== null && sla > best)) {
      best = sla;
      bestCount = n;
    }
  }
  return best;
}

/** Histogram bin edges as fractions of the SLA (the last bin is open-ended). */
const BIN_FRACTIONS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 4];

/**
 * Revocation propagation against the SLA (CC6.2): every measured revocation, percentiles of
 * the known latencies, and every breach (late, unknown, or still open at the end of the range)
 * with its evidence seqs, joined to its `revocation_not_propagated` finding by provider event id.
 */
export function measureRevocations(
  obs: readonly PropagationObservation[],
  findings: readonly FindingRow[],
  fallbackSla: number | undefined,
): Omit<RevocationSection, 'received'> {
  const sla = prevailingSla(obs, fallbackSla);
  const known = obs.flatMap((o) => (o.latencySeconds === null ? [] : [o.latencySeconds]));
  const edges = sla === null ? [] : BIN_FRACTIONS.map((f) => Math.round(f * sla * 1000) / 1000);
  const histogram = [...edges, null].map((upTo, i) => {
    const lower = i === 0 ? -Infinity : (edges[i - 1] ?? -Infinity);
    return {
      upToSeconds: upTo,
      count: known.filter((v) => v > lower && (upTo === null || v <= upTo)).length,
    };
  });
  const byEvent = new Map<string, FindingRow>();
  for (const f of findings) {
    const id = f.attributes.providerEventId;
    if (
      (f.rule === 'revocation_not_propagated' || f.rule === 'refresh_reuse_detected') &&
      typeof id === 'string'
    ) {
      byEvent.set(id, f);
    }
  }
  const breaches: Breach[] = [];
  const seen = new Set<string>();
  for (const o of obs) {
    if (o.metSla === true) continue;
    const f = byEvent.get(o.providerEventId);
    seen.add(o.providerEventId);
    breaches.push({
      providerEventId: o.providerEventId,
      provider: o.provider,
      eventType: o.eventType,
      seq: o.seq,
      latencySeconds: o.latencySeconds,
      slaSeconds: o.slaSeconds,
      status: o.metSla === false ? 'breached' : 'unknown',
      findingId: f?.id ?? null,
      evidenceSeqs: [
        ...new Set([...(f ? [f.openedSeq] : []), ...(f?.evidenceSeqs ?? []), o.seq]),
      ].sort((a, b) => a - b),
    });
  }
  for (const f of findings) {
    if (f.rule !== 'revocation_not_propagated') continue;
    const id =
      typeof f.attributes.providerEventId === 'string' ? f.attributes.providerEventId : f.id;
    if (seen.has(id)) continue;
    breaches.push({
      providerEventId: id,
      provider: typeof f.attributes.provider === 'string' ? f.attributes.provider : null,
      eventType: typeof f.attributes.eventType === 'string' ? f.attributes.eventType : null,
      seq: null,
      latencySeconds:
        typeof f.attributes.latencySeconds === 'number' ? f.attributes.latencySeconds : null,
      slaSeconds: typeof f.attributes.slaSeconds === 'number' ? f.attributes.slaSeconds : sla,
      status: f.resolvedSeq === null ? 'open' : 'breached',
      findingId: f.id,
      evidenceSeqs: [
        ...new Set([
          f.openedSeq,
          ...f.evidenceSeqs,
          ...(f.resolvedSeq === null ? [] : [f.resolvedSeq]),
        ]),
      ].sort((a, b) => a - b),
    });
  }
  return {
    slaSeconds: sla,
    count: obs.length,
    tokens: obs.reduce((n, o) => n + o.tokens, 0),
    met: obs.filter((o) => o.metSla === true).length,
    breached: obs.filter((o) => o.metSla === false).length,
    unknown: obs.filter((o) => o.metSla === null).length,
    latencySeconds: summarize(known),
    histogram,
    breaches,
  };
}
