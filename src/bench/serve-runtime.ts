import { setFlagsFromString } from 'node:v8';
import { parseConfig } from '../config/load.js';
import { applyHeapGrowth } from '../runtime/heap-growth.js';
import { memoryReducingGc, type ReducingGc } from '../runtime/memory-release.js';

/**
 * What `tokenwatch serve` does to the process before it starts (src/main.ts), for benchmarks
 * that run the service in their own process: their figures are the service's as users run it.
 * The default of `runtime.heapGrowthPercent`, or TW_HEAP_GROWTH (`null` or a percent) to compare.
 * Returns the V8 flag set, or undefined for V8's own heuristic.
 */
export function applyServeRuntime(): string | undefined {
  const env = process.env.TW_HEAP_GROWTH;
  if (env === 'null') return applyHeapGrowth(null);
  if (env !== undefined && env !== '') return applyHeapGrowth(Number(env));
  const config = parseConfig('tokens:\n  - { kind: access_token, key: "oauth:access:{token}" }\n');
  return applyHeapGrowth(config.runtime.heapGrowthPercent);
}

let gc: ReducingGc | undefined;

/**
 * The memory-reducing GC `tokenwatch serve` hands to the app (runtime.releaseMemoryAfterScan),
 * unless TW_RELEASE_MEMORY=null (to compare without it). Sets a V8 flag: benchmarks only.
 */
export function serveReducingGc(): ReducingGc | undefined {
  if (process.env.TW_RELEASE_MEMORY === 'null') return undefined;
  return (gc ??= memoryReducingGc());
}

/**
 * The flag setter `tokenwatch serve` hands to the app (the backlog's heap growth,
 * runtime.heapGrowthLiftAbove), unless TW_HEAP_GROWTH sets the growth for a comparison or
 * TW_HEAP_LIFT=null (to compare without lifting). Benchmarks only.
 */
export function serveV8Flags(): ((flag: string) => void) | undefined {
  const fixed = process.env.TW_HEAP_GROWTH;
  if ((fixed !== undefined && fixed !== '') || process.env.TW_HEAP_LIFT === 'null')
    return undefined;
  return setFlagsFromString;
}
