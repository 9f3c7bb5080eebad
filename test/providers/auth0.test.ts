import { describe, expect, it } from 'vitest';

import { mapAuth0Type, normalizeAuth0, parseAuth0Body } from '../../src/providers/auth0.js';
import {
  caught,
  fixtureJson,
  fixtureText,
  providerContext,
  providerFingerprinter,
} from '../helpers/provider-fixtures.js';

const fp = providerFingerprinter();
const ctx = providerContext();
const SESSION = 'zT5mK8qW2rX9vB1nL4pJ7hG3fD6sA0cE';

describe('parseAuth0Body', () => {
  it('JSON array, JSON lines and single object give the same elements', () => {
    const array = parseAuth0Body(fixtureText('auth0', 'log-stream-array.json'));
    const lines = parseAuth0Body(fixtureText('auth0', 'log-stream.jsonl'));
    const single = parseAuth0Body(fixtureText('auth0', 'log-stream-object.json'));
    expect(array).toHaveLength(9);
    expect(lines).toEqual(array.slice(2, 5));
    expect(single).toEqual([array[5]]);
  });

  it('honours an NDJSON content type even for a single line', () => {
    const one = JSON.stringify({ log_id: '1', data: { type: 's', date: '2024-01-01T00:00:00Z' } });
    expect(parseAuth0Body(one, { contentType: 'application/x-ndjson' })).toHaveLength(1);
  });

  it('accepts a Buffer body', () => {
    const buf = Buffer.from(fixtureText('auth0', 'log-stream.jsonl'));
    expect(parseAuth0Body(buf)).toHaveLength(3);
  });

  it.each([
    ['empty', '   '],
    ['not JSON', 'hello world'],
    ['a bare number', '42'],
    ['broken JSON lines', '{"a":1}\n{"b":'],
    ['truncated array', '[{"a":1},'],
  ])('%s -> ERR_WEBHOOK_MALFORMED', async (_name, body) => {
    const err = await caught(() => parseAuth0Body(body));
    expect(err).toMatchObject({ code: 'ERR_WEBHOOK_MALFORMED', status: 400 });
  });

  it('names the failing line of a JSON-lines body', async () => {
    const err = await caught(() => parseAuth0Body('{"a":1}\n{"b":2}\n{"c":'));
    expect((err as Error).message).toContain('line 3');
  });

  it('refuses more events than maxEvents (array and lines) with ERR_WEBHOOK_TOO_LARGE', async () => {
    const el = '{"log_id":"1","data":{"type":"s","date":"2024-01-01T00:00:00Z"}}';
    const array = `[${Array.from({ length: 10_001 }, () => el).join(',')}]`;
    const lines = Array.from({ length: 10_001 }, () => el).join('\n');
    expect(await caught(() => parseAuth0Body(array))).toMatchObject({
      code: 'ERR_WEBHOOK_TOO_LARGE',
      status: 413,
    });
    expect(await caught(() => parseAuth0Body(lines))).toMatchObject({
      code: 'ERR_WEBHOOK_TOO_LARGE',
    });
    expect(parseAuth0Body(`[${el},${el},${el}]`, { maxEvents: 3 })).toHaveLength(3);
    expect(
      await caught(() => parseAuth0Body(`[${el},${el},${el}]`, { maxEvents: 2 })),
    ).toMatchObject({ code: 'ERR_WEBHOOK_TOO_LARGE' });
  });

  it('refuses nesting deeper than 64 before parsing, but not brackets inside strings', async () => {
    const deep = `${'['.repeat(65)}${']'.repeat(65)}`;
    const err = await caught(() => parseAuth0Body(deep));
    expect(err).toMatchObject({ code: 'ERR_WEBHOOK_MALFORMED', details: { limit: 'depth' } });
    const deepObject = `{"a":${'{"a":'.repeat(70)}1${'}'.repeat(71)}`;
    expect(await caught(() => parseAuth0Body(deepObject))).toMatchObject({
      code: 'ERR_WEBHOOK_MALFORMED',
      details: { limit: 'depth' },
    });
    const bracketsInString = JSON.stringify([{ description: '['.repeat(500) + '"\\' }]);
    expect(parseAuth0Body(bracketsInString)).toHaveLength(1);
  });
});

