import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Redis } from 'ioredis';
import type { AuditRecord } from '../../src/audit/record.js';
import { assignNodes } from '../../src/coordination/assignment.js';
import { comparePosition, parsePosition } from '../../src/domain/position.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

/** Lease of the in-process HA tests (ms): short, so takeovers happen within a test. */
export const LEASE_MS = 3000;

export interface HaFixture {
  /** The watched (and coordination) Redis; set in beforeAll. */
  readonly redis: RedisServer;
  /** An admin client of it; set in beforeAll. */
  readonly admin: Redis;
  /** Starts an in-process instance with coordination on (stopped after each test). */
  start: (id: string, prefix: string, extra?: string) => Harness;
  records: (h: Harness, type: string) => AuditRecord[];
  /** Token records of live events (not the baseline's SCAN). */
  tokens: (h: Harness) => AuditRecord[];
  node: () => string;
  /**
   * Two instance ids, the first the one rendezvous hashing desires for the node (else the
   * second, once registered, would take the node over by a graceful handover: scale-out).
   */
  ids: () => [string, string];
  owner: (h: Harness) => Promise<void>;
  writeTokens: (prefix: string, count: number) => Promise<void>;
  /** Resolves once an owner wrote a marker under `prefix`. */
  firstMarker: (prefix: string) => Promise<void>;
  /**
   * Resolves once the committed position under `prefix` is at or past every live token record
   * of `h`: a takeover from then on replays nothing `h` recorded. (The owner publishes it a
   * moment after its ledger confirms the records; a test that cuts `h` off before then makes
   * the takeover replay from `h`'s epoch start instead: right, but a different scenario.)
   */
  committedThrough: (h: Harness, prefix: string) => Promise<void>;
  /**
   * An ACL user of its own for one instance's coordination connection (`yaml`: the config lines
   * that use it), so that `cutOff()` can cut that instance from the leases (no EVAL, no ZREM: a
   * partition) while its watcher keeps receiving notifications. Deleted after the test.
   */
  coordinationUser: (name: string) => Promise<{ yaml: string; cutOff: () => Promise<void> }>;
}

/**
 * Two or more in-process instances on one real Redis (issue #20): registers the file's
 * beforeAll / afterEach / afterAll. Instances share the fingerprint key (docs/ha.md): their
 * ledgers then name tokens alike.
 */
export function useHaFixture(hmacKey: string): HaFixture {
  let redis: RedisServer | undefined;
  let admin: Redis | undefined;
  const harnesses: Harness[] = [];
  const users: string[] = [];
  const env = { TOKENWATCH_HMAC_KEY: hmacKey };

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.stop().catch(() => undefined);
    for (const u of users.splice(0)) await admin?.call('ACL', 'DELUSER', u);
    await admin?.flushall();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const fx: HaFixture = {
    get redis() {
      if (!redis) throw new Error('the HA fixture is used before its beforeAll');
      return redis;
    },
    get admin() {
      if (!admin) throw new Error('the HA fixture is used before its beforeAll');
      return admin;
    },
    start: (id, prefix, extra = '') => {
      const yaml = `
coordination:
  enabled: true
  instanceId: ${id}
  keyPrefix: '${prefix}'
  leaseMs: ${LEASE_MS}
  safetyMs: 500
${extra}`;
      const h = startApp(fx.redis.url, { yaml, env });
      harnesses.push(h);
      return h;
    },
    records: (h, type) => h.app.ledger.list({ type }),
    tokens: (h) =>
      h.app.ledger.list({ type: 'token.*' }).filter((r) => r.attrs.redisEvent !== 'scan'),
    node: () => `127.0.0.1:${fx.redis.port}`,
    ids: () => {
      const desired = assignNodes([fx.node()], ['inst-a', 'inst-b']).get(fx.node());
      return desired === 'inst-a' ? ['inst-a', 'inst-b'] : ['inst-b', 'inst-a'];
    },
    owner: async (h) => {
      await waitFor(() => h.app.coordinator?.role(fx.node()) === 'owner', 15_000, 'ownership');
    },
    writeTokens: async (prefix, count) => {
      const p = fx.admin.pipeline();
      for (let i = 0; i < count; i++) p.set(`oauth:access:${prefix}-${i}`, 'v', 'EX', 600);
      await p.exec();
    },
    firstMarker: async (prefix) => {
      await waitFor(
        async () => (await fx.admin.keys(`${prefix}marker:*`)).length > 0,
        15_000,
        'first marker',
      );
    },
    committedThrough: async (h, prefix) => {
      const last = fx
        .tokens(h)
        .map((r) => parsePosition(String(r.attrs.pos)))
        .reduce(
          (m, p) => (p && (!m || comparePosition(p, m) > 0) ? p : m),
          undefined as ReturnType<typeof parsePosition> | undefined,
        );
      if (!last) throw new Error('committedThrough: no positioned token record to wait for');
      await waitFor(
        async () => {
          const v = await fx.admin.get(`${prefix}committed:{${fx.node()}}`);
          const p = v === null ? undefined : parsePosition(v.slice(0, v.lastIndexOf(':')));
          return p !== undefined && comparePosition(p, last) >= 0;
        },
        15_000,
        'committed position past the records',
      );
    },
    coordinationUser: async (name) => {
      await fx.admin.call('ACL', 'SETUSER', name, 'on', `>pw-${name}`, '~*', '&*', '+@all');
      users.push(name);
      return {
        yaml: `  redis: redis://${name}:pw-${name}@127.0.0.1:${fx.redis.port}`,
        cutOff: async () => {
          await fx.admin.call('ACL', 'SETUSER', name, '-eval', '-zrem');
        },
      };
    },
  };
  return fx;
}
