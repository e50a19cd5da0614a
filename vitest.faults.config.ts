import { defineConfig } from 'vitest/config';

// `npm run test:faults`: the fault suite, bad-input fuzzing, hostile devices
// and the security audit (issue #8), then one table of every figure they
// measured. The same files also run in `npm test` (CI).
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts', 'test/security/**/*.test.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts', './test/helpers/figures-reporter.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
