import { describe, expect, it } from 'vitest';

import {
  type AllowedTarget,
  OffsiteUrlError,
  confineUrl,
} from '../../src/outbound/origin-guard.js';

const target: AllowedTarget = { base: new URL('https://dev-1.okta.com'), path: '/api/v1/logs' };

function kindOf(raw: string, t = target): string {
  try {
    confineUrl(raw, t, 'offsite_link');
  } catch (err) {
    if (err instanceof OffsiteUrlError) return err.kind;
    throw err;
  }
  return 'accepted';
}

describe('confineUrl', () => {
  it('accepts the configured origin and path, absolute or as a path', () => {
    expect(
      confineUrl('https://dev-1.okta.com/api/v1/logs?after=a1', target, 'offsite_link').href,
    ).toBe('https://dev-1.okta.com/api/v1/logs?after=a1');
    expect(
      confineUrl('https://dev-1.okta.com:443/api/v1/logs?x=1#f', target, 'offsite_link').href,
    ).toBe('https://dev-1.okta.com/api/v1/logs?x=1');
    expect(confineUrl('/api/v1/logs?after=z', target, 'offsite_cursor').href).toBe(
      'https://dev-1.okta.com/api/v1/logs?after=z',
    );
  });

  it.each([
    ['http://dev-1.okta.com/api/v1/logs', 'scheme'],
    ['ftp://dev-1.okta.com/api/v1/logs', 'scheme'],
    ['https://evil.example/api/v1/logs', 'host'],
    ['https://dev-1.okta.com.evil.example/api/v1/logs', 'host'],
    ['https://dev-1.okta.com:8443/api/v1/logs', 'port'],
    ['https://user:pw@dev-1.okta.com/api/v1/logs', 'userinfo'],
    ['https://dev-1.okta.com@evil.example/api/v1/logs', 'userinfo'],
    ['https://dev-1.okta.com\\@evil.example/api/v1/logs', 'backslash'],
    ['/\\evil.example/api/v1/logs', 'backslash'],
    ['//evil.example/api/v1/logs', 'protocol_relative'],
    // The finding of issue #17: parses with host "okta", path "//127.0.0.1:18082/...".
    ['https://dev-1.okta.com//127.0.0.1:18082/api/v1/logs', 'protocol_relative'],
    ['//127.0.0.1:18082/api/v1/logs?after=x', 'protocol_relative'],
    ['/%2F%2Fevil.example/api/v1/logs', 'encoded'],
    ['/api/v1/logs%2f..%2f..%2fadmin', 'encoded'],
    ['/api/v1/%2e%2e/users', 'encoded'],
    ['/api/v1/users', 'path'],
    ['/api/v1/logs/../users', 'path'],
    ['\t//evil.example/api/v1/logs', 'malformed'],
    ['/api/v1/logs?after=a\nb', 'malformed'],
    ['api/v1/logs', 'malformed'],
    ['javascript:alert(1)', 'malformed'],
    ['', 'malformed'],
  ])('refuses %s (%s)', (raw, kind) => {
    expect(kindOf(raw)).toBe(kind);
  });

  it('confines to a path prefix when no exact path is given (fetcher guard)', () => {
    const prefix = { base: new URL('https://kc.example/auth') };
    expect(kindOf('https://kc.example/auth/admin/realms/r/events', prefix)).toBe('accepted');
    expect(kindOf('https://kc.example/other', prefix)).toBe('path');
    expect(kindOf('https://kc.example/authx/y', prefix)).toBe('path');
  });

  it('names the source in details.reason (the metric label), never the URL', () => {
    try {
      confineUrl('https://evil.example/steal?token=abc', target, 'offsite_cursor');
      expect.unreachable();
    } catch (err) {
      expect((err as OffsiteUrlError).details).toEqual({ reason: 'offsite_cursor', kind: 'host' });
      expect((err as Error).message).not.toContain('evil');
    }
  });
});
