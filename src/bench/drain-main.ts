import { parseArgs } from 'node:util';
import { ceilingVsTokenwatch, type DrainSide } from './drain.js';
import { applyServeRuntime } from './serve-runtime.js';

applyServeRuntime(); // the service's process settings, as `tokenwatch serve` applies them

/**
 * Scenario 1 alone, for iterating on its figures without the whole `npm run bench`:
 * `node dist/bench/drain-main.js --runs 2 --sides bare,minimal,tokenwatch`. Prints one JSON
 * line per run; writes nothing. `--sides tokenwatch` under `node --cpu-prof` profiles that side;
 * `--sides tokenwatch,minimal` runs tokenwatch before the minimal auditor (the bare subscriber is
 * always first).
 */
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    requests: { type: 'string', default: '300000' },
    sides: { type: 'string', default: 'bare,minimal,tokenwatch' },
  },
});
const sides = (values.sides ?? '').split(',').filter(Boolean) as DrainSide[];
for (let i = 0; i < Number(values.runs); i++) {
  const r = await ceilingVsTokenwatch(Number(values.requests), sides);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
process.exit(0);
