import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The tests Stryker runs against each mutant of functions/ (`npm run mutate`): the unit and process tests. The
 * infra, e2e and benchmark suites synthesize and bundle the stack (esbuild, which cannot write to Stryker's worker
 * stdio) and test the bundle, not one mutant; `npm test` runs them.
 */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [
        'test/infra/**',
        'test/e2e/**',
        'test/bench/**',
        'test/report/bench.test.ts',
        '**/node_modules/**',
      ],
    },
  }),
);
