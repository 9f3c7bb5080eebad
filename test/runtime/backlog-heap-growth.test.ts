import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { BacklogHeapGrowth } from '../../src/runtime/backlog-heap-growth.js';
import { DIST_TIMEOUT_MS, ensureDist, ROOT } from '../audit/dist.js';

const MINIMAL = 'tokens:\n  - { kind: access_token, key: "oauth:access:{token}" }\n';

function governor(liftAbove = 20_000, percent = 50) {
  const flags: string[] = [];
  const lines: Record<string, unknown>[] = [];
  let released = 0;
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const g = new BacklogHeapGrowth({
    percent,
    liftAbove,
    setFlag: (f) => void flags.push(f),
    afterBacklog: () => void released++,
    logger,
  });
  return { g, flags, lines, released: () => released };
}

describe('runtime.heapGrowthLiftAbove', () => {
  it('defaults to 20 000; null turns it off; below 1000 or fractions are refused', () => {
    expect(parseConfig(MINIMAL).runtime.heapGrowthLiftAbove).toBe(20_000);
    expect(
      parseConfig(`${MINIMAL}runtime: { heapGrowthLiftAbove: null }`).runtime.heapGrowthLiftAbove,
    ).toBeNull();
    for (const v of ['999', '1500.5', '"big"']) {
      expect(() => parseConfig(`${MINIMAL}runtime: { heapGrowthLiftAbove: ${v} }`)).toThrow(
        /runtime\.heapGrowthLiftAbove/,
      );
    }
  });

  it('warns when a node drops notifications before that many wait (and only then)', () => {
    const warned = (yaml: string) => {
      const warnings: string[] = [];
      parseConfig(`${MINIMAL}${yaml}`, {}, '<test>', warnings);
      return warnings;
    };
    expect(warned('redis: { maxPendingNotifications: 10000 }')).toEqual([
      expect.stringMatching(
        /runtime\.heapGrowthLiftAbove \(20000\) is above redis\.maxPendingNotifications \(10000\)/,
      ),
    ]);
    expect(warned('redis: { maxPendingNotifications: 20000 }')).toEqual([]);
    expect(warned('')).toEqual([]);
    const off = 'redis: { maxPendingNotifications: 10000 }\nruntime:';
    expect(warned(`${off} { heapGrowthLiftAbove: null }`)).toEqual([]);
    expect(warned(`${off} { heapGrowthPercent: null }`)).toEqual([]);
  });
});

