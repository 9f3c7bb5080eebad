import { describe, expect, it } from 'vitest';

import type { ProviderEvent } from '../../src/domain/provider-event.js';
import { type SsfResult, normalizeSsf } from '../../src/providers/ssf.js';
import {
  caught,
  fixtureJson,
  providerContext,
  providerFingerprinter,
} from '../helpers/provider-fixtures.js';

const fp = providerFingerprinter();
const ctx = providerContext();
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';

function eventsOf(r: SsfResult): ProviderEvent[] {
  if (!('events' in r)) throw new Error('expected events, got a verification');
  return r.events;
}

describe('normalizeSsf', () => {
  it('CAEP session-revoked, opaque subject', () => {
    const [e, ...rest] = eventsOf(
      normalizeSsf(fixtureJson('ssf', 'caep-session-revoked-simple.json'), ctx),
    );
    expect(rest).toHaveLength(0);
    expect(e).toMatchObject({
      provider: 'ssf',
      id: '24c63fb56e5a2d77a6b512616ca9fa24',
      type: 'session_revoked',
      occurredAt: 1615304991000,
      subject: 'dMTlD|1600802906337.16|16008.16',
      vendorType: `${CAEP}session-revoked`,
      outcome: 'success',
      tokenIds: [],
    });
    expect(e?.attributes).toMatchObject({ txn: '8675309', subjectFormat: 'opaque' });
  });

  it('CAEP session-revoked, complex subject: user is the subject, session is fingerprinted', () => {
    const [e] = eventsOf(
      normalizeSsf(fixtureJson('ssf', 'caep-session-revoked-complex.json'), ctx),
    );
    expect(e?.subject).toBe('99beb27c-c1c2-4955-882a-e0dc4996fcbc');
    expect(e?.sessionId).toBe(fp.of('dMTlD|1600802906337.16|16008.16'));
    expect(e?.attributes).toMatchObject({
      subjectFormat: 'complex',
      subjectIssuer: 'https://idp.example.com/123456789/',
      tenant: '123456789',
      initiatingEntity: 'policy',
      reasonAdmin: 'Landspeed Policy Violation: C076E82F',
    });
    expect(JSON.stringify(e)).not.toContain('dMTlD|1600802906337.16|16008.16');
  });

  it('CAEP token-claims-change with a jwt_id subject: other, jti fingerprinted, claim names only', () => {
    const [e] = eventsOf(normalizeSsf(fixtureJson('ssf', 'caep-token-claims-change.json'), ctx));
    expect(e?.type).toBe('other');
    expect(e?.tokenIds).toEqual([fp.of('f61t6e20zdo3px56gepu8rzlsp4c1dpc0fx7')]);
    expect(e?.subject).toBeUndefined();
    expect(e?.attributes.changedClaims).toBe('trusted_network');
    expect(JSON.stringify(e)).not.toContain('f61t6e20zdo3px56gepu8rzlsp4c1dpc0fx7');
  });

  it('CAEP credential-change', () => {
    const [e] = eventsOf(normalizeSsf(fixtureJson('ssf', 'caep-credential-change.json'), ctx));
    expect(e).toMatchObject({ type: 'credential_changed', subject: 'jane.smith@example.com' });
    expect(e?.attributes).toMatchObject({ credentialType: 'fido2-roaming', changeType: 'create' });
  });

  it('RISC account-disabled with the legacy in-event subject; occurredAt falls back to iat', () => {
    const [e] = eventsOf(normalizeSsf(fixtureJson('ssf', 'risc-account-disabled.json'), ctx));
    expect(e).toMatchObject({
      type: 'account_disabled',
      subject: '7375626A656374',
      occurredAt: 1508184845000,
    });
    expect(e?.attributes.reason).toBe('hijacking');
  });

  it('RISC credential-compromise with an email subject', () => {
    const [e] = eventsOf(normalizeSsf(fixtureJson('ssf', 'risc-credential-compromise.json'), ctx));
    expect(e).toMatchObject({ type: 'credential_changed', subject: 'jane.smith@example.com' });
  });

  it('several events in one SET get ids jti#i, legacy sub and toe', () => {
    const events = eventsOf(normalizeSsf(fixtureJson('ssf', 'risc-multi-event.json'), ctx));
    expect(events.map((e) => [e.id, e.type, e.vendorType])).toEqual([
      ['4d3559ec67504aaba65d40b0363faad8#0', 'session_revoked', `${RISC}sessions-revoked`],
      ['4d3559ec67504aaba65d40b0363faad8#1', 'account_disabled', `${RISC}account-purged`],
    ]);
    expect(events.every((e) => e.subject === '7375626A656374')).toBe(true);
    expect(events.every((e) => e.occurredAt === 1615305100000)).toBe(true);
  });

  it('SSF verification is a distinct result carrying the state', () => {
    const r = normalizeSsf(fixtureJson('ssf', 'ssf-verification.json'), ctx);
    expect(r).toEqual({ verification: { state: 'VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo=' } });
  });

  it('a top-level sid and millisecond event_timestamps (early drafts) are handled', () => {
    const [e] = eventsOf(
      normalizeSsf(
        {
          jti: 'j1',
          iat: 1615305159,
          sid: 'sess-123',
          sub_id: { format: 'iss_sub', iss: 'https://idp', sub: 'u1' },
          events: { [`${CAEP}session-revoked`]: { event_timestamp: 1615304991643 } },
        },
        ctx,
      ),
    );
    expect(e?.sessionId).toBe(fp.of('sess-123'));
    expect(e?.occurredAt).toBe(1615304991643);
  });

  it('unknown event types map to other', () => {
    const [e] = eventsOf(
      normalizeSsf({ jti: 'j2', iat: 1, events: { 'urn:example:secevent:thing': {} } }, ctx),
    );
    expect(e?.type).toBe('other');
  });

  it.each([
    ['not an object', 'eyJ...'],
    ['no jti', { iat: 1, events: { [`${CAEP}session-revoked`]: {} } }],
    ['events not an object', { jti: 'a', iat: 1, events: [] }],
    ['no events', { jti: 'a', iat: 1, events: {} }],
    ['event body not an object', { jti: 'a', iat: 1, events: { [`${CAEP}session-revoked`]: 'x' } }],
    ['no timestamp at all', { jti: 'a', events: { [`${CAEP}session-revoked`]: {} } }],
  ])('%s -> ERR_WEBHOOK_MALFORMED', async (_name, payload) => {
    expect(await caught(() => normalizeSsf(payload, ctx))).toMatchObject({
      code: 'ERR_WEBHOOK_MALFORMED',
    });
  });
});
