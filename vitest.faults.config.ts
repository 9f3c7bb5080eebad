import { defineConfig } from 'vitest/config';

/** `npm run test:faults`: the fault-injection suite (real Redis, real cluster, separate load process). */
export default defineConfig({
  test: {
    include: ['test/**/*.fault.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One fault at a time: each one measures loss under load on a 2-core machine.
    fileParallelism: false,
    maxWorkers: 1,
  },
});
