import { describe, expect, it } from 'vitest';
import { EventNames, MAX_EVENT_NAMES } from '../../src/keyspace/event-names.js';

const PREFIX = '__keyevent@0__:';
const channel = (name: string) => Buffer.from(PREFIX + name, 'latin1');

describe('EventNames', () => {
  it('reads the name after the prefix, as latin1', () => {
    const names = new EventNames(PREFIX.length);
    for (const n of ['set', 'expire', 'del', 'expired', 'rename_from', 'rename_to', 'x\u00e9'])
      expect(names.of(channel(n))).toBe(n);
    expect(names.of(Buffer.from(PREFIX, 'latin1'))).toBe('');
  });

  it('tells apart names of the same length and names that are prefixes of others', () => {
    const names = new EventNames(PREFIX.length);
    const seen = ['del', 'set', 'expire', 'expired', 'hset', 'hdel', 'new'].map((n) =>
      names.of(channel(n)),
    );
    expect(seen).toEqual(['del', 'set', 'expire', 'expired', 'hset', 'hdel', 'new']);
    expect(
      ['set', 'del', 'expired', 'expire', 'hdel', 'hset'].map((n) => names.of(channel(n))),
    ).toEqual(['set', 'del', 'expired', 'expire', 'hdel', 'hset']);
  });

  it("keeps Redis' own event names whatever was PUBLISHed before them", () => {
    const names = new EventNames(PREFIX.length);
    for (let i = 0; i < MAX_EVENT_NAMES * 2; i++) names.of(channel(`junk${i}`));
    for (const n of ['set', 'expire', 'del', 'expired', 'evicted', 'rename_to', 'keymiss']) {
      const ch = channel(n);
      // a kept name is found by its bytes: never decoded again
      ch.toString = () => {
        throw new Error(`${n} decoded`);
      };
      expect(names.of(ch)).toBe(n);
    }
  });

  it('keeps at most MAX_EVENT_NAMES names, and still names every channel past them', () => {
    const names = new EventNames(PREFIX.length);
    const many = Array.from({ length: MAX_EVENT_NAMES + 50 }, (_, i) => `e${i}`);
    for (const n of many) expect(names.of(channel(n))).toBe(n);
    for (const n of many) expect(names.of(channel(n))).toBe(n);
    // the kept ones are the same string each time; the others are decoded anew (equal, not kept)
    expect(names.of(channel('e0'))).toBe(names.of(channel('e0')));
  });
});
