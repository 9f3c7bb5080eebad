import type { ConfigIssue } from '../errors.js';

/**
 * Environment overrides of `providers.*` (secrets belong in the environment, not in YAML).
 * Setting any of a provider's variables creates its section, i.e. enables the provider.
 */

interface ProviderEnv {
  provider: 'okta' | 'auth0' | 'keycloak' | 'ssf' | 'oidc';
  /** env name -> key inside the provider's section. */
  vars: readonly (readonly [env: string, key: string])[];
}

const PROVIDER_ENV: readonly ProviderEnv[] = [
  { provider: 'okta', vars: [['TOKENWATCH_OKTA_SECRET', 'secret']] },
  { provider: 'auth0', vars: [['TOKENWATCH_AUTH0_TOKEN', 'token']] },
  { provider: 'keycloak', vars: [['TOKENWATCH_KEYCLOAK_SECRET', 'secret']] },
  {
    provider: 'ssf',
    vars: [
      ['TOKENWATCH_SSF_ISSUER', 'issuer'],
      ['TOKENWATCH_SSF_AUDIENCE', 'audience'],
    ],
  },
  {
    provider: 'oidc',
    vars: [
      ['TOKENWATCH_OIDC_ISSUER', 'issuer'],
      ['TOKENWATCH_OIDC_CLIENT_ID', 'clientId'],
    ],
  },
];

/** Every variable {@link applyProviderEnv} reads (for docs and tests). */
export const PROVIDER_ENV_VARS: readonly string[] = PROVIDER_ENV.flatMap((p) =>
  p.vars.map(([env]) => env),
);

/**
 * Merges the provider variables of `env` into `out.providers.<name>`, recording in `fromEnv`
 * which config path came from which variable so schema issues name the variable. A variable
 * whose partner (issuer + audience, issuer + client id) is set neither in the environment nor
 * in the file is reported here, naming both variables.
 */
export function applyProviderEnv(
  out: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  issues: ConfigIssue[],
  fromEnv: Map<string, string>,
): void {
  for (const p of PROVIDER_ENV) {
    const set = p.vars.filter(([name]) => env[name] !== undefined && env[name] !== '');
    if (set.length === 0) continue;
    const providers = section(out, 'providers', 'providers', issues);
    const target = providers && section(providers, p.provider, `providers.${p.provider}`, issues);
    if (!target) continue;
    for (const [name, key] of set) {
      target[key] = env[name];
      fromEnv.set(`providers.${p.provider}.${key}`, name);
    }
    for (const [name, key] of p.vars) {
      if (set.some(([n]) => n === name) || target[key] !== undefined) continue;
      issues.push({
        path: `providers.${p.provider}.${key}`,
        message: `required when ${set.map(([n]) => n).join(', ')} is set (set ${name} or the key)`,
      });
    }
  }
}

function section(
  root: Record<string, unknown>,
  name: string,
  path: string,
  issues: ConfigIssue[],
): Record<string, unknown> | undefined {
  const cur = root[name];
  if (cur === undefined || cur === null) {
    const fresh: Record<string, unknown> = {};
    root[name] = fresh;
    return fresh;
  }
  if (typeof cur !== 'object' || Array.isArray(cur)) {
    issues.push({ path, message: 'must be a mapping' });
    return undefined;
  }
  return cur as Record<string, unknown>;
}
