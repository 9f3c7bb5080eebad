import { readFileSync } from 'node:fs';

import { Fingerprinter } from '../../src/audit/fingerprint.js';
import type { NormalizeContext } from '../../src/providers/payload-reader.js';

/** Fixed clock for provider tests: 2024-05-01T12:00:00Z. */
export const PROVIDER_TEST_NOW = Date.UTC(2024, 4, 1, 12, 0, 0);

/** A Fingerprinter with a fixed test key (id `test`). */
export function providerFingerprinter(): Fingerprinter {
  return new Fingerprinter([{ id: 'test', key: Buffer.alloc(32, 7) }]);
}

/** A normalizer context with the fixed key and clock. */
export function providerContext(overrides: Partial<NormalizeContext> = {}): NormalizeContext {
  return { fingerprinter: providerFingerprinter(), now: () => PROVIDER_TEST_NOW, ...overrides };
}

/** Raw text of `test/fixtures/<provider>/<name>`. */
export function fixtureText(provider: string, name: string): string {
  return readFileSync(new URL(`../fixtures/${provider}/${name}`, import.meta.url), 'utf8');
}

/** Parsed JSON of `test/fixtures/<provider>/<name>` (as `unknown`: tests must not trust it). */
export function fixtureJson(provider: string, name: string): unknown {
  return JSON.parse(fixtureText(provider, name)) as unknown;
}

/**
 * Calls `fn` and returns what it threw (sync or async), failing the test if it did not throw.
 */
export async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}
