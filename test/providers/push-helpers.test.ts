import { describe, expect, it } from 'vitest';

import { TokenwatchError } from '../../src/errors.js';
import { parseLinks } from '../../src/providers/poll/page-fetcher.js';
import { secretMatches } from '../../src/providers/push/push-context.js';
import { classify, rejectionBody } from '../../src/providers/push/rejection.js';

describe('secretMatches', () => {
  it('matches only the exact secret', () => {
    expect(secretMatches('s3cret-s3cret-s3cret', 's3cret-s3cret-s3cret')).toBe(true);
    expect(secretMatches('s3cret-s3cret-s3cre', 's3cret-s3cret-s3cret')).toBe(false);
    expect(secretMatches(undefined, 's3cret-s3cret-s3cret')).toBe(false);
    expect(secretMatches('', '')).toBe(false);
  });
});

describe('parseLinks', () => {
  it('parses RFC 8288 Link headers with several relations, leaving targets unresolved', () => {
    const links = parseLinks(
      '<https://dev-1.okta.com/api/v1/logs?after=a1&limit=2>; rel="self", </api/v1/logs?after=b2>; rel="next"',
    );
    expect(links.get('next')).toBe('/api/v1/logs?after=b2');
    expect(links.get('self')).toBe('https://dev-1.okta.com/api/v1/logs?after=a1&limit=2');
  });
});

describe('rejection dialects', () => {
  it('maps errors to a fixed reason and each protocol body', () => {
    const replay = new TokenwatchError('ERR_WEBHOOK_REPLAY', 'replayed');
    const c = classify(replay);
    expect(c.reason).toBe('replay');
    expect(rejectionBody(c, 'set')).toEqual({ err: 'invalid_request', description: 'replayed' });
    expect(rejectionBody(c, 'oauth')).toEqual({
      error: 'invalid_request',
      error_description: 'replayed',
    });
    expect(rejectionBody(c, 'typed')).toMatchObject({ error: { code: 'ERR_WEBHOOK_REPLAY' } });
    const tooLarge = classify(
      Object.assign(new Error('Request body is too large'), { statusCode: 413 }),
    );
    expect(tooLarge).toMatchObject({
      status: 413,
      code: 'ERR_WEBHOOK_TOO_LARGE',
      reason: 'too_large',
    });
    expect(classify(new Error('boom'))).toMatchObject({ status: 500, reason: 'unavailable' });
    const degraded = classify(new TokenwatchError('ERR_AUDIT_DEGRADED', 'x'));
    expect(rejectionBody(degraded, 'set')).toMatchObject({ error: { code: 'ERR_AUDIT_DEGRADED' } });
  });
});
