import { createHmac } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import {
  keycloakSignature,
  verifyKeycloakSignature,
} from '../../src/providers/keycloak-signature.js';
import { caught, fixtureText } from '../helpers/provider-fixtures.js';

const SECRET = 'qlfwemke-A3jt6D8lz';
const body = fixtureText('keycloak', 'p2-access-login.json');
const good = createHmac('sha256', SECRET).update(body).digest('hex');

describe('verifyKeycloakSignature', () => {
  it('accepts the hex HMAC-SHA256 of the raw body (string or Buffer, any hex case)', () => {
    expect(keycloakSignature(body, SECRET)).toBe(good);
    expect(() => verifyKeycloakSignature(body, good, SECRET)).not.toThrow();
    expect(() =>
      verifyKeycloakSignature(Buffer.from(body), good.toUpperCase(), SECRET),
    ).not.toThrow();
  });

  it('supports the legacy HmacSHA1 setting', () => {
    const sha1 = createHmac('sha1', SECRET).update(body).digest('hex');
    expect(() => verifyKeycloakSignature(body, sha1, SECRET, { algorithm: 'sha1' })).not.toThrow();
    expect(() => verifyKeycloakSignature(body, sha1, SECRET)).toThrow();
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['repeated', [good, good]],
    ['not hex', 'z'.repeat(64)],
    ['too short', good.slice(0, 62)],
    ['another secret', createHmac('sha256', 'other').update(body).digest('hex')],
    ['one flipped bit', (good[0] === '0' ? '1' : '0') + good.slice(1)],
  ])('%s -> ERR_WEBHOOK_SIGNATURE', async (_name, header) => {
    const err = await caught(() => verifyKeycloakSignature(body, header, SECRET));
    expect(err).toMatchObject({ code: 'ERR_WEBHOOK_SIGNATURE', status: 401 });
  });

  it('a body changed by one byte fails', async () => {
    const err = await caught(() =>
      verifyKeycloakSignature(body.replace('LOGIN', 'LOGIM'), good, SECRET),
    );
    expect(err).toMatchObject({ code: 'ERR_WEBHOOK_SIGNATURE' });
  });

  it('refuses an empty secret as a configuration error', async () => {
    expect(await caught(() => verifyKeycloakSignature(body, good, ''))).toMatchObject({
      code: 'ERR_CONFIG_INVALID',
    });
  });
});
