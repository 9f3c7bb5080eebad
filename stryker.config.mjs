// @ts-check
/**
 * `npm run test:mutation`: Stryker over the pure rules, with only the unit tests that cover them
 * (vitest.mutation.config.ts). STRYKER_SCOPE=translation|correlate|verify|resp runs one scope (each
 * with its own incremental file and report under test-artifacts/stryker/); unset runs all four.
 * STRYKER_PART=<name> with `--mutate <files>` runs part of a scope under its own file names.
 * Not part of `npm test`. Scores and timings: docs/testing.md, "Mutation testing".
 */
const SCOPES = {
  translation: ['src/keyspace/notification-batch.ts', 'src/keyspace/token-translation.ts'],
  correlate: ['src/correlate/**/*.ts', 'src/domain/fingerprint.ts'],
  verify: ['src/audit/verify*.ts'],
  resp: ['src/keyspace/resp-frames.ts', 'src/keyspace/pmessage-fast-path.ts'],
};

const scope = process.env.STRYKER_SCOPE ?? 'all';
if (scope !== 'all' && !(scope in SCOPES)) {
  throw new Error(`STRYKER_SCOPE=${scope}: expected one of ${Object.keys(SCOPES).join(', ')}`);
}
const mutate = scope === 'all' ? Object.values(SCOPES).flat() : SCOPES[scope];
const name = process.env.STRYKER_PART ? `${scope}-${process.env.STRYKER_PART}` : scope;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  mutate,
  coverageAnalysis: 'perTest',
  // The machine is shared: two test processes at most.
  concurrency: 2,
  incremental: true,
  incrementalFile: `test-artifacts/stryker/${name}.incremental.json`,
  tempDirName: 'test-artifacts/stryker/tmp',
  ignorePatterns: ['dist', 'data', 'coverage', 'test-artifacts', 'deploy', 'dashboards', 'docs'],
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: { fileName: `test-artifacts/stryker/${name}.json` },
  thresholds: { high: 90, low: 80, break: null },
  timeoutMS: 5000,
};
