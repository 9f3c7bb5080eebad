import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { percentile, round } from './stats.js';

/**
 * The disk's side of scenario 2, in its own process: every 10 ms for `seconds`, append 4 KiB to a
 * file in DIR and fdatasync it, timing each. A commit with synchronous=FULL waits for the same
 * kind of flush, so a stall here is a stall of every record committing then. Prints
 * {"samples":N,"p50ms":..,"p99ms":..,"maxms":..,"over25ms":N} when done.
 *
 * node dist/bench/fsync-probe-child.js DIR SECONDS
 */
const [dir = '.', secondsArg] = process.argv.slice(2);
const path = join(dir, 'fsync-probe.bin');
const fd = openSync(path, 'a');
const page = Buffer.alloc(4096, 0x2e);
const times: number[] = [];
const end = Date.now() + Number(secondsArg ?? 8) * 1000;
while (Date.now() < end) {
  const t = performance.now();
  writeSync(fd, page);
  fdatasyncSync(fd);
  times.push(performance.now() - t);
  await new Promise((r) => setTimeout(r, 10));
}
closeSync(fd);
rmSync(path, { force: true });
process.stdout.write(
  `${JSON.stringify({
    samples: times.length,
    p50ms: round(percentile(times, 50), 2),
    p99ms: round(percentile(times, 99), 2),
    maxms: round(
      times.reduce((m, v) => (v > m ? v : m), 0),
      2,
    ),
    over25ms: times.filter((v) => v > 25).length,
  })}\n`,
);
