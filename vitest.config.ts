import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // 'default' as before; the second names the files a dying test process was running.
    reporters: ['default', './test/helpers/unfinished-files-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [
            'test/**/*.redis.test.ts',
            'test/**/*.int.test.ts',
            'test/**/*.fault.test.ts',
            'test/**/*.soak.test.ts',
          ],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.redis.test.ts', 'test/**/*.int.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
          // Each file starts its own redis-server processes; keep the 2-core machine breathing.
          maxWorkers: 2,
          // Projects with different maxWorkers need their own group: units first, then these.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
