// Mutation testing of functions/ with Stryker's vitest runner: `npm run mutate` (all of functions/, slow),
// or `npm run mutate -- --mutate 'functions/core/diff.ts'` for one file. Not part of `npm test`.
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  // TypeScript 7 has no JS API for Stryker to read tsconfig with; vitest compiles the code itself.
  tsconfigFile: 'no-tsconfig-for-stryker.json',
  vitest: { configFile: 'test/vitest.mutate.config.ts', related: true },
  mutate: [
    'functions/**/*.ts',
    // Entry points whose module scope starts programs; covered by the e2e suite instead.
    '!functions/local/demo.ts',
    '!functions/bigstate/simulator-cli.ts',
  ],
  // The e2e, infra and benchmark suites test the bundle and the stack, not these mutants: test/vitest.mutate.config.ts leaves them out.
  ignorePatterns: ['cdk.out', '.bigstate-audit', 'reports'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'node_modules/.cache/mutation/index.html' },
  jsonReporter: { fileName: 'node_modules/.cache/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: null },
  timeoutMS: 10000,
  // Outside the project (its top level stays as it is), and not under node_modules, which vitest ignores.
  tempDirName: join(tmpdir(), 'bigstate-key-audit-stryker'),
};
