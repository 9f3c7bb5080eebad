import { parseArgs } from 'node:util';
import { liveSteps } from './live.js';

/**
 * Scenario 1b alone: `node dist/bench/live-main.js [--step-seconds 30]`. Prints one JSON line;
 * writes nothing.
 */
const { values } = parseArgs({ options: { 'step-seconds': { type: 'string', default: '30' } } });
process.stdout.write(`${JSON.stringify(await liveSteps(Number(values['step-seconds'])))}\n`);
process.exit(0);