describe('BacklogHeapGrowth', () => {
  it('sets nothing below the threshold, lifts at it (V8 heuristic: 0), once per backlog', () => {
    const { g, flags, lines } = governor();
    g.sample(0, 0);
    g.sample(19_999, 250);
    expect(flags).toEqual([]);
    expect(g.lifted).toBe(false);
    g.sample(20_000, 500);
    expect(flags).toEqual(['--heap-growing-percent=0']);
    expect(g.lifted).toBe(true);
    expect(g.lifts).toBe(1);
    g.sample(300_000, 750); // deeper: still one lift
    g.sample(25_000, 1000);
    expect(flags).toHaveLength(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, waiting: 20_000, liftAbove: 20_000 });
  });

  it('puts the bound back after 2 s under a tenth of the threshold, then asks for a release', () => {
    const { g, flags, released } = governor();
    g.sample(50_000, 0);
    // Under the threshold but not under a tenth of it: still draining.
    g.sample(2_000, 1_000);
    g.sample(2_000, 10_000);
    expect(g.lifted).toBe(true);
    g.sample(1_999, 10_250); // quiet from here
    g.sample(0, 12_249);
    expect(g.lifted).toBe(true);
    expect(released()).toBe(0);
    g.sample(0, 12_250);
    expect(g.lifted).toBe(false);
    expect(flags).toEqual(['--heap-growing-percent=0', '--heap-growing-percent=50']);
    expect(released()).toBe(1);
    g.sample(0, 20_000); // bound already: nothing more
    expect(flags).toHaveLength(2);
    expect(released()).toBe(1);
  });

  it('a burst during the quiet time starts it over', () => {
    const { g, flags } = governor(1000, 25);
    g.sample(1000, 0);
    g.sample(50, 100);
    g.sample(500, 2_000); // back above a tenth (100)
    g.sample(50, 2_100);
    g.sample(50, 4_099);
    expect(g.lifted).toBe(true);
    g.sample(50, 4_100);
    expect(g.lifted).toBe(false);
    expect(flags.at(-1)).toBe('--heap-growing-percent=25');
    g.sample(1000, 5_000); // the next backlog lifts it again
    expect(g.lifts).toBe(2);
    expect(flags.at(-1)).toBe('--heap-growing-percent=0');
  });

  it('close() puts a lifted bound back without a release; a bound one is left alone', () => {
    const lifted = governor();
    lifted.g.sample(20_000, 0);
    lifted.g.close();
    expect(lifted.flags).toEqual(['--heap-growing-percent=0', '--heap-growing-percent=50']);
    expect(lifted.released()).toBe(0);
    expect(lifted.lines.at(-1)).toMatchObject({ why: 'stopped', percent: 50 });
    const idle = governor();
    idle.g.close();
    expect(idle.flags).toEqual([]);
  });

  it('refuses a percent or threshold V8 or the rule cannot use', () => {
    const setFlag = () => undefined;
    const logger = pino({ level: 'silent' });
    for (const percent of [9, 401, 50.5]) {
      expect(() => new BacklogHeapGrowth({ percent, liftAbove: 1000, setFlag, logger })).toThrow(
        RangeError,
      );
    }
    for (const liftAbove of [0, -1, 2.5]) {
      expect(() => new BacklogHeapGrowth({ percent: 50, liftAbove, setFlag, logger })).toThrow(
        RangeError,
      );
    }
  });
});

describe('BacklogHeapGrowth on V8 itself', () => {
  beforeAll(() => ensureDist(), DIST_TIMEOUT_MS);

  it('the flags it sets change how often V8 runs a full collection, both ways', () => {
    // A child process of its own: the flags are process-wide. The same allocation (a live set
    // plus a ring of objects that survive a while, as a backlog's do) under the bound, lifted,
    // and bound again; full collections counted from --trace-gc between the phases.
    const url = pathToFileURL(join(ROOT, 'dist/runtime/backlog-heap-growth.js')).href;
    const script = `
      const { setFlagsFromString } = await import('node:v8');
      const { BacklogHeapGrowth } = await import(${JSON.stringify(url)});
      setFlagsFromString('--heap-growing-percent=50');
      const g = new BacklogHeapGrowth({ percent: 50, liftAbove: 1000, setFlag: setFlagsFromString, logger: { info() {} } });
      const live = []; for (let i = 0; i < 500000; i++) live.push({ i, s: 'x' + i });
      const ring = new Array(100000);
      const phase = (label) => {
        console.log('phase ' + label);
        for (let i = 0; i < 4000000; i++) ring[i % ring.length] = { i, a: [i, i + 1], s: 'y' + i };
      };
      phase('bound');
      g.sample(1000, 0);
      phase('lifted');
      g.sample(0, 0);
      g.sample(0, 2000);
      phase('back');
      console.log('phase end ' + live.length + ' ' + g.lifts);
    `;
    const r = spawnSync(process.execPath, ['--trace-gc', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    const counts: Record<string, number> = {};
    let phase = '';
    for (const line of r.stdout.split('\n')) {
      const m = /^phase (\w+)/.exec(line);
      if (m) phase = m[1] as string;
      else if (phase && line.includes('Mark-Compact')) counts[phase] = (counts[phase] ?? 0) + 1;
    }
    expect(r.stdout).toMatch(/phase end 500000 1/);
    const { bound = 0, lifted = 0, back = 0 } = counts;
    // Measured: 22 / 9 / 21 over 6 M objects each (bound 50 %, V8's heuristic, bound again).
    expect(bound).toBeGreaterThan(4);
    expect(lifted).toBeLessThan(bound * 0.7);
    expect(back).toBeGreaterThan(lifted);
  }, 90_000);
});
