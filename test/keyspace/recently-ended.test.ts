import { describe, expect, it } from 'vitest';
import { RecentlyEnded } from '../../src/keyspace/recently-ended.js';
import { readKeys, unescapeMonitorArg } from '../../src/keyspace/read-commands.js';

const d = (n: number) =>
  String.fromCharCode(...Array.from({ length: 32 }, (_, i) => (n + i) % 256));

describe('RecentlyEnded', () => {
  it('remembers how a token ended within the horizon, and forgets after it', () => {
    const r = new RecentlyEnded({ maxEntries: 10, horizonMs: 1000 });
    r.end(d(1), 'deleted', 10_000);
    expect(r.get(d(1), 10_500)).toBe('deleted');
    expect(r.get(d(2), 10_500)).toBeUndefined();
    expect(r.get(d(1), 11_001)).toBeUndefined();
    expect(r.size).toBe(0);
  });

  it('keeps revoked sticky over the deletion that follows, not the other way round', () => {
    const r = new RecentlyEnded({ maxEntries: 10, horizonMs: 60_000 });
    r.end(d(1), 'revoked', 1000);
    r.end(d(1), 'deleted', 1005);
    expect(r.get(d(1), 2000)).toBe('revoked');
    r.end(d(2), 'deleted', 1000);
    r.end(d(2), 'revoked', 1010);
    expect(r.get(d(2), 2000)).toBe('revoked');
  });

  it('is bounded: the oldest entry goes first', () => {
    const r = new RecentlyEnded({ maxEntries: 3, horizonMs: 60_000 });
    for (let i = 0; i < 5; i++) r.end(d(i), 'expired', 1000 + i);
    expect(r.size).toBe(3);
    expect(r.evictions).toBe(2);
    expect(r.get(d(0), 2000)).toBeUndefined();
    expect(r.get(d(4), 2000)).toBe('expired');
  });

  it('maps fingerprints of the current key only, and ignores malformed ones', () => {
    const r = new RecentlyEnded({ maxEntries: 10, horizonMs: 60_000 });
    const hex = 'ab'.repeat(32);
    r.endFingerprint(`hmac-sha256:k1:${hex}`, 'hmac-sha256:k1:', 'revoked', 1000);
    r.endFingerprint(`hmac-sha256:k0:${'cd'.repeat(32)}`, 'hmac-sha256:k1:', 'revoked', 1000);
    r.endFingerprint('hmac-sha256:k1:nothex', 'hmac-sha256:k1:', 'revoked', 1000);
    expect(r.size).toBe(1);
    expect(r.get(Buffer.from(hex, 'hex').toString('latin1'), 1500)).toBe('revoked');
  });
});

describe('read commands in the MONITOR stream', () => {
  it('finds the keys of counted reads only', () => {
    expect(readKeys(['GET', 'k'])).toEqual(['k']);
    expect(readKeys(['mget', 'a', 'b'])).toEqual(['a', 'b']);
    expect(readKeys(['HMGET', 'h', 'f1', 'f2'])).toEqual(['h']);
    expect(readKeys(['EXISTS', 'a', 'b'])).toEqual(['a', 'b']);
    expect(readKeys(['SET', 'k', 'v'])).toEqual([]);
    expect(readKeys(['GET'])).toEqual([]);
    expect(readKeys([])).toEqual([]);
  });

  it("undoes Redis' quoting into the key's raw bytes", () => {
    expect(unescapeMonitorArg('plain')).toBe('plain');
    expect(unescapeMonitorArg('a\\x00\\xff')).toBe('a\x00\xff');
    expect(unescapeMonitorArg('a\\\\b')).toBe('a\\b');
    expect(unescapeMonitorArg('a\\\\x41')).toBe('a\\x41');
    expect(unescapeMonitorArg('\\n\\r\\t')).toBe('\n\r\t');
    // UTF-8 arrives as escaped bytes: the latin1 string of those bytes, as notifications carry it.
    expect(unescapeMonitorArg('\\xc3\\xa9')).toBe(Buffer.from('é', 'utf8').toString('latin1'));
  });
});

describe('cluster key slots', () => {
  it('matches the slots Redis documents (CRC16/XMODEM mod 16384, hash tags)', async () => {
    const { keySlot, tagForSlots } = await import('../../src/keyspace/cluster-slot.js');
    // CLUSTER KEYSLOT answers: foo 12182, bar 5061, {user1000}.following = user1000 = 3443.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('user1000')).toBe(3443);
    expect(keySlot('{}x')).toBe(keySlot('{}x')); // empty tag: the whole key
    const tag = tagForSlots([[100, 200]]);
    expect(tag).toBeDefined();
    const slot = keySlot(`{${tag as string}}`);
    expect(slot >= 100 && slot <= 200).toBe(true);
    expect(tagForSlots([])).toBeUndefined();
  });
});
