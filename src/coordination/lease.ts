import type { Cluster, Redis } from 'ioredis';

/**
 * How long `last` and `committed` of a node outlive its last owner (ms): refreshed by every
 * acquisition, renewal and publish, so only the keys of a node nobody has held for this long (a
 * Cluster master that left) expire. The epoch counter keeps no expiry: a counter that started
 * over would repeat epochs, and with them stream positions, of the node's earlier owners.
 */
export const NODE_KEY_TTL_MS = 7 * 24 * 3600 * 1000;
/** The coordination Redis: a standalone/Sentinel connection or a Cluster client. */
export type CoordinationClient = Redis | Cluster;

/**
 * Acquire: only when nobody holds the lease. The epoch counter is incremented in the same
 * script, so epochs of successful acquisitions are consecutive per node (docs/ha.md: unless the
 * coordination Redis loses the counter). The previous holder (`last`) is returned and replaced.
 * Returns {epoch, previous} or {0, current holder}.
 */
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
local epoch = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ':' .. epoch
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
local prev = redis.call('GET', KEYS[3])
redis.call('SET', KEYS[3], value, 'PX', ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return {epoch, prev or ''}
`;

/**
 * Renew: extend only the caller's own lease (compare, then PEXPIRE), and the node's `last` and
 * `committed` keys by NODE_KEY_TTL_MS.
 */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`;

/** Release: delete only the caller's own lease (compare-and-DEL). */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/** Publish committed: fenced by the lease value, so a stale owner cannot move it. */
const PUBLISH = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`;

export interface LeaseHolder {
  instance: string;
  epoch: number;
}

export type AcquireResult =
  | { acquired: true; epoch: number; previous: LeaseHolder | null }
  | { acquired: false; holder: LeaseHolder | null };

/** `<instanceId>:<epoch>` -> holder (instance ids may themselves contain ':'). */
export function parseHolder(value: string | null | undefined): LeaseHolder | null {
  if (!value) return null;
  const i = value.lastIndexOf(':');
  const epoch = Number(value.slice(i + 1));
  if (i <= 0 || !Number.isSafeInteger(epoch)) return null;
  return { instance: value.slice(0, i), epoch };
}

export interface LeaseStoreOptions {
  client: CoordinationClient;
  /** `coordination.keyPrefix`, e.g. `tokenwatch:`. */
  keyPrefix: string;
  instanceId: string;
  /** Expiry of `last` / `committed` (default NODE_KEY_TTL_MS; tests shorten it). */
  nodeKeyTtlMs?: number;
}

/**
 * Per-node leases with fencing epochs on the coordination Redis. Keys per node (the node id in
 * a hash tag, so that one script's keys share a slot when the coordination Redis is a Cluster):
 * `<p>lease:{<node>}` = `<instanceId>:<epoch>` (PX leaseMs), `<p>epoch:{<node>}` (counter, no
 * TTL), `<p>last:{<node>}` (the last acquired lease value) and `<p>committed:{<node>}` (the last
 * committed stream position the owner published), both PX NODE_KEY_TTL_MS, refreshed.
 */
export class LeaseStore {
  readonly #c: CoordinationClient;
  readonly #p: string;
  readonly instanceId: string;
  readonly #nodeKeyTtlMs: number;

  constructor(o: LeaseStoreOptions) {
    this.#nodeKeyTtlMs = Math.round(o.nodeKeyTtlMs ?? NODE_KEY_TTL_MS);
    this.#c = o.client;
    this.#p = o.keyPrefix;
    this.instanceId = o.instanceId;
  }

  key(kind: 'lease' | 'epoch' | 'last' | 'committed', node: string): string {
    return `${this.#p}${kind}:{${node}}`;
  }

  #value(epoch: number): string {
    return `${this.instanceId}:${epoch}`;
  }

  async acquire(node: string, leaseMs: number): Promise<AcquireResult> {
    const r = (await this.#c.eval(
      ACQUIRE,
      4,
      this.key('lease', node),
      this.key('epoch', node),
      this.key('last', node),
      this.key('committed', node),
      this.instanceId,
      String(Math.round(leaseMs)),
      String(this.#nodeKeyTtlMs),
    )) as [number, string];
    const [epoch, other] = r;
    if (epoch === 0) return { acquired: false, holder: parseHolder(other) };
    return { acquired: true, epoch, previous: parseHolder(other) };
  }

  /** True when the lease was still ours and now runs `leaseMs` from the server's receipt. */
  async renew(node: string, epoch: number, leaseMs: number): Promise<boolean> {
    const r = await this.#c.eval(
      RENEW,
      3,
      this.key('lease', node),
      this.key('last', node),
      this.key('committed', node),
      this.#value(epoch),
      String(Math.round(leaseMs)),
      String(this.#nodeKeyTtlMs),
    );
    return r === 1;
  }

  async release(node: string, epoch: number): Promise<boolean> {
    const r = await this.#c.eval(RELEASE, 1, this.key('lease', node), this.#value(epoch));
    return r === 1;
  }

  /** Sets `committed:<node>` to `pos` only while this instance holds the lease at `epoch`. */
  async publishCommitted(node: string, epoch: number, pos: string): Promise<boolean> {
    const r = await this.#c.eval(
      PUBLISH,
      2,
      this.key('lease', node),
      this.key('committed', node),
      this.#value(epoch),
      pos,
      String(this.#nodeKeyTtlMs),
    );
    return r === 1;
  }

  async readCommitted(node: string): Promise<string | null> {
    return this.#c.get(this.key('committed', node));
  }

  /** Milliseconds the node's lease still lives on the server (negative: no lease). */
  async remainingMs(node: string): Promise<number> {
    return this.#c.pttl(this.key('lease', node));
  }

  /** Who holds the node's lease now (null: nobody). */
  async holder(node: string): Promise<LeaseHolder | null> {
    return parseHolder(await this.#c.get(this.key('lease', node)));
  }
}
