import { type JWTVerifyGetKey, createRemoteJWKSet, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  BACKCHANNEL_LOGOUT_EVENT,
  logoutTokenToEvent,
  verifyLogoutToken,
} from '../../src/providers/logout-token.js';
import { type OidcIssuer, startOidcIssuer, unsignedJwt } from '../helpers/oidc-issuer.js';
import {
  PROVIDER_TEST_NOW,
  caught,
  fixtureJson,
  providerContext,
  providerFingerprinter,
} from '../helpers/provider-fixtures.js';

const CLIENT_ID = 's6BhdRkqt3';
let op: OidcIssuer;
let keys: JWTVerifyGetKey;
const nowSec = (): number => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  op = await startOidcIssuer();
  keys = createRemoteJWKSet(new URL(op.jwksUri));
});
afterAll(async () => {
  await op.close();
});

/** The spec example (§2.4) re-issued by the loopback OP, valid now. */
async function specToken(
  overrides: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  privateKey?: Parameters<OidcIssuer['signLogoutToken']>[2],
): Promise<string> {
  const example = fixtureJson('oidc', 'logout-token.json') as Record<string, unknown>;
  return op.signLogoutToken(
    {
      ...example,
      iss: op.issuer,
      aud: CLIENT_ID,
      iat: nowSec(),
      exp: nowSec() + 120,
      ...overrides,
    },
    header,
    privateKey,
  );
}

const verify = (token: string) =>
  verifyLogoutToken(token, keys, { issuer: op.issuer, audience: CLIENT_ID });
const rejection = (token: string) => caught(() => verify(token));

describe('verifyLogoutToken: accepted', () => {
  it('the spec example; maps to session_revoked with a fingerprinted sid', async () => {
    const verified = await verify(await specToken());
    expect(verified).toMatchObject({
      jti: 'bWJq',
      iss: op.issuer,
      sub: '248289761001',
      sid: '08a5019c-17e1-4977-8f42-65a12843ea02',
    });
    const event = logoutTokenToEvent(verified, providerContext());
    expect(event).toEqual({
      provider: 'oidc',
      id: 'bWJq',
      type: 'session_revoked',
      occurredAt: verified.iat * 1000,
      observedAt: PROVIDER_TEST_NOW,
      subject: '248289761001',
      clientId: CLIENT_ID,
      sessionId: providerFingerprinter().of('08a5019c-17e1-4977-8f42-65a12843ea02'),
      tokenIds: [],
      outcome: 'success',
      vendorType: BACKCHANNEL_LOGOUT_EVENT,
      attributes: { issuer: op.issuer },
    });
    expect(JSON.stringify(event)).not.toContain('08a5019c-17e1-4977-8f42-65a12843ea02');
  });

  it('typ absent, sid only, sub only, RS256', async () => {
    await expect(verify(await specToken({}, { typ: undefined }))).resolves.toBeDefined();
    await expect(verify(await specToken({ sub: undefined }))).resolves.toMatchObject({
      sid: '08a5019c-17e1-4977-8f42-65a12843ea02',
    });
    const subOnly = await verify(await specToken({ sid: undefined }));
    expect(subOnly.sid).toBeUndefined();
    expect(logoutTokenToEvent(subOnly, providerContext()).sessionId).toBeUndefined();
    await expect(
      verify(await specToken({}, { alg: 'RS256', kid: op.rs256!.kid })),
    ).resolves.toBeDefined();
  });
});

describe('verifyLogoutToken: rejected', () => {
  it('wrong issuer', async () => {
    expect(await rejection(await specToken({ iss: 'https://evil.example' }))).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      status: 400,
      details: { error: 'invalid_request', reason: 'wrong_issuer' },
    });
  });

  it('wrong audience', async () => {
    expect(await rejection(await specToken({ aud: 'another-client' }))).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      details: { reason: 'wrong_audience' },
    });
  });

  it('expired', async () => {
    const token = await specToken({ iat: nowSec() - 600, exp: nowSec() - 300 });
    expect(await rejection(token)).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      details: { reason: 'expired' },
    });
  });

  it.each(['exp', 'iat', 'jti', 'events'])('missing %s', async (claim) => {
    expect(await rejection(await specToken({ [claim]: undefined }))).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      details: { reason: 'missing_claim', claim },
    });
  });

  it('nonce present', async () => {
    expect(await rejection(await specToken({ nonce: 'n-0S6_WzA2Mj' }))).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      details: { reason: 'nonce_present' },
    });
  });

  it('neither sub nor sid', async () => {
    expect(await rejection(await specToken({ sub: undefined, sid: undefined }))).toMatchObject({
      details: { reason: 'no_sub_or_sid' },
    });
  });

  it('events without the back-channel logout member, or with a non-object value', async () => {
    for (const events of [
      { 'https://schemas.openid.net/secevent/caep/event-type/session-revoked': {} },
      { [BACKCHANNEL_LOGOUT_EVENT]: 'yes' },
      [],
    ]) {
      expect(await rejection(await specToken({ events }))).toMatchObject({
        code: 'ERR_WEBHOOK_TOKEN_INVALID',
        details: { reason: 'events_invalid' },
      });
    }
  });

  it('a typ other than logout+jwt (an ID Token "JWT", a SET)', async () => {
    for (const typ of ['JWT', 'secevent+jwt', 'at+jwt']) {
      expect(await rejection(await specToken({}, { typ }))).toMatchObject({
        code: 'ERR_WEBHOOK_TOKEN_INVALID',
        details: { reason: 'wrong_typ' },
      });
    }
  });

  it('iat far in the future', async () => {
    expect(
      await rejection(await specToken({ iat: nowSec() + 3600, exp: nowSec() + 7200 })),
    ).toMatchObject({
      details: { reason: 'iat_in_future' },
    });
  });

  it('bad signature (another key under the same kid) and unknown key', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    expect(await rejection(await specToken({}, {}, { privateKey }))).toMatchObject({
      code: 'ERR_WEBHOOK_SIGNATURE',
      details: { reason: 'bad_signature' },
    });
    expect(await rejection(await specToken({}, { kid: 'rogue' }, { privateKey }))).toMatchObject({
      code: 'ERR_WEBHOOK_SIGNATURE',
      details: { reason: 'unknown_key' },
    });
  });

  it('alg none', async () => {
    const token = unsignedJwt(
      {
        iss: op.issuer,
        aud: CLIENT_ID,
        iat: nowSec(),
        exp: nowSec() + 60,
        jti: 'x',
        sid: 's',
        events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
      },
      { typ: 'logout+jwt' },
    );
    expect(await rejection(token)).toMatchObject({
      code: 'ERR_WEBHOOK_SIGNATURE',
      details: { reason: 'alg_not_allowed' },
    });
  });

  it('garbage and oversized tokens', async () => {
    expect(await rejection('definitely.not.ajwt')).toMatchObject({ code: 'ERR_WEBHOOK_MALFORMED' });
    expect(await rejection('')).toMatchObject({ code: 'ERR_WEBHOOK_MALFORMED' });
    expect(await rejection('a'.repeat(20_000))).toMatchObject({ code: 'ERR_WEBHOOK_TOO_LARGE' });
  });
});
