import { defineConfig } from 'vitest/config';

// Tests start real brokers, ffmpeg and browsers: give them time, and keep to
// the machine's two cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts', './test/helpers/figures-reporter.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
