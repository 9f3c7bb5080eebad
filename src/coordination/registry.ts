import type { CoordinationClient } from './lease.js';

/**
 * Live instances read at most (the earliest expiries first: real instances refresh to now + ttl).
 * A ZSET flooded by whoever can write the coordination Redis costs a round this many ids, not
 * the whole set (docs/ha.md, threat model).
 */
export const MAX_LIVE_INSTANCES = 256;

/**
 * Register (or refresh) ARGV[1] until server time + ARGV[2] ms, forget expired members, and
 * return the live ones: expiry in the future, but not past now + ARGV[3] (the registration ttl
 * every instance shares): a member no refresh can have written (e.g. `ZADD` with a score years
 * ahead, by someone else) is not live. At most ARGV[4] ids. Times come from the coordination
 * Redis' TIME, so no instance clock matters (docs/ha.md, clock drift).
 */
const REFRESH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[2] ~= '0' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, now + tonumber(ARGV[3]), 'LIMIT', 0, tonumber(ARGV[4]))
`;

export interface InstanceRegistryOptions {
  client: CoordinationClient;
  keyPrefix: string;
  instanceId: string;
  /** How long a registration lives without a refresh (ms). */
  ttlMs: number;
}

/**
 * The live instances, in the ZSET `<p>instances` (member = instance id, score = expiry in the
 * coordination Redis' own clock). Refreshed with the lease renewals; an instance that stops
 * refreshing drops out after `ttlMs`, and the others then take its nodes over.
 */
export class InstanceRegistry {
  readonly #o: InstanceRegistryOptions;

  constructor(o: InstanceRegistryOptions) {
    this.#o = o;
  }

  get key(): string {
    return `${this.#o.keyPrefix}instances`;
  }

  /** Registers this instance (again) and returns every live instance id, sorted. */
  async refresh(): Promise<string[]> {
    return this.#run(String(Math.round(this.#o.ttlMs)));
  }

  /** The live instances without registering. */
  async live(): Promise<string[]> {
    return this.#run('0');
  }

  /** Leaves at once (graceful shutdown): the others need not wait for the registration to expire. */
  async leave(): Promise<void> {
    await this.#o.client.zrem(this.key, this.#o.instanceId);
  }

  async #run(ttl: string): Promise<string[]> {
    const r = (await this.#o.client.eval(
      REFRESH,
      1,
      this.key,
      this.#o.instanceId,
      ttl,
      String(Math.round(this.#o.ttlMs)),
      String(MAX_LIVE_INSTANCES),
    )) as string[];
    return [...r].sort();
  }
}
