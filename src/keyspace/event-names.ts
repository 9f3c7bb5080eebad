/** Distinct names kept; past it a name is made per notification (a hostile PUBLISH cannot grow it). */
export const MAX_EVENT_NAMES = 64;

/**
 * Redis' own keyevent names that token keys see, kept from the start: names PUBLISHed by anyone
 * else cannot take their places (they would only make the look-up slower).
 */
const REDIS_EVENTS = [
  'set',
  'expire',
  'del',
  'expired',
  'evicted',
  'persist',
  'rename_from',
  'rename_to',
  'restore',
  'copy_to',
  'hset',
  'hdel',
  'new',
  'keymiss',
];

/**
 * The event names of one node's keyevent channels (`__keyevent@<db>__:<event>`), each made into
 * a string once. Redis publishes a small set of them (set, expire, del, expired, ...), so a
 * notification's name is found by comparing its bytes instead of decoding a new string per
 * notification (issue #19: two per SET EX in a drain, all of them alive while a backlog waits).
 * Anyone who may PUBLISH can send other names on these channels: those beyond MAX_EVENT_NAMES
 * are decoded every time, never kept.
 */
export class EventNames {
  readonly #prefix: number;
  readonly #bytes: Buffer[] = [];
  readonly #names: string[] = [];

  /** `prefix`: the length of the channel prefix in front of the name. */
  constructor(prefix: number) {
    this.#prefix = prefix;
    for (const name of REDIS_EVENTS) {
      this.#bytes.push(Buffer.from(name, 'latin1'));
      this.#names.push(name);
    }
  }

  /**
   * The name in the channel `buf[start, end)` after the prefix: latin1, as
   * `buf.toString('latin1', start + prefix, end)`.
   */
  of(buf: Buffer, start = 0, end = buf.length): string {
    const from = Math.min(start + this.#prefix, end);
    const length = end - from;
    const known = this.#bytes;
    next: for (let n = 0; n < known.length; n++) {
      const b = known[n] as Buffer;
      if (b.length !== length) continue;
      for (let i = 0; i < length; i++) if (b[i] !== buf[from + i]) continue next;
      return this.#names[n] as string;
    }
    const name = buf.toString('latin1', from, end);
    if (known.length < MAX_EVENT_NAMES) {
      known.push(Buffer.from(name, 'latin1'));
      this.#names.push(name);
    }
    return name;
  }
}
