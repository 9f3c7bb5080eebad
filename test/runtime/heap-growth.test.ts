import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { applyHeapGrowth } from '../../src/runtime/heap-growth.js';

const MINIMAL = 'tokens:\n  - { kind: access_token, key: "oauth:access:{token}" }\n';

describe('runtime.heapGrowthPercent', () => {
  it('defaults to 50 and accepts null (V8 decides) and 10..400', () => {
    expect(parseConfig(MINIMAL).runtime.heapGrowthPercent).toBe(50);
    expect(parseConfig(`${MINIMAL}runtime: { heapGrowthPercent: null }`).runtime).toEqual({
      heapGrowthPercent: null,
      heapGrowthLiftAbove: 20_000,
      releaseMemoryAfterScan: 100_000,
    });
    expect(
      parseConfig(`${MINIMAL}runtime: { heapGrowthPercent: 10 }`).runtime.heapGrowthPercent,
    ).toBe(10);
    expect(
      parseConfig(`${MINIMAL}runtime: { heapGrowthPercent: 400 }`).runtime.heapGrowthPercent,
    ).toBe(400);
  });

  it.each(['9', '401', '25.5', '"50"'])('refuses heapGrowthPercent %s with its key path', (v) => {
    expect(() => parseConfig(`${MINIMAL}runtime: { heapGrowthPercent: ${v} }`)).toThrow(
      /runtime\.heapGrowthPercent/,
    );
  });

  it('sets the V8 flag it names; null leaves V8 alone; nonsense is refused before V8 sees it', () => {
    // This file runs in a test process of its own: the flag changes no other test's process.
    expect(applyHeapGrowth(null)).toBeUndefined();
    expect(applyHeapGrowth(50)).toBe('--heap-growing-percent=50');
    expect(() => applyHeapGrowth(5)).toThrow(RangeError);
    expect(() => applyHeapGrowth(Number.NaN)).toThrow(RangeError);
    expect(() => applyHeapGrowth(1e9)).toThrow(RangeError);
  });
});
