import * as client from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';

/** The loopback issuer other tests rely on, checked with a real OIDC client. */
describe('test helper: loopback OIDC issuer', () => {
  let op: OidcIssuer;
  beforeAll(async () => {
    op = await startOidcIssuer({ clients: { poller: 'p@ss:word' } });
  });
  afterAll(async () => {
    await op.close();
    await op.close(); // idempotent
  });

  it('is discoverable by openid-client and serves client_credentials tokens (basic and post)', async () => {
    const discover = (auth: client.ClientAuth) =>
      client.discovery(new URL(op.issuer), 'poller', undefined, auth, {
        execute: [client.allowInsecureRequests],
      });
    const basic = await discover(client.ClientSecretBasic('p@ss:word'));
    expect(basic.serverMetadata().jwks_uri).toBe(op.jwksUri);
    const viaBasic = await client.clientCredentialsGrant(basic, { scope: 'okta.logs.read' });
    const post = await discover(client.ClientSecretPost('p@ss:word'));
    const viaPost = await client.clientCredentialsGrant(post);
    expect(viaBasic.token_type).toBe('bearer');
    expect(op.issuedTokens.map((t) => [t.accessToken, t.clientId, t.scope])).toEqual([
      [viaBasic.access_token, 'poller', 'okta.logs.read'],
      [viaPost.access_token, 'poller', undefined],
    ]);
  });

  it('refuses a wrong client secret', async () => {
    const config = await client.discovery(
      new URL(op.issuer),
      'poller',
      undefined,
      client.ClientSecretPost('wrong'),
      { execute: [client.allowInsecureRequests] },
    );
    await expect(client.clientCredentialsGrant(config)).rejects.toMatchObject({
      error: 'invalid_client',
    });
  });

  it('signs SETs and logout tokens verifiable with its JWKS', async () => {
    const keys = createRemoteJWKSet(new URL(op.jwksUri));
    const set = await op.signSet({ aud: 'r', events: { 'urn:x': {} } });
    expect(decodeProtectedHeader(set)).toMatchObject({ typ: 'secevent+jwt', kid: op.es256.kid });
    const { payload } = await jwtVerify(set, keys, { issuer: op.issuer });
    expect(payload).toMatchObject({ aud: 'r', iss: op.issuer });
    expect(typeof payload.jti).toBe('string');
    const logout = await op.signLogoutToken(
      { aud: 'c', sid: 's' },
      { alg: 'RS256', kid: op.rs256!.kid },
    );
    const verified = await jwtVerify(logout, keys, { typ: 'logout+jwt' });
    expect(verified.payload.exp).toBeGreaterThan(verified.payload.iat!);
  });
});
