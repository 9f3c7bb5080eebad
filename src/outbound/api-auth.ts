import {
  ClientSecretPost,
  type Configuration,
  allowInsecureRequests,
  clientCredentialsGrant,
  discovery,
} from 'openid-client';

import type { PollAuthConfig } from '../config/providers-schema.js';
import { TokenwatchError } from '../errors.js';
import { confineUrl } from './origin-guard.js';

/** The `Authorization` header value for a provider API request. */
export interface ApiAuth {
  header(): Promise<string>;
  /** The API refused the credential (401): fetch a fresh one next time. */
  invalidate(): void;
}

/** Defaults a provider fills in for client credentials (issuer to discover, audience). */
export interface ApiAuthDefaults {
  /** `SSWS` for Okta API tokens, `Bearer` otherwise. */
  staticScheme: 'SSWS' | 'Bearer';
  issuer: string;
  audience?: string;
  scope?: string;
}

/** Refresh this long before `expires_in` runs out. */
const EXPIRY_MARGIN_MS = 30_000;

/**
 * A static API token, or an OAuth access token from the client credentials grant (RFC 6749
 * §4.4) obtained with openid-client after discovering the issuer, cached until shortly before it
 * expires.
 */
export function createApiAuth(
  config: PollAuthConfig,
  defaults: ApiAuthDefaults,
  now: () => number = Date.now,
): ApiAuth {
  if (config.apiToken !== undefined) {
    const value = `${defaults.staticScheme} ${config.apiToken}`;
    return { header: () => Promise.resolve(value), invalidate: () => undefined };
  }
  const cc = config.clientCredentials;
  if (!cc) throw new TokenwatchError('ERR_CONFIG_INVALID', 'poll.auth has no credential');
  let oidc: Promise<Configuration> | undefined;
  let cached: { value: string; until: number } | undefined;

  const fetchToken = async (): Promise<string> => {
    const issuer = new URL(cc.issuer ?? defaults.issuer);
    oidc ??= discovery(issuer, cc.clientId, undefined, ClientSecretPost(cc.clientSecret), {
      timeout: 10,
      ...(issuer.protocol === 'http:' ? { execute: [allowInsecureRequests] } : {}),
    });
    let configuration: Configuration;
    try {
      configuration = await oidc;
    } catch (err) {
      oidc = undefined;
      throw pollAuthError('issuer discovery failed', err);
    }
    // The client secret goes to the token endpoint the discovery document names: a document
    // that names another origin (or a userinfo / encoded trick) is refused, never followed.
    const tokenEndpoint = configuration.serverMetadata().token_endpoint;
    if (tokenEndpoint !== undefined) {
      try {
        confineUrl(tokenEndpoint, { base: new URL(issuer.origin) }, 'offsite_url');
      } catch (err) {
        oidc = undefined;
        throw pollAuthError('token endpoint refused', err);
      }
    }
    const params: Record<string, string> = {};
    const scope = cc.scope ?? defaults.scope;
    const audience = cc.audience ?? defaults.audience;
    if (scope) params.scope = scope;
    if (audience) params.audience = audience;
    try {
      const res = await clientCredentialsGrant(configuration, params);
      const ttlMs = (res.expiresIn() ?? 300) * 1000;
      cached = {
        value: `Bearer ${res.access_token}`,
        until: now() + Math.max(ttlMs - EXPIRY_MARGIN_MS, ttlMs / 2),
      };
      return cached.value;
    } catch (err) {
      throw pollAuthError('client credentials grant failed', err);
    }
  };

  return {
    header: async () => (cached && now() < cached.until ? cached.value : fetchToken()),
    invalidate: () => {
      cached = undefined;
    },
  };
}

function pollAuthError(what: string, cause: unknown): TokenwatchError {
  const detail = cause instanceof Error ? `: ${cause.message.slice(0, 200)}` : '';
  const reason =
    (cause as { details?: { reason?: unknown } } | undefined)?.details?.reason ?? 'auth';
  return new TokenwatchError('ERR_PROVIDER_POLL', `${what}${detail}`, {
    cause,
    details: { reason },
  });
}
