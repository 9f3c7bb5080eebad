import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const RULES = `
tokens:
  - kind: access_token
    key: 'oauth:access:{token}'
`;

describe('deprecated config keys', () => {
  it('reads audit.flushIntervalMs as audit.maxBatchDelayMs, with a warning', () => {
    const warnings: string[] = [];
    const c = parseConfig(`audit:\n  flushIntervalMs: 40\n${RULES}`, {}, '<config>', warnings);
    expect(c.audit.maxBatchDelayMs).toBe(40);
    expect('flushIntervalMs' in c.audit).toBe(false);
    expect(warnings).toEqual([
      expect.stringMatching(/^audit\.flushIntervalMs is deprecated: .*audit\.maxBatchDelayMs/),
    ]);
  });

  it('the new name alone: no warning; the default is 25', () => {
    const warnings: string[] = [];
    expect(
      parseConfig(`audit:\n  maxBatchDelayMs: 7\n${RULES}`, {}, '<c>', warnings).audit
        .maxBatchDelayMs,
    ).toBe(7);
    expect(parseConfig(RULES, {}, '<c>', warnings).audit.maxBatchDelayMs).toBe(25);
    expect(warnings).toEqual([]);
  });

  it('refuses both names at once, and validates the old one under its new path', () => {
    let err: unknown;
    try {
      parseConfig(`audit:\n  flushIntervalMs: 40\n  maxBatchDelayMs: 7\n${RULES}`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => i.path)).toEqual(['audit.flushIntervalMs']);
    expect(() => parseConfig(`audit:\n  flushIntervalMs: 0\n${RULES}`)).toThrow(
      /audit\.maxBatchDelayMs/,
    );
  });
});
