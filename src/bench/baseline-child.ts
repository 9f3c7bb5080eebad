import { baseline } from './scenarios.js';
import { applyServeRuntime } from './serve-runtime.js';

applyServeRuntime(); // the service's process settings, as `tokenwatch serve` applies them

/**
 * Scenario 4+5 in a fresh process, so the RSS it reports is tokenwatch's with N live tokens and
 * not what earlier scenarios left in the benchmark runner's heap.
 */
const tokens = Number(process.argv[2] ?? 1_000_000);
process.stdout.write(`${JSON.stringify(await baseline(tokens))}\n`);
process.exit(0);
