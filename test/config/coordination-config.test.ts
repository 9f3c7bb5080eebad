import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const TOKENS = `
tokens:
  - kind: session
    key: 'session:{sid}'
`;

const SHARED_KEY = { TOKENWATCH_HMAC_KEY: 'a-shared-hmac-key-for-every-instance' };

function issues(yaml: string, env: Record<string, string> = SHARED_KEY): string[] {
  try {
    parseConfig(yaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  return [];
}

describe('coordination configuration', () => {
  it('is off by default, with the documented defaults', () => {
    const c = parseConfig(TOKENS, {});
    expect(c.coordination).toEqual({
      enabled: false,
      keyPrefix: 'tokenwatch:',
      leaseMs: 5000,
      safetyMs: 500,
      markerEveryMs: 250,
      standby: { maxEvents: 200_000, maxAgeMs: 60_000 },
    });
  });

  it('refuses a safety margin or renewal period that would fence an owner between renewals', () => {
    expect(
      issues(`${TOKENS}\ncoordination: { enabled: true, leaseMs: 1000, safetyMs: 1000 }`),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/^coordination\.safetyMs/)]));
    expect(
      issues(`${TOKENS}\ncoordination: { enabled: true, leaseMs: 3000, renewEveryMs: 2600 }`),
    ).toEqual([expect.stringMatching(/^coordination\.renewEveryMs/)]);
  });

  it('refuses a token rule that would match the coordination marker keys', () => {
    const rule = `
tokens:
  - kind: anything
    key: '{tenant}:marker:{id}'
`;
    expect(issues(`${rule}\ncoordination: { enabled: true }`)).toEqual([
      expect.stringMatching(/^tokens\[0\]\.key: matches the coordination marker keys/),
    ]);
    // not coordinated: no marker keys, nothing to refuse
    expect(issues(rule)).toEqual([]);
    // a prefix the rule cannot match
    expect(issues(`${rule}\ncoordination: { enabled: true, keyPrefix: 'tw-' }`)).toEqual([]);
  });

  it('refuses coordination without a configured HMAC key (markers are authenticated with it)', () => {
    expect(issues(`${TOKENS}\ncoordination: { enabled: true }`, {})).toEqual([
      expect.stringMatching(
        /^audit\.hmacKeys: coordination\.enabled needs the same audit\.hmacKeys/,
      ),
    ]);
    expect(issues(`${TOKENS}\ncoordination: { enabled: true }`)).toEqual([]);
    expect(issues(TOKENS, {})).toEqual([]);
  });
});
