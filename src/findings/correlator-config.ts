import type { Config } from '../config/schema.js';
import type { CorrelatorOptions, KindJoins, KindRule } from '../correlate/index.js';

/**
 * Correlator options from the config: `correlate:` thresholds plus, per token kind, the join
 * keys, maxTtlSeconds and requireProviderEvent of its (first) token rule.
 */
export function correlatorOptionsFrom(
  config: Pick<Config, 'tokens' | 'correlate'>,
): CorrelatorOptions {
  const kinds = new Map<string, KindRule>();
  for (const rule of config.tokens) {
    if (kinds.has(rule.kind)) continue;
    kinds.set(rule.kind, {
      kind: rule.kind,
      joins: rule.joins ?? inferJoins(rule.key),
      maxTtlSeconds: rule.maxTtlSeconds,
      requireProviderEvent: rule.requireProviderEvent,
    });
  }
  return { ...config.correlate, kinds: [...kinds.values()] };
}

/**
 * Join keys from placeholder names when a rule names none: {sid} carries the session id,
 * {token}/{jti} token ids, {sub} the subject, {client}/{client_id} the OAuth client.
 */
export function inferJoins(template: string): KindJoins {
  const names = new Set(
    [...template.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1] as string),
  );
  const joins: KindJoins = {};
  const tokenIds = ['token', 'jti'].filter((n) => names.has(n));
  if (tokenIds.length > 0) joins.tokenId = tokenIds;
  if (names.has('sid')) joins.sessionId = 'sid';
  if (names.has('sub')) joins.subject = 'sub';
  const client = ['client', 'client_id', 'clientId'].find((n) => names.has(n));
  if (client) joins.clientId = client;
  return joins;
}
