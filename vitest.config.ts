import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Make the directories where the run's one Kafka broker and one PostgreSQL server live
    // (each started by the first test file that needs it) and stop them at the end.
    globalSetup: ['test/support/kafka-global.ts', 'test/support/postgres-global.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: wire tests start real servers; more workers only add contention.
    maxWorkers: 2,
    reporters: ['default'],
    // On with --coverage: `npm test` runs the whole suite with it (well under a minute more on
    // two busy cores), so CI enforces the gate; a focused `vitest run <files>` stays without.
    // V8 counts what runs in the test processes themselves: code that only runs in a child
    // scorecar or a sandbox worker thread is not seen, so the figures are a floor of what the
    // tests exercise.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      // The web UI's browser modules run in Chromium (test/browser), not in the test processes.
      exclude: ['src/ui/client/**'],
      reporter: ['text-summary', 'json-summary', 'html'],
      reportsDirectory: 'coverage',
      // The gate: set at 84/76/87/86 when coverage was first measured (84.65, 76.22, 87.70,
      // 86.66%); raised after the hardening work to a little under the suite's figures then
      // (89.77, 82.78, 91.29, 91.42%), leaving room for code that only runs in child processes.
      // Raise them as coverage grows; a change that lowers coverage below them fails `npm test`.
      thresholds: {
        statements: 87,
        branches: 80,
        functions: 89,
        lines: 89,
      },
    },
  },
});
