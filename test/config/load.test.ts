import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../src/errors.js';
import { DEFAULT_CONFIG_PATH, loadConfig, parseConfig } from '../../src/config/load.js';

const RULES = `
tokens:
  - kind: access_token
    key: 'oauth:access:{token}'
`;

function issuesOf(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(yaml, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('ERR_CONFIG_INVALID');
    return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('config was accepted');
}

describe('config loading', () => {
  it('ships a default config with access, refresh and session rules', () => {
    const { config } = loadConfig({ env: {} });
    expect(config.tokens.map((t) => [t.kind, t.key])).toEqual([
      ['access_token', 'oauth:access:{token}'],
      ['refresh_token', 'oauth:refresh:{token}'],
      ['session', 'session:{sid}'],
    ]);
    expect(config.server.port).toBe(9464);
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
    expect(config.audit.path).toBe('./data/tokenwatch.db');
    expect(readFileSync(DEFAULT_CONFIG_PATH, 'utf8')).toContain('tokens:');
  });

  it('freezes the result', () => {
    const c = parseConfig(RULES);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.redis)).toBe(true);
    expect(Object.isFrozen(c.tokens[0])).toBe(true);
  });

  it('applies environment overrides', () => {
    const c = parseConfig(RULES, {
      TOKENWATCH_REDIS_URL: 'redis://example:6380',
      TOKENWATCH_PORT: '9999',
      TOKENWATCH_AUDIT_PATH: '/tmp/x.db',
      TOKENWATCH_HMAC_KEY: 'a-long-enough-hmac-key',
    });
    expect(c.redis.url).toBe('redis://example:6380');
    expect(c.server.port).toBe(9999);
    expect(c.audit.path).toBe('/tmp/x.db');
    expect(c.audit.hmacKeys[0]?.id).toMatch(/^env-[0-9a-f]{8}$/);
    expect(c.audit.hmacKeys[0]?.key).toBe('a-long-enough-hmac-key');
  });

  it('audit.archive: off by default, from the environment, afterDays below retentionDays', () => {
    expect(parseConfig(RULES).audit.archive).toEqual({ afterDays: null });
    const c = parseConfig(RULES, {
      TOKENWATCH_ARCHIVE_AFTER_DAYS: '90',
      TOKENWATCH_ARCHIVE_DIR: '/srv/archive',
    });
    expect(c.audit.archive).toEqual({ afterDays: 90, dir: '/srv/archive' });
    expect(
      issuesOf('audit:\n  retentionDays: 30\n  archive:\n    afterDays: 30\n' + RULES),
    ).toEqual(['audit.archive.afterDays: must be less than audit.retentionDays (30)']);
    expect(issuesOf('audit:\n  archive:\n    afterDays: 0\n' + RULES)).toEqual([
      expect.stringMatching(/^audit\.archive\.afterDays: /),
    ]);
  });

  it('names the key path of every problem', () => {
    expect(issuesOf('server:\n  port: 99999\n' + RULES)).toEqual([
      expect.stringMatching(/^server\.port: /),
    ]);
    expect(issuesOf('tokens: []')[0]).toMatch(/^tokens: at least one token rule/);
    expect(issuesOf(`tokens:\n  - kind: Access\n    key: 'a:{token}'`)[0]).toMatch(
      /^tokens\[0\]\.kind: /,
    );
    expect(issuesOf(`tokens:\n  - kind: a\n    key: 'a:{token}:{token}'`)[0]).toMatch(
      /^tokens\[0\]\.key: placeholder \{token\} appears twice/,
    );
    expect(issuesOf(`tokens:\n  - kind: a\n    key: 'a:{sub}{token}'`)[0]).toMatch(
      /^tokens\[0\]\.key: .*separated/,
    );
    expect(issuesOf(`tokens:\n  - kind: a\n    key: 'plain-key'`)[0]).toMatch(
      /^tokens\[0\]\.key: template has no/,
    );
    expect(
      issuesOf(`tokens:\n  - kind: a\n    key: 'a:{token}'\n    joins: { sessionId: sid }`)[0],
    ).toMatch(/^tokens\[0\]\.joins\.sessionId: \{sid\} is not a placeholder/);
    expect(issuesOf(`redis:\n  url: http://x\n  typo: 1\n${RULES}`)).toEqual([
      expect.stringMatching(/^redis\.url: must start with redis:\/\//),
      expect.stringMatching(/^redis: .*typo/),
    ]);
    expect(issuesOf(RULES, { TOKENWATCH_PORT: 'eighty' })[0]).toMatch(
      /^server\.port \(from TOKENWATCH_PORT\): /,
    );
    expect(issuesOf(RULES, { TOKENWATCH_HMAC_KEY: 'short' })[0]).toMatch(/TOKENWATCH_HMAC_KEY.*16/);
  });

  it('rejects YAML that does not parse, with a line number', () => {
    expect(issuesOf('server: [\n')[0]).toMatch(/^<config>:\d+: /);
    expect(issuesOf('- a\n- b')[0]).toMatch(/must be a YAML mapping/);
  });
});
