import { cacheCost, cacheCostRows } from './cache-cost.js';

/**
 * Scenario 7 alone (`node dist/bench/cache-cost-main.js [requests] [reps]`): prints its rows of
 * docs/benchmarks.md and the JSON result.
 */
const requests = Number(process.argv[2] ?? 300_000);
const reps = Number(process.argv[3] ?? 3);
const r = await cacheCost(requests, reps);
process.stdout.write(`${cacheCostRows(r)}\n${JSON.stringify(r)}\n`);
process.exit(0);
