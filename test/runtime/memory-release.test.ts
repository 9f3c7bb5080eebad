import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { MemoryRelease } from '../../src/runtime/memory-release.js';
import { DIST_TIMEOUT_MS, ensureDist, ROOT } from '../audit/dist.js';

const MINIMAL = 'tokens:\n  - { kind: access_token, key: "oauth:access:{token}" }\n';

function logged() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  return { lines, logger };
}

afterEach(() => {
  vi.useRealTimers();
});

/** A release over fake timers that counts its collections (minScanned 1000). */
function counting(delayMs?: number): { r: MemoryRelease; collections: () => number } {
  vi.useFakeTimers();
  let n = 0;
  const r = new MemoryRelease({
    minScanned: 1000,
    gc: () => void n++,
    logger: pino({ level: 'silent' }),
    ...(delayMs === undefined ? {} : { delayMs }),
  });
  return { r, collections: () => n };
}

describe('runtime.releaseMemoryAfterScan', () => {
  it('defaults to 100 000 keys; null turns it off; below 1000 or fractions are refused', () => {
    expect(parseConfig(MINIMAL).runtime.releaseMemoryAfterScan).toBe(100_000);
    expect(
      parseConfig(`${MINIMAL}runtime: { releaseMemoryAfterScan: null }`).runtime
        .releaseMemoryAfterScan,
    ).toBeNull();
    for (const v of ['999', '1500.5', '"big"']) {
      expect(() => parseConfig(`${MINIMAL}runtime: { releaseMemoryAfterScan: ${v} }`)).toThrow(
        /runtime\.releaseMemoryAfterScan/,
      );
    }
  });
});

describe('MemoryRelease', () => {
  it('runs one collection after the last large scan of a burst, none for small scans', () => {
    vi.useFakeTimers();
    let collections = 0;
    const { lines, logger } = logged();
    const r = new MemoryRelease({ minScanned: 1000, gc: () => void collections++, logger });
    r.afterScan(999); // small: nothing to hand back
    vi.advanceTimersByTime(10_000);
    expect(collections).toBe(0);
    // Three nodes baselined one after the other: one collection, 2 s after the last.
    r.afterScan(5000);
    vi.advanceTimersByTime(1500);
    r.afterScan(1000);
    vi.advanceTimersByTime(1500);
    r.afterScan(250_000);
    vi.advanceTimersByTime(1999);
    expect(collections).toBe(0);
    vi.advanceTimersByTime(1);
    expect(collections).toBe(1);
    expect(r.count).toBe(1);
    expect(r.last?.ms).toBeGreaterThanOrEqual(0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30 });
    expect(lines[0]?.rssMB).toHaveLength(2);
    expect(String(lines[0]?.msg)).toMatch(/memory-reducing GC/);
  });

  it('schedule() asks for one without a scan, and shares the timer with afterScan', () => {
    const { r, collections } = counting(2000);
    r.schedule(); // a drained backlog (src/runtime/backlog-heap-growth.ts)
    vi.advanceTimersByTime(2000);
    expect(collections()).toBe(1);
    // A baseline that was also a backlog: its scan, then the bound back 1.5 s later: one, after both.
    r.afterScan(500_000);
    vi.advanceTimersByTime(1500);
    r.schedule();
    vi.advanceTimersByTime(1999);
    expect(collections()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(collections()).toBe(2);
    vi.advanceTimersByTime(60_000);
    expect(collections()).toBe(2);
  });

  it('close() cancels a pending collection', () => {
    const { r, collections } = counting();
    r.afterScan(10_000);
    r.close();
    vi.advanceTimersByTime(60_000);
    expect(collections()).toBe(0);
  });
});

describe('memoryReducingGc', () => {
  beforeAll(() => ensureDist(), DIST_TIMEOUT_MS);

  it('hands the pages of collected garbage back to the OS, where a regular full GC keeps them', () => {
    // A child process of its own: the function sets a V8 flag for the whole process.
    const url = pathToFileURL(join(ROOT, 'dist/runtime/memory-release.js')).href;
    const script = `
      const { memoryReducingGc } = await import(${JSON.stringify(url)});
      const gc = memoryReducingGc();
      const { runInNewContext } = await import('node:vm');
      const regular = runInNewContext('gc');
      const churn = () => { let keep = []; for (let i = 0; i < 2e6; i++) keep.push({ i, s: 'x' + i }); keep = null; };
      churn();
      regular({ type: 'major', execution: 'sync', flavor: 'regular' });
      const afterRegular = process.memoryUsage().rss;
      gc();
      const afterReducing = process.memoryUsage().rss;
      console.log(JSON.stringify({ afterRegular, afterReducing }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    const m = JSON.parse(r.stdout.trim()) as { afterRegular: number; afterReducing: number };
    // ~2 M small objects: well over 100 MB of heap pages that a regular GC leaves resident.
    expect(m.afterRegular - m.afterReducing).toBeGreaterThan(50e6);
  });
});
