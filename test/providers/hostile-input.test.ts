import { describe, expect, it } from 'vitest';

import { isTokenwatchError } from '../../src/errors.js';
import { normalizeAuth0, parseAuth0Body } from '../../src/providers/auth0.js';
import { normalizeKeycloak } from '../../src/providers/keycloak.js';
import { normalizeOkta } from '../../src/providers/okta.js';
import { MAX_ATTRIBUTE_LENGTH, type NormalizeContext } from '../../src/providers/payload-reader.js';
import { normalizeSsf } from '../../src/providers/ssf.js';
import { caught, fixtureJson, providerContext } from '../helpers/provider-fixtures.js';
import { mulberry32 } from '../helpers/mulberry32.js';

/**
 * Every normalizer, fed hostile input, returns events or throws a TokenwatchError with a code:
 * never a TypeError, a RangeError or a stack overflow.
 */

const ctx = providerContext();
const MB = 'A'.repeat(1024 * 1024);

type Normalizer = (payload: unknown, ctx: NormalizeContext) => unknown;
const normalizers: [string, Normalizer, () => unknown, (n: number) => unknown][] = [
  [
    'okta',
    normalizeOkta,
    () => fixtureJson('okta', 'event-hook.json'),
    (n) => ({
      eventType: 'com.okta.event_hook',
      data: {
        events: Array.from({ length: n }, (_, i) => ({
          uuid: `u${i}`,
          eventType: 'user.session.start',
          published: '2024-01-01T00:00:00Z',
        })),
      },
    }),
  ],
  [
    'auth0',
    normalizeAuth0,
    () => fixtureJson('auth0', 'log-stream-array.json'),
    (n) =>
      Array.from({ length: n }, (_, i) => ({
        log_id: `l${i}`,
        type: 's',
        date: '2024-01-01T00:00:00Z',
      })),
  ],
  [
    'keycloak',
    normalizeKeycloak,
    () => fixtureJson('keycloak', 'events-admin-api.json'),
    (n) => Array.from({ length: n }, (_, i) => ({ id: `k${i}`, type: 'LOGIN', time: 1 })),
  ],
  [
    'ssf',
    normalizeSsf,
    () => fixtureJson('ssf', 'caep-session-revoked-complex.json'),
    (n) => ({
      jti: 'j',
      iat: 1,
      events: Object.fromEntries(Array.from({ length: n }, (_, i) => [`urn:e:${i}`, {}])),
    }),
  ],
];

function deep(levels: number): unknown {
  let v: unknown = { leaf: true };
  for (let i = 0; i < levels; i++) v = { nested: v };
  return v;
}

const JUNK: unknown[] = [
  null,
  undefined,
  0,
  -1,
  Number.NaN,
  1e308,
  true,
  '',
  'x',
  MB,
  [],
  [null],
  {},
  { length: 5 },
  '2024-13-45T99:99:99Z',
  { toString: 'nope' },
  Object.create(null) as unknown,
];

/** Replaces random leaves and branches of `value` with junk. */
function mutate(value: unknown, rand: () => number): unknown {
  if (rand() < 0.08) return JUNK[Math.floor(rand() * JUNK.length)];
  if (Array.isArray(value)) return value.map((v) => mutate(v, rand));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mutate(v, rand)]));
  }
  return value;
}

function expectTypedOrOk(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!isTokenwatchError(err)) throw err;
    expect(err.code).toMatch(/^ERR_WEBHOOK_/);
  }
}

describe.each(normalizers)(
  '%s normalizer under hostile input',
  (_name, normalize, fixture, many) => {
    it.each([
      ['undefined', undefined],
      ['null', null],
      ['a number', 42],
      ['a 1 MB string', MB],
      ['an array of junk', [1, 'two', null, [], true]],
    ])('%s -> ERR_WEBHOOK_MALFORMED', async (_label, payload) => {
      expect(await caught(() => normalize(payload, ctx))).toMatchObject({
        code: 'ERR_WEBHOOK_MALFORMED',
      });
    });

    it('10 001 events -> ERR_WEBHOOK_TOO_LARGE; 10 000 pass; the limit is configurable', async () => {
      expect(await caught(() => normalize(many(10_001), ctx))).toMatchObject({
        code: 'ERR_WEBHOOK_TOO_LARGE',
        status: 413,
      });
      const ok = normalize(many(10_000), ctx);
      expect(Array.isArray(ok) ? ok : (ok as { events: unknown[] }).events).toHaveLength(10_000);
      expect(await caught(() => normalize(many(3), { ...ctx, maxEvents: 2 }))).toMatchObject({
        code: 'ERR_WEBHOOK_TOO_LARGE',
      });
    });

    it('nesting deeper than 64 levels -> ERR_WEBHOOK_MALFORMED (and 100 000 levels do not overflow)', async () => {
      for (const levels of [100, 100_000]) {
        const payload = fixture() as Record<string, unknown> | unknown[];
        const bomb = deep(levels);
        if (Array.isArray(payload)) (payload[0] as Record<string, unknown>).extra = bomb;
        else payload.extra = bomb;
        expect(await caught(() => normalize(payload, ctx))).toMatchObject({
          code: 'ERR_WEBHOOK_MALFORMED',
          details: { limit: 'depth' },
        });
      }
    });

    it('1 MB strings in descriptive fields are truncated, in ids rejected', async () => {
      const huge = fixture();
      const out = JSON.stringify(
        normalize(
          JSON.parse(
            JSON.stringify(huge)
              .replaceAll('198.51.100.23', MB)
              .replaceAll('jane.doe@example.com', MB)
              .replaceAll('Payments SPA', MB),
          ),
          ctx,
        ),
      );
      expect(out.length).toBeLessThan(200_000);
      expect(out).not.toContain('A'.repeat(MAX_ATTRIBUTE_LENGTH + 1));

      const first = (Array.isArray(huge) ? huge[0] : huge) as Record<string, unknown>;
      const target =
        _name === 'okta'
          ? ((huge as { data: { events: Record<string, unknown>[] } }).data.events[0] as Record<
              string,
              unknown
            >)
          : first;
      const idKey = { okta: 'uuid', auth0: 'log_id', keycloak: 'id', ssf: 'jti' }[_name]!;
      target[idKey] = MB;
      expect(await caught(() => normalize(huge, ctx))).toMatchObject({
        code: 'ERR_WEBHOOK_MALFORMED',
      });
    });

    it('500 random mutations of the fixture never crash untyped', () => {
      const rand = mulberry32(0x5eed + _name.length);
      for (let i = 0; i < 500; i++) {
        const mutated = mutate(fixture(), rand);
        expectTypedOrOk(() => normalize(mutated, ctx));
      }
    });
  },
);

describe('parseAuth0Body under hostile input', () => {
  it('random bytes and truncations give typed errors', () => {
    const text = JSON.stringify(fixtureJson('auth0', 'log-stream-array.json'));
    const rand = mulberry32(42);
    for (let i = 0; i < 300; i++) {
      const cut = text.slice(0, Math.floor(rand() * text.length));
      const noisy = cut + String.fromCharCode(Math.floor(rand() * 128));
      expectTypedOrOk(() => normalizeAuth0(parseAuth0Body(noisy), ctx));
    }
  });
});
