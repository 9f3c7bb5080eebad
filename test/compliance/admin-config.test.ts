import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { adminAuthConfigured } from '../../src/config/admin-schema.js';
import { parseConfig } from '../../src/config/load.js';

const RULES = "tokens:\n  - kind: access_token\n    key: 'oauth:access:{token}'\n";
const sha = (v: string) => createHash('sha256').update(v).digest('hex');

function issues(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(`${RULES}${yaml}`, env);
    return [];
  } catch (err) {
    return ((err as { issues?: { path: string }[] }).issues ?? []).map((i) => i.path);
  }
}

describe('admin config', () => {
  it('is absent by default: loopback only', () => {
    const c = parseConfig(RULES);
    expect(c.admin).toBeUndefined();
    expect(adminAuthConfigured(c.admin)).toBe(false);
    expect(adminAuthConfigured(parseConfig(`${RULES}admin:\n  maxPeriodDays: 30\n`).admin)).toBe(
      false,
    );
  });

  it('holds token hashes only; TOKENWATCH_ADMIN_TOKENS is hashed at load and never kept raw', () => {
    const raw = 'raw-admin-token-from-env-0123456789';
    const bare = 'another-raw-admin-token-abcdefgh';
    const c = parseConfig(
      `${RULES}admin:\n  tokens:\n    - name: auditor\n      sha256: ${sha('x').toUpperCase()}\n`,
      {
        TOKENWATCH_ADMIN_TOKENS: ` ci-bot:${raw} , ${bare}`,
      },
    );
    expect(c.admin?.tokens).toEqual([
      { name: 'auditor', sha256: sha('x') },
      { name: 'ci-bot', sha256: sha(raw) },
      { name: `env-${sha(bare).slice(0, 8)}`, sha256: sha(bare) },
    ]);
    expect(JSON.stringify(c)).not.toContain(raw);
    expect(JSON.stringify(c)).not.toContain(bare);
    expect(adminAuthConfigured(c.admin)).toBe(true);
    expect(Object.isFrozen(c.admin)).toBe(true);
  });

  it('names the bad keys', () => {
    expect(issues('', { TOKENWATCH_ADMIN_TOKENS: 'bot:short' })[0]).toMatch(
      /^admin\.tokens \(TOKENWATCH_ADMIN_TOKENS entry 1\)/,
    );
    expect(issues(`admin:\n  tokens:\n    - name: a\n      sha256: abc\n`)).toEqual([
      'admin.tokens[0].sha256',
    ]);
    expect(
      issues(
        `admin:\n  tokens:\n    - name: a\n      sha256: ${sha('1')}\n    - name: a\n      sha256: ${sha('2')}\n`,
      ),
    ).toEqual(['admin.tokens[1].name']);
    expect(
      issues(`admin:\n  oidc:\n    issuer: http://idp.example.com\n    audience: tw\n`),
    ).toEqual(['admin.oidc.issuer']);
    expect(issues(`admin:\n  metrics:\n    username: prom\n`)).toEqual([
      'admin.metrics.passwordSha256',
    ]);
    expect(issues(`admin:\n  metrics: {}\n`)).toEqual(['admin.metrics']);
    expect(
      issues(`admin:\n  oidc:\n    issuer: https://idp.example.com\n    audience: [tw, tw2]\n`),
    ).toEqual([]);
  });
});
