import { defineConfig } from 'vitest/config';

/**
 * `npm run test:mutation` (Stryker): only the pure unit tests of the mutated code, per scope
 * (STRYKER_SCOPE, see stryker.config.mjs; unset: all). No Redis, no network; SQLite temp files.
 */
const TESTS: Record<string, string[]> = {
  translation: [
    'test/keyspace/token-translation.test.ts',
    'test/keyspace/notification-batch.test.ts',
    'test/keyspace/expiry-flush.test.ts',
  ],
  // With the fingerprint parser the live columns use (src/domain/fingerprint.ts).
  correlate: ['test/correlate/*.test.ts', 'test/domain/fingerprint.test.ts'],
  // The keyspace subscriber's own RESP reading (issue #19): the framer's table and the fuzz
  // against ioredis' decoder (the real-Redis test needs a server).
  resp: ['test/keyspace/resp-frames.test.ts', 'test/keyspace/pmessage-fast-path.test.ts'],
  verify: [
    'test/audit/verify.test.ts',
    'test/audit/verify-attacks.test.ts',
    'test/audit/retention.test.ts',
    'test/audit/verify-purge.test.ts',
    'test/audit/verify-checkpoints.test.ts',
    'test/audit/verify-rows.test.ts',
    'test/audit/verify-report.test.ts',
    'test/audit/verify-seals.test.ts',
    'test/audit/verify-meta.test.ts',
    // verify-archive.ts (archive files, issue #16) and the archive parts of verify-meta.ts.
    'test/audit/archive.test.ts',
    'test/audit/verify-archive.test.ts',
    'test/audit/archive-retention.test.ts',
    'test/security/archive-attacks.test.ts',
    'test/audit/verify-mutants.test.ts',
    'test/audit/verify-rows-mutants.test.ts',
  ],
};

const scope = process.env.STRYKER_SCOPE;

export default defineConfig({
  test: {
    include: scope && TESTS[scope] ? TESTS[scope] : Object.values(TESTS).flat(),
    // bounds.test.ts floods the correlator for ~45 s to check its memory caps; every mutant of
    // the correlator would run it. The rule tests judge the rules.
    exclude: ['test/**/*.redis.test.ts', 'test/**/*.int.test.ts', 'test/correlate/bounds.test.ts'],
    testTimeout: 30_000,
  },
});
