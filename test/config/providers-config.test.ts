import { describe, expect, it } from 'vitest';

import { parseConfig } from '../../src/config/load.js';
import { isLoopbackHost, secureUrlProblem } from '../../src/config/providers-schema.js';
import { ConfigError } from '../../src/errors.js';

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
    return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('config was accepted');
}

describe('providers config', () => {
  it('has no provider enabled by default', () => {
    const c = parseConfig(RULES);
    expect(c.providers.okta).toBeUndefined();
    expect(c.providers.ssf).toBeUndefined();
    expect(c.providers.maxEvents).toBe(10_000);
    expect(c.providers.bodyLimit).toBeUndefined();
  });

  it('enables a provider from its environment variable', () => {
    const c = parseConfig(RULES, {
      TOKENWATCH_OKTA_SECRET: 'okta-secret-0123456789',
      TOKENWATCH_AUTH0_TOKEN: 'auth0-token-0123456789',
      TOKENWATCH_KEYCLOAK_SECRET: 'keycloak-secret-0123456789',
      TOKENWATCH_SSF_ISSUER: 'https://ssf.example.com',
      TOKENWATCH_SSF_AUDIENCE: 'https://tokenwatch.example.com',
      TOKENWATCH_OIDC_ISSUER: 'https://op.example.com',
      TOKENWATCH_OIDC_CLIENT_ID: 'rp-1',
    });
    expect(c.providers.okta).toMatchObject({
      secret: 'okta-secret-0123456789',
      header: 'authorization',
    });
    expect(c.providers.auth0?.token).toBe('auth0-token-0123456789');
    expect(c.providers.keycloak).toMatchObject({ signatureAlgorithm: 'sha256' });
    expect(c.providers.ssf).toMatchObject({
      discovery: 'ssf',
      audience: 'https://tokenwatch.example.com',
    });
    expect(c.providers.oidc).toMatchObject({ issuer: 'https://op.example.com', clientId: 'rp-1' });
  });

  it('names the environment variable in issues', () => {
    expect(issuesOf(RULES, { TOKENWATCH_OKTA_SECRET: 'short' })).toEqual([
      'providers.okta.secret (from TOKENWATCH_OKTA_SECRET): must be at least 16 characters',
    ]);
    const [issue] = issuesOf(RULES, { TOKENWATCH_SSF_ISSUER: 'https://ssf.example.com' });
    expect(issue).toContain('providers.ssf.audience');
    expect(issue).toContain('TOKENWATCH_SSF_AUDIENCE');
    expect(
      issuesOf(RULES, {
        TOKENWATCH_OIDC_ISSUER: 'http://op.example.com',
        TOKENWATCH_OIDC_CLIENT_ID: 'x',
      }),
    ).toEqual([
      'providers.oidc.issuer (from TOKENWATCH_OIDC_ISSUER): must be https (plain http only to a loopback address)',
    ]);
  });

  it('lets env complete a section started in the file', () => {
    const c = parseConfig(`${RULES}\nproviders:\n  ssf:\n    audience: aud-1\n`, {
      TOKENWATCH_SSF_ISSUER: 'https://ssf.example.com',
    });
    expect(c.providers.ssf).toMatchObject({ issuer: 'https://ssf.example.com', audience: 'aud-1' });
  });

  it('requires https issuers and API URLs except on loopback', () => {
    expect(secureUrlProblem('https://op.example.com/realms/x')).toBeUndefined();
    for (const ok of [
      'http://127.0.0.1:8080',
      'http://127.9.0.1',
      'http://localhost:3000/x',
      'http://[::1]:9000',
    ]) {
      expect(secureUrlProblem(ok), ok).toBeUndefined();
    }
    for (const bad of [
      'http://op.example.com',
      'http://128.0.0.1',
      'http://localhost.evil.com',
      'ftp://x',
      'https://u:p@h',
      'x',
    ]) {
      expect(secureUrlProblem(bad), bad).toBeDefined();
    }
    expect(isLoopbackHost('127.0.0.256')).toBe(false);
  });

  it('refuses a provider section that neither pushes nor polls, and ambiguous poll auth', () => {
    expect(issuesOf(`${RULES}\nproviders:\n  okta: { header: x-okta-secret }\n`)[0]).toMatch(
      /^providers\.okta\.secret: set secret/,
    );
    const both = issuesOf(`${RULES}
providers:
  auth0:
    poll:
      baseUrl: https://tenant.eu.auth0.com
      auth:
        apiToken: auth0-api-token-0123456789
        clientCredentials: { clientId: a, clientSecret: b }
`);
    expect(both).toEqual([
      'providers.auth0.poll.auth: set exactly one of apiToken or clientCredentials',
    ]);
  });

  it('lower-cases the Okta secret header and refuses unknown keys', () => {
    const c = parseConfig(
      `${RULES}\nproviders:\n  okta: { secret: okta-secret-0123456789, header: X-Okta-Auth }\n`,
    );
    expect(c.providers.okta?.header).toBe('x-okta-auth');
    expect(issuesOf(`${RULES}\nproviders:\n  github: {}\n`)[0]).toContain('providers');
  });
});
