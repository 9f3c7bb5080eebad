import { describe, expect, it } from 'vitest';
import { KeyTemplate, toLatin1 } from '../../src/keyspace/key-template.js';

describe('key templates', () => {
  it('matches literal text and placeholders', () => {
    const t = new KeyTemplate('tenant:{tenant}:rt:{token}');
    expect(t.placeholders).toEqual(['tenant', 'token']);
    expect(t.match('tenant:acme:rt:abc')).toEqual({ tenant: 'acme', token: 'abc' });
    expect(t.match('tenant:acme:rt:abc:with:colons')).toEqual({
      tenant: 'acme',
      token: 'abc:with:colons',
    });
    expect(t.match('tenant::rt:abc')).toBeUndefined();
    expect(t.match('tenant:acme:rt:')).toBeUndefined();
    expect(t.match('tenant:acme:xx:abc')).toBeUndefined();
    expect(t.match('xtenant:acme:rt:abc')).toBeUndefined();
  });

  it('handles the {sub}:{scope} shape and trailing literals', () => {
    expect(new KeyTemplate('{sub}:{scope}').match('u1:read')).toEqual({ sub: 'u1', scope: 'read' });
    expect(new KeyTemplate('{sub}:{scope}').match('u1')).toBeUndefined();
    const t = new KeyTemplate('sess:{sid}:data');
    expect(t.match('sess:abc:data')).toEqual({ sid: 'abc' });
    expect(t.match('sess:abc:datax')).toBeUndefined();
    expect(t.match('sess::data')).toBeUndefined();
    expect(t.prefix).toBe('sess:');
  });

  it('is binary safe and linear on hostile 1 MB keys', () => {
    const t = new KeyTemplate('oauth:access:{token}');
    const bin = Buffer.concat([
      Buffer.from('oauth:access:'),
      Buffer.from([0, 255, 10, 13]),
    ]).toString('latin1');
    expect(t.match(bin)).toEqual({ token: '\u0000\u00ff\n\r' });
    const evil = new KeyTemplate('a:{x}:b:{y}:c:{z}');
    const key = `a:${'b:'.repeat(500_000)}`;
    const started = performance.now();
    expect(evil.match(key)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('matches UTF-8 literals against latin1 keys', () => {
    const t = new KeyTemplate('jeton:été:{token}');
    expect(t.match(toLatin1('jeton:été:abc'))).toEqual({ token: 'abc' });
  });

  it('rejects invalid templates with a typed error', () => {
    for (const bad of ['nothing', 'a:{x}{y}', 'a:{x}:{x}', 'a:{x', 'a:{1x}', 'a:}x{']) {
      expect(() => new KeyTemplate(bad), bad).toThrow(
        expect.objectContaining({ code: 'ERR_TEMPLATE_INVALID' }),
      );
    }
  });
});
