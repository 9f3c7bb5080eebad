import { parseArgs } from 'node:util';
import { liveSteps } from './live.js';
import { applyServeRuntime } from './serve-runtime.js';

applyServeRuntime(); // the service's process settings, as `tokenwatch serve` applies them

/**
 * Scenario 1b alone: `node dist/bench/live-main.js [--step-seconds 30]`. Prints one JSON line;
 * writes nothing.
 */
const { values } = parseArgs({ options: { 'step-seconds': { type: 'string', default: '30' } } });
process.stdout.write(`${JSON.stringify(await liveSteps(Number(values['step-seconds'])))}\n`);
process.exit(0);
