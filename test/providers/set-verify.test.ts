import { type JWTVerifyGetKey, createRemoteJWKSet, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { normalizeSsf } from '../../src/providers/ssf.js';
import { setErrorBody, verifySet } from '../../src/providers/set-verify.js';
import { type OidcIssuer, startOidcIssuer, unsignedJwt } from '../helpers/oidc-issuer.js';
import { caught, fixtureJson, providerContext } from '../helpers/provider-fixtures.js';

const AUD = 'https://receiver.tokenwatch.test/ssf';
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

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

const opts = () => ({ issuer: op.issuer, audience: AUD });
const claims = (extra: Record<string, unknown> = {}) => ({
  aud: AUD,
  sub_id: { format: 'opaque', id: 'user-42' },
  events: { [SESSION_REVOKED]: { event_timestamp: nowSec() - 5 } },
  ...extra,
});

async function rejection(token: string, options = opts(), k: JWTVerifyGetKey = keys) {
  return caught(() => verifySet(token, k, options));
}

describe('verifySet: accepted', () => {
  it('an ES256 SET from the fixture, and its events normalize', async () => {
    const fixture = fixtureJson('ssf', 'caep-session-revoked-complex.json') as Record<
      string,
      unknown
    >;
    const token = await op.signSet({
      ...fixture,
      iss: op.issuer,
      aud: [AUD, 'other'],
      iat: nowSec(),
    });
    const set = await verifySet(token, keys, opts());
    expect(set.jti).toBe('24c63fb56e5a2d77a6b512616ca9fa25');
    expect(set.iss).toBe(op.issuer);
    expect(set.aud).toEqual([AUD, 'other']);
    expect(Object.keys(set.events)).toEqual([SESSION_REVOKED]);
    expect(set.header).toMatchObject({ alg: 'ES256', typ: 'secevent+jwt', kid: op.es256.kid });
    const r = normalizeSsf(set.payload, providerContext());
    expect('events' in r && r.events[0]?.type).toBe('session_revoked');
  });

  it('an RS256 SET, typ with the application/ prefix, iat a little in the future (skew)', async () => {
    const token = await op.signSet(claims({ iat: nowSec() + 30 }), {
      alg: 'RS256',
      kid: op.rs256!.kid,
      typ: 'application/secevent+jwt',
    });
    await expect(verifySet(token, keys, opts())).resolves.toMatchObject({ aud: [AUD] });
  });
});

describe('verifySet: rejected with the RFC 8935 err', () => {
  it('wrong issuer -> invalid_issuer', async () => {
    const err = await rejection(await op.signSet(claims({ iss: 'https://evil.example' })));
    expect(err).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      status: 400,
      details: { err: 'invalid_issuer', reason: 'wrong_issuer' },
    });
    expect(setErrorBody(err)).toMatchObject({ err: 'invalid_issuer' });
  });

  it('wrong audience -> invalid_audience', async () => {
    const err = await rejection(await op.signSet(claims({ aud: 'https://someone-else' })));
    expect(err).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      details: { err: 'invalid_audience', reason: 'wrong_audience' },
    });
  });

  it('expired (exp in the past) -> invalid_request', async () => {
    const err = await rejection(await op.signSet(claims({ exp: nowSec() - 3600 })));
    expect(err).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      details: { err: 'invalid_request', reason: 'expired' },
    });
  });

  it('older than maxAgeSec -> invalid_request', async () => {
    const token = await op.signSet(claims({ iat: nowSec() - 7200 }));
    await expect(verifySet(token, keys, opts())).resolves.toBeDefined();
    const err = await rejection(token, { ...opts(), maxAgeSec: 3600 } as ReturnType<typeof opts>);
    expect(err).toMatchObject({ details: { err: 'invalid_request', reason: 'expired' } });
  });

  it('iat in the future beyond the skew -> invalid_request', async () => {
    const err = await rejection(await op.signSet(claims({ iat: nowSec() + 600 })));
    expect(err).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      details: { err: 'invalid_request', reason: 'iat_in_future' },
    });
  });

  it.each(['iat', 'jti', 'events'])('missing %s -> invalid_request', async (claim) => {
    const err = await rejection(await op.signSet(claims({ [claim]: undefined })));
    expect(err).toMatchObject({
      code: 'ERR_WEBHOOK_TOKEN_INVALID',
      details: { err: 'invalid_request', reason: 'missing_claim', claim },
    });
  });

  it('events that are not objects -> invalid_request', async () => {
    for (const events of [{}, { [SESSION_REVOKED]: true }, 'x']) {
      const err = await rejection(await op.signSet(claims({ events })));
      expect(err).toMatchObject({ details: { err: 'invalid_request', reason: 'events_invalid' } });
    }
  });

  it('wrong or absent typ -> invalid_request', async () => {
    for (const typ of ['JWT', 'logout+jwt', undefined]) {
      const err = await rejection(await op.signSet(claims(), { typ }));
      expect(err).toMatchObject({
        code: 'ERR_WEBHOOK_TOKEN_INVALID',
        details: { err: 'invalid_request', reason: 'wrong_typ' },
      });
    }
  });

  it('signed by another key under the issuer kid -> authentication_failed', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const err = await rejection(await op.signSet(claims(), {}, { privateKey }));
    expect(err).toMatchObject({
      code: 'ERR_WEBHOOK_SIGNATURE',
      details: { err: 'authentication_failed', reason: 'bad_signature' },
    });
  });

  it('signed by a key the JWKS does not hold (unknown kid) -> invalid_key', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const err = await rejection(await op.signSet(claims(), { kid: 'rogue' }, { privateKey }));
    expect(err).toMatchObject({
      code: 'ERR_WEBHOOK_SIGNATURE',
      details: { err: 'invalid_key', reason: 'unknown_key' },
    });
  });

  it('alg none and HS256 are never accepted -> invalid_key', async () => {
    const none = unsignedJwt(
      { iss: op.issuer, aud: AUD, iat: nowSec(), jti: 'n', events: {} },
      { typ: 'secevent+jwt' },
    );
    expect(await rejection(none)).toMatchObject({
      code: 'ERR_WEBHOOK_SIGNATURE',
      details: { err: 'invalid_key', reason: 'alg_not_allowed' },
    });
    const hs = await op.signJwt(
      claims({ iss: op.issuer, iat: nowSec(), jti: 'h' }),
      { alg: 'HS256', typ: 'secevent+jwt' },
      {
        privateKey: new Uint8Array(32) as never,
      },
    );
    expect(await rejection(hs)).toMatchObject({ details: { reason: 'alg_not_allowed' } });
  });

  it('garbage, empty and oversized tokens -> typed errors', async () => {
    for (const token of ['not-a-jwt', 'a.b.c', '']) {
      expect(await rejection(token)).toMatchObject({
        code: 'ERR_WEBHOOK_MALFORMED',
        details: { err: 'invalid_request' },
      });
    }
    expect(await rejection('x'.repeat(70_000))).toMatchObject({
      code: 'ERR_WEBHOOK_TOO_LARGE',
      details: { err: 'invalid_request' },
    });
  });
});

describe('verifySet: signing keys unavailable', () => {
  it("a JWKS that cannot be fetched is ERR_PROVIDER_KEYS_UNAVAILABLE (503), not the sender's fault", async () => {
    const token = await op.signSet(claims());
    for (const url of ['http://127.0.0.1:1/jwks', `${op.issuer}/no-such-jwks`]) {
      const err = await rejection(token, opts(), createRemoteJWKSet(new URL(url)));
      expect(err).toMatchObject({
        code: 'ERR_PROVIDER_KEYS_UNAVAILABLE',
        status: 503,
        details: { reason: 'keys_unavailable' },
      });
      expect(setErrorBody(err)).toBeUndefined();
    }
  });
});
