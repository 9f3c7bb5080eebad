import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keycloakSignature, KEYCLOAK_SIGNATURE_HEADER } from '../providers/keycloak-signature.js';
import { AUTH0_LOGS_PATH } from '../providers/push/auth0-logs.js';
import { KEYCLOAK_EVENTS_PATH } from '../providers/push/keycloak-events.js';
import { PROVIDER_ROUTE_PREFIX } from '../providers/push/provider-routes.js';
import type { Login, TokenTraffic } from './traffic.js';

/** Shared secrets of the demo's provider endpoints (random per run). */
export interface WebhookSecrets {
  auth0Token: string;
  keycloakSecret: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function post(url: string, body: string, headers: Record<string, string>): Promise<string> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    if (res.ok) return `${res.status}`;
    const text = await res.text();
    const code = /"code":"([A-Z_]+)"/.exec(text)?.[1];
    return `${res.status}${code ? ` ${code}` : ''}`;
  } catch (err) {
    return `failed: ${(err as Error).message}`;
  }
}

/**
 * Provider revocations as the IdPs push them: an Auth0 Log Stream delivery of refresh token
 * revocations (`srrt`, `credential_id` = the refresh token id) and a signed Keycloak `LOGOUT`
 * event. The application then deletes the revoked keys, except one refresh token it "forgets":
 * tokenwatch measures the propagation and opens a `revocation_not_propagated` finding once the
 * forgotten token outlives the revocation SLA.
 */
export async function providerRevocations(
  baseUrl: string,
  secrets: WebhookSecrets,
  redis: Redis,
  traffic: TokenTraffic,
): Promise<string> {
  const victims: Login[] = traffic.logins.slice(0, 4);
  const revoked = victims.slice(0, 3);
  const logout = victims[3];
  const now = new Date().toISOString();
  const auth0Body = JSON.stringify(
    revoked.map((l, i) => {
      const logId = `demo-${randomUUID()}`;
      return {
        log_id: logId,
        data: {
          log_id: logId,
          date: now,
          type: 'srrt',
          description: 'Successful Refresh Token revocation',
          client_id: 'demo-spa',
          client_name: 'tokenwatch demo',
          user_id: `auth0|demo-user-${i}`,
          details: { credential_id: l.refresh },
        },
      };
    }),
  );
  const auth0 = await post(`${baseUrl}${PROVIDER_ROUTE_PREFIX}${AUTH0_LOGS_PATH}`, auth0Body, {
    authorization: `Bearer ${secrets.auth0Token}`,
  });
  let keycloak = 'skipped (not enough logins)';
  if (logout) {
    const kcBody = JSON.stringify({
      id: randomUUID(),
      time: Date.now(),
      type: 'LOGOUT',
      realmId: 'demo',
      clientId: 'demo-spa',
      userId: 'demo-user-kc',
      sessionId: logout.sid,
      ipAddress: '192.0.2.10',
    });
    keycloak = await post(`${baseUrl}${PROVIDER_ROUTE_PREFIX}${KEYCLOAK_EVENTS_PATH}`, kcBody, {
      [KEYCLOAK_SIGNATURE_HEADER]: keycloakSignature(kcBody, secrets.keycloakSecret),
    });
  }
  // The application reacts: it deletes what was revoked, a little later, and forgets one.
  await sleep(800);
  for (const l of revoked.slice(0, 2)) {
    await redis.del(`oauth:refresh:${l.refresh}`);
    traffic.forget(l.sid);
  }
  if (logout) await traffic.logout(logout);
  const forgotten = revoked[2];
  if (forgotten) traffic.forget(forgotten.sid); // stays in Redis: never propagated
  return (
    `Auth0 srrt x${revoked.length} -> ${auth0}, Keycloak LOGOUT -> ${keycloak}; ` +
    `2 revoked refresh tokens and the logged-out session deleted, 1 revoked token left in Redis`
  );
}
