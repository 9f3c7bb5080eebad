import { Counter, Gauge, type Registry } from 'prom-client';

/** How a token left Redis, as remembered for misses_after_end. */
export const END_REASONS = ['revoked', 'deleted', 'expired', 'evicted'] as const;
export type EndReason = (typeof END_REASONS)[number];

/**
 * Cache-health metrics (issue #21). Labels are bounded: kinds come from the token rules, index
 * names from the index rules, ends and results are fixed sets. Never a key or member.
 */
export interface CacheHealthMetrics {
  lookups: Counter<'kind' | 'result'>;
  missesAfterEnd: Counter<'kind' | 'end'>;
  sampledReads: Counter<'kind'>;
  sampledMisses: Counter<'kind'>;
  sampleWindows: Counter<'node' | 'outcome'>;
  hitRatio: Gauge<'kind'>;
  hitRatioSampleSize: Gauge<'kind'>;
  samplingActive: Gauge<'node'>;
  indexOrphans: Gauge<'index'>;
  indexMembers: Gauge<'index'>;
  indexReconciles: Counter<'outcome'>;
}

export function createCacheHealthMetrics(
  registry: Registry,
  options: {
    kinds: readonly string[];
    indexes: readonly string[];
    keyMisses: boolean;
    sampling: boolean;
  },
): CacheHealthMetrics {
  const m: CacheHealthMetrics = {
    lookups: new Counter({
      name: 'tokenwatch_token_lookups_total',
      help: 'Reads of token keys by kind and result: result="miss" is exact (keymiss notifications, metrics.keyMisses); hits are only estimated (tokenwatch_token_hit_ratio).',
      labelNames: ['kind', 'result'],
      registers: [registry],
    }),
    missesAfterEnd: new Counter({
      name: 'tokenwatch_token_misses_after_end_total',
      help: 'Misses on token keys the inventory saw end recently (within metrics.recentlyEnded.horizonSeconds), by kind and how the token ended: clients still presenting revoked tokens.',
      labelNames: ['kind', 'end'],
      registers: [registry],
    }),
    sampledReads: new Counter({
      name: 'tokenwatch_token_sampled_reads_total',
      help: 'Reads of token keys seen in MONITOR sampling windows, by kind (the sample size of the hit ratio).',
      labelNames: ['kind'],
      registers: [registry],
    }),
    sampledMisses: new Counter({
      name: 'tokenwatch_token_sampled_misses_total',
      help: 'Misses (keymiss) of token keys inside MONITOR sampling windows, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    sampleWindows: new Counter({
      name: 'tokenwatch_read_sample_windows_total',
      help: 'MONITOR sampling windows by node and outcome (ok, refused, failed).',
      labelNames: ['node', 'outcome'],
      registers: [registry],
    }),
    hitRatio: new Gauge({
      name: 'tokenwatch_token_hit_ratio',
      help: 'Hit ratio of token reads by kind, from the last sampling window with reads of that kind. Absent when sampling is off or refused.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    hitRatioSampleSize: new Gauge({
      name: 'tokenwatch_token_hit_ratio_sample_size',
      help: 'Reads behind tokenwatch_token_hit_ratio (standard error ~ sqrt(p(1-p)/n)).',
      labelNames: ['kind'],
      registers: [registry],
    }),
    samplingActive: new Gauge({
      name: 'tokenwatch_read_sampling_window_open',
      help: '1 while a MONITOR sampling window is open on the node.',
      labelNames: ['node'],
      registers: [registry],
    }),
    indexOrphans: new Gauge({
      name: 'tokenwatch_index_orphans',
      help: 'Index members (set members / hash fields) whose token is gone, by index rule, as of the last index reconciliation.',
      labelNames: ['index'],
      registers: [registry],
    }),
    indexMembers: new Gauge({
      name: 'tokenwatch_index_members',
      help: 'Index members read by the last index reconciliation, by index rule.',
      labelNames: ['index'],
      registers: [registry],
    }),
    indexReconciles: new Counter({
      name: 'tokenwatch_index_reconciles_total',
      help: 'Index reconciliations by outcome (ok, skipped, failed).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
  if (options.keyMisses) {
    for (const kind of options.kinds) {
      m.lookups.inc({ kind, result: 'miss' }, 0);
      for (const end of END_REASONS) m.missesAfterEnd.inc({ kind, end }, 0);
    }
  }
  if (options.sampling) {
    for (const kind of options.kinds) {
      m.sampledReads.inc({ kind }, 0);
      m.sampledMisses.inc({ kind }, 0);
    }
  }
  for (const index of options.indexes) {
    m.indexOrphans.set({ index }, 0);
    m.indexMembers.set({ index }, 0);
  }
  return m;
}
