import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { IndexRules } from '../../src/keyspace/index-rules.js';

const TOKENS = `
tokens:
  - kind: session
    key: 'session:{sid}'
  - kind: grant
    key: 'grant:{sub}:{scope}'
`;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('cache-health configuration', () => {
  it('is off by default', () => {
    const c = parseConfig(TOKENS, {});
    expect(c.metrics.keyMisses).toBe(false);
    expect(c.metrics.readSampling).toBeUndefined();
    expect(c.indexes.rules).toEqual([]);
  });

  it('refuses read sampling without keyMisses, and a window as long as its interval', () => {
    expect(
      codeOf(() =>
        parseConfig(
          `${TOKENS}\nmetrics: { readSampling: { windowMs: 1000, everySeconds: 60 } }`,
          {},
        ),
      ),
    ).toBe('ERR_CONFIG_INVALID');
    expect(() =>
      parseConfig(
        `${TOKENS}\nmetrics: { keyMisses: true, readSampling: { windowMs: 2000, everySeconds: 1 } }`,
        {},
      ),
    ).toThrow(/metrics\.readSampling\.windowMs/);
    const ok = parseConfig(`${TOKENS}\nmetrics: { keyMisses: true, readSampling: {} }`, {});
    expect(ok.metrics.readSampling).toEqual({ windowMs: 1000, everySeconds: 300 });
  });

  it('takes keyMisses from the environment', () => {
    expect(parseConfig(TOKENS, { TOKENWATCH_KEY_MISSES: 'true' }).metrics.keyMisses).toBe(true);
  });

  it('derives the member key of an index from a one-placeholder token rule, and refuses otherwise', () => {
    const c = parseConfig(TOKENS, {});
    const rules = new IndexRules(
      [{ name: 'user_sessions', key: 'user:{sub}:sessions', kind: 'session' }],
      c.tokens,
    );
    expect(IndexRules.tokenKey(rules.rules[0]!, 's1')).toBe('session:s1');
    expect(rules.match('user:alice:sessions')?.name).toBe('user_sessions');
    expect(rules.match('user:alice:other')).toBeUndefined();
    expect(
      codeOf(() => new IndexRules([{ name: 'g', key: 'u:{sub}:grants', kind: 'grant' }], c.tokens)),
    ).toBe('ERR_CONFIG_INVALID');
    expect(
      codeOf(() => new IndexRules([{ name: 'x', key: 'u:{sub}:x', kind: 'nope' }], c.tokens)),
    ).toBe('ERR_CONFIG_INVALID');
    const explicit = new IndexRules(
      [{ name: 'g', key: 'u:{sub}:grants', kind: 'grant', memberKey: 'grant:{member}' }],
      c.tokens,
    );
    expect(IndexRules.tokenKey(explicit.rules[0]!, 'bob:read')).toBe('grant:bob:read');
    expect(() =>
      parseConfig(
        `${TOKENS}\nindexes: { rules: [{ name: a, key: 'x:{a}', kind: session, memberKey: 'session:' }] }`,
        {},
      ),
    ).toThrow(/memberKey/);
  });
});
