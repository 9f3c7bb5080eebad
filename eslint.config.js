// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'data/**', 'test-artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  // Import boundaries (docs/architecture.md#rules). Each folder has its own block: flat config
  // replaces a rule's options per file, so the blocks must not overlap.
  {
    files: ['src/correlate/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/audit/**',
                '**/config/**',
                '**/keyspace/**',
                '**/http/**',
                '**/providers/**',
              ],
              message: 'src/correlate/ is pure: it takes domain events, options and a clock.',
            },
          ],
          paths: ['ioredis', 'fastify', 'better-sqlite3', 'node:http', 'node:fs'].map((name) => ({
            name,
            message: 'src/correlate/ knows no Redis, HTTP, SQLite or files.',
          })),
        },
      ],
    },
  },
  {
    files: ['src/config/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/findings/**', '**/audit/**', '**/http/**'],
              message: 'src/config/ validates the config; services read it, not the other way.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/http/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/providers/**'],
              message:
                'src/http/ does not reach into the provider adapters; shared outbound HTTP (JWKS, bounded fetch) lives in src/outbound/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/metrics/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'prom-client',
              importNames: ['Counter', 'Gauge', 'Histogram', 'Summary'],
              allowTypeImports: true,
              message: 'metrics are defined only in src/metrics/ (one place for names and labels).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli.ts', 'src/cli/**', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    // Plain Node scripts run as separate processes (load generators): Node globals.
    files: ['**/*.mjs'],
    rules: { 'no-undef': 'off', 'no-console': 'off' },
  },
);
