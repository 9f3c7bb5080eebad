import { describe, expect, it } from 'vitest';

import { parseConfig } from '../../src/config/load.js';
import { normalizeTyp } from '../../src/http/admin-auth.js';

const RULES = "tokens:\n  - kind: access_token\n    key: 'oauth:access:{token}'\n";

function issues(yaml: string): string[] {
  try {
    parseConfig(`${RULES}${yaml}`);
    return [];
  } catch (err) {
    return ((err as { issues?: { path: string }[] }).issues ?? []).map((i) => i.path);
  }
}

const OIDC = 'admin:\n  oidc:\n    issuer: https://idp.example.com\n    audience: tw\n';

describe('hardening defaults (issue #17)', () => {
  it('bounds every HTTP phase, webhook refusals and the SET / logout token age by default', () => {
    const c = parseConfig(
      `${RULES}providers:\n  ssf:\n    issuer: https://idp.example.com\n    audience: tw\n  oidc:\n    issuer: https://idp.example.com\n    clientId: rp\n`,
    );
    expect(c.server.timeouts).toEqual({
      requestSeconds: 30,
      headersSeconds: 10,
      keepAliveSeconds: 5,
      idleSeconds: 60,
    });
    expect(c.providers.refusals).toEqual({ perSource: 20, windowSeconds: 60, total: 200 });
    expect(c.providers.ssf?.maxAgeSeconds).toBe(86_400);
    expect(c.providers.oidc?.maxAgeSeconds).toBe(86_400);
    expect(parseConfig(`${RULES}${OIDC}`).admin?.oidc?.acceptedTypes).toEqual(['at+jwt']);
  });

  it('refuses a headers timeout longer than the request timeout', () => {
    expect(issues('server:\n  timeouts:\n    requestSeconds: 5\n    headersSeconds: 10\n')).toEqual(
      ['server.timeouts.headersSeconds'],
    );
  });

  it('never lets logout or SET token types into the admin typ allow-list', () => {
    expect(issues(`${OIDC}    acceptedTypes: [at+jwt, JWT]\n`)).toEqual([]);
    for (const t of ['logout+jwt', 'application/secevent+jwt', 'Logout+JWT'])
      expect(issues(`${OIDC}    acceptedTypes: ['${t}']\n`), t).toEqual([
        'admin.oidc.acceptedTypes[0]',
      ]);
  });

  it('compares typ case-insensitively without the application/ prefix (RFC 7515 §4.1.9)', () => {
    expect(normalizeTyp('application/AT+JWT')).toBe('at+jwt');
    expect(normalizeTyp('JWT')).toBe('jwt');
    expect(normalizeTyp(undefined)).toBeUndefined();
    expect(normalizeTyp(42)).toBeUndefined();
  });
});