describe('normalizeAuth0', () => {
  const events = normalizeAuth0(parseAuth0Body(fixtureText('auth0', 'log-stream-array.json')), ctx);

  it('maps type codes to domain types and outcomes', () => {
    expect(events.map((e) => [e.vendorType, e.type, e.outcome])).toEqual([
      ['s', 'session_started', 'success'],
      ['seacft', 'token_issued', 'success'],
      ['sertft', 'token_refreshed', 'success'],
      ['ferrt', 'refresh_reuse_detected', 'failure'],
      ['srrt', 'token_revoked', 'success'],
      ['slo', 'session_ended', 'success'],
      ['oidc_backchannel_logout_succeeded', 'session_revoked', 'success'],
      ['feacft', 'token_issued', 'failure'],
      ['sapi', 'other', 'unknown'],
    ]);
  });

  it('uses log_id, date, user_id and client_id', () => {
    const e = events[1]!;
    expect(e.id).toBe('90020240430091500120008000000000000001223372036854775802');
    expect(e.occurredAt).toBe(Date.parse('2024-04-30T09:15:00.120Z'));
    expect(e.subject).toBe('auth0|6630a1b2c3d4e5f6a7b8c9d0');
    expect(e.clientId).toBe('Xb8Yt2Lm9Qp4Rs7Vw1Zn3Kc6Hd0Fg5Jj');
    expect(e.tokenIds).toEqual([fp.of('9c1f4e7a2b5d8c0e3f6a9b2c5d8e1f4a')]);
    expect(e.attributes).toMatchObject({ audience: 'https://api.payments.example.com' });
  });

  it('sertft: access_token_jti, refresh session and family are fingerprinted, counter kept', () => {
    const e = events[2]!;
    expect(e.tokenIds).toEqual([fp.of('3e6b9d2f5a8c1e4b7d0a3f6c9e2b5d8a')]);
    expect(e.sessionId).toBe(fp.of(SESSION));
    expect(e.rotation).toEqual({
      previous: [],
      next: [],
      familyId: fp.of('rtf_7Hk2Mn9Pq4Rs1Tv6Wx'),
    });
    expect(e.attributes.tokenCounter).toBe(2);
  });

  it('ferrt: the reused family is fingerprinted so it joins the earlier sertft', () => {
    expect(events[3]?.rotation).toEqual(events[2]?.rotation);
    expect(events[3]?.tokenIds).toEqual([]);
  });

  it('srrt: credential_id is the revoked token, grant fingerprinted, session from details', () => {
    const e = events[4]!;
    expect(e.tokenIds).toEqual([fp.of('rt_Vb4Nm7Kp1Lq8Zx2Ws5')]);
    expect(e.attributes.grantId).toBe(fp.of('gr_Yt6Re3Wq9Po2Iu5Ky8'));
    expect(e.sessionId).toBe(fp.of(SESSION));
  });

  it('never outputs a raw jti, refresh token id, grant id, family id or session id', () => {
    const json = JSON.stringify(events);
    for (const raw of [
      '9c1f4e7a2b5d8c0e3f6a9b2c5d8e1f4a',
      '3e6b9d2f5a8c1e4b7d0a3f6c9e2b5d8a',
      'rt_Vb4Nm7Kp1Lq8Zx2Ws5',
      'gr_Yt6Re3Wq9Po2Iu5Ky8',
      'rtf_7Hk2Mn9Pq4Rs1Tv6Wx',
      SESSION,
    ]) {
      expect(json).not.toContain(raw);
    }
  });

  it('accepts Management API pages of bare log objects', () => {
    const page = normalizeAuth0(fixtureJson('auth0', 'management-api-page.json'), ctx);
    expect(page.map((e) => [e.id.slice(-2), e.type, e.outcome])).toEqual([
      ['10', 'token_issued', 'success'],
      ['11', 'token_refreshed', 'failure'],
      ['12', 'token_revoked', 'success'],
    ]);
    expect(page[0]?.tokenIds).toEqual([fp.of('b7e0a3d6f9c2e5b8a1d4f7c0e3b6a9d2')]);
  });

  it('accepts a single element (JSON object format)', () => {
    const [e] = normalizeAuth0(fixtureJson('auth0', 'log-stream-object.json'), ctx);
    expect(e?.type).toBe('session_ended');
    expect(e?.sessionId).toBe(fp.of(SESSION));
  });

  it('rejects elements without log id, type or date, naming the field', async () => {
    const noId = await caught(() =>
      normalizeAuth0([{ data: { type: 's', date: '2024-01-01T00:00:00Z' } }], ctx),
    );
    expect(noId).toMatchObject({ code: 'ERR_WEBHOOK_MALFORMED' });
    expect((noId as Error).message).toContain('log_id');
    const noDate = await caught(() => normalizeAuth0([{ log_id: '1', data: { type: 's' } }], ctx));
    expect((noDate as Error).message).toContain('[0].data.date');
    const badType = await caught(() =>
      normalizeAuth0([{ log_id: '1', type: 5, date: '2024-01-01T00:00:00Z' }], ctx),
    );
    expect((badType as Error).message).toContain('type');
  });

  it('maps unknown codes to other', () => {
    expect(mapAuth0Type('gd_enrollment_complete')).toEqual({ type: 'other', outcome: 'unknown' });
    expect(mapAuth0Type('fertft')).toEqual({ type: 'token_refreshed', outcome: 'failure' });
  });
});
