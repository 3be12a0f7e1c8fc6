import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: wire tests start real servers; more workers only add contention.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
