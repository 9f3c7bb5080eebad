import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { resolveCorrelatorOptions } from '../../src/correlate/options.js';
import { ConfigError } from '../../src/errors.js';
import { correlatorOptionsFrom } from '../../src/findings/correlator-config.js';

const RULES = `
tokens:
  - kind: access_token
    key: 'oauth:access:{token}'
`;

function issuesOf(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(yaml + RULES, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('ERR_CONFIG_INVALID');
    return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('config was accepted');
}

describe('correlate: config', () => {
  it('rejects bad values naming every offending key', () => {
    const issues = issuesOf(`correlate:
  revocationSlaSeconds: -1
  limits: { maxTrackedTokens: 1.5 }
  churn: { alpha: 0.2 }
  revocationEventTypes: [nope]
  rules:
    churn_spike: { severity: urgent, criteria: [CC9.9] }
    no_such_rule: { enabled: false }
`);
    const paths = issues.map((i) => i.slice(0, i.indexOf(': '))).sort();
    expect(paths).toEqual([
      'correlate.churn.alpha',
      'correlate.limits.maxTrackedTokens',
      'correlate.revocationEventTypes[0]',
      'correlate.revocationSlaSeconds',
      'correlate.rules',
      'correlate.rules.churn_spike.criteria[0]',
      'correlate.rules.churn_spike.severity',
    ]);
    expect(issues.find((i) => i.startsWith('correlate.rules: '))).toMatch(/no_such_rule/);
    expect(issues.find((i) => i.startsWith('correlate.churn.alpha'))).toMatch(/baselineBuckets/);
  });

  it('checks cross-key rules against the defaults of the keys left out', () => {
    expect(issuesOf('correlate:\n  churn: { resolveSigmas: 7 }\n')).toEqual([
      expect.stringMatching(/^correlate\.churn\.resolveSigmas: must not exceed churn\.openSigmas/),
    ]);
    expect(issuesOf('correlate:\n  churn: { warmupBuckets: 700 }\n')).toEqual([
      expect.stringMatching(/^correlate\.churn\.warmupBuckets: must not exceed/),
    ]);
    expect(issuesOf('correlate:\n  churn: { learnWhileOpen: 1.5 }\n')[0]).toMatch(
      /^correlate\.churn\.learnWhileOpen: /,
    );
    expect(issuesOf('correlate:\n  churn: { carryBuckets: 61 }\n')[0]).toMatch(
      /^correlate\.churn\.carryBuckets: /,
    );
  });

  it('caps every limit at 10 000 000 (the live view packs two interned codes in one index key)', () => {
    expect(issuesOf('correlate:\n  limits: { maxTrackedTokens: 10000001 }\n')[0]).toMatch(
      /^correlate\.limits\.maxTrackedTokens: /,
    );
    expect(issuesOf('correlate:\n  limits: { maxEndedTokens: 10000001 }\n')[0]).toMatch(
      /^correlate\.limits\.maxEndedTokens: /,
    );
    expect(() =>
      parseConfig('correlate:\n  limits: { maxTrackedTokens: 10000000 }\n' + RULES, {}),
    ).not.toThrow();
  });

  it('refuses unknown keys instead of ignoring them', () => {
    expect(issuesOf('correlate:\n  revocationSla: 5\n')[0]).toMatch(/^correlate: .*revocationSla/);
    expect(issuesOf('correlate:\n  limits: { maxTokens: 5 }\n')[0]).toMatch(
      /^correlate\.limits: .*maxTokens/,
    );
  });

  it('names the environment variable a bad value came from', () => {
    expect(issuesOf('', { TOKENWATCH_REVOCATION_SLA_SECONDS: 'soon' })[0]).toMatch(
      /^correlate\.revocationSlaSeconds \(from TOKENWATCH_REVOCATION_SLA_SECONDS\): /,
    );
  });

  it('leaves the defaults to the engine: one declaration, 200 000 tracked tokens', () => {
    const config = parseConfig(RULES);
    const resolved = resolveCorrelatorOptions(correlatorOptionsFrom(config));
    expect(resolved.limits.maxTrackedTokens).toBe(200_000);
    expect(resolved.revocationSlaSeconds).toBe(5);
    const set = parseConfig(
      'correlate:\n  limits: { maxTrackedTokens: 5000 }\n  revocationSlaSeconds: 3\n' + RULES,
    );
    const o = resolveCorrelatorOptions(correlatorOptionsFrom(set));
    expect(o.limits.maxTrackedTokens).toBe(5000);
    expect(o.limits.maxEndedTokens).toBe(200_000);
    expect(o.revocationSlaSeconds).toBe(3);
    expect([...o.kinds.keys()]).toEqual(['access_token']);
  });
});
