import { defineConfig } from 'vitest/config';

/** `npm run test:soak`: the soak drill (minutes of load on a real `tokenwatch serve`). */
export default defineConfig({
  test: {
    include: ['test/**/*.soak.test.ts'],
    hookTimeout: 180_000,
    fileParallelism: false,
    maxWorkers: 1,
  },
});
