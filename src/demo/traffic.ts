import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Keys of one logged-in user: a session, its access token and its refresh token. */
export interface Login {
  sid: string;
  access: string;
  refresh: string;
}

const id = (): string => randomBytes(12).toString('base64url');
const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the generator did, for the summary. */
export interface TrafficStats {
  logins: number;
  rotations: number;
  logouts: number;
  /** Commands Redis refused (OOM while memory is full, ...). */
  refused: number;
}

/**
 * Realistic token life in the shape of the default token rules: logins write a session, an
 * access token and a refresh token with TTLs (some access tokens short-lived, so they expire
 * during the demo); refreshes rotate both tokens; logouts delete all three.
 */
export class TokenTraffic {
  readonly stats: TrafficStats = { logins: 0, rotations: 0, logouts: 0, refused: 0 };
  readonly #redis: Redis;
  readonly #logins = new Map<string, Login>();

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /** Currently logged-in users. */
  get logins(): Login[] {
    return [...this.#logins.values()];
  }

  async login(): Promise<Login> {
    const l: Login = { sid: id(), access: id(), refresh: id() };
    // A third of the access tokens live 3-15 s: they expire while the demo runs.
    const accessTtl = Math.random() < 0.33 ? 3 + Math.floor(Math.random() * 12) : 300;
    await this.#run(
      this.#redis
        .multi()
        .set(`session:${l.sid}`, 'user', 'EX', 1800)
        .set(`oauth:access:${l.access}`, 'at', 'EX', accessTtl)
        .set(`oauth:refresh:${l.refresh}`, 'rt', 'EX', 86_400),
    );
    this.#logins.set(l.sid, l);
    this.stats.logins += 1;
    return l;
  }

  /** Refresh-token rotation: new access and refresh token, the old ones deleted. */
  async rotate(): Promise<void> {
    const l = pick(this.logins);
    if (!l) return;
    const next: Login = { sid: l.sid, access: id(), refresh: id() };
    await this.#run(
      this.#redis
        .multi()
        .set(`oauth:access:${next.access}`, 'at', 'EX', 300)
        .set(`oauth:refresh:${next.refresh}`, 'rt', 'EX', 86_400)
        .del(`oauth:refresh:${l.refresh}`, `oauth:access:${l.access}`),
    );
    this.#logins.set(l.sid, next);
    this.stats.rotations += 1;
  }

  async logout(l = pick(this.logins)): Promise<void> {
    if (!l) return;
    this.#logins.delete(l.sid);
    await this.#run(
      this.#redis
        .multi()
        .del(`session:${l.sid}`, `oauth:access:${l.access}`, `oauth:refresh:${l.refresh}`),
    );
    this.stats.logouts += 1;
  }

  /** Forget a login whose keys were removed by someone else (webhook scene, evictions). */
  forget(sid: string): void {
    this.#logins.delete(sid);
  }

  /** One step of steady traffic: about `rate` logins, half as many refreshes and logouts. */
  async tick(rate: number): Promise<void> {
    const n = (x: number): number => Math.floor(x) + (Math.random() < x % 1 ? 1 : 0);
    const jobs: Promise<unknown>[] = [];
    for (let i = n(rate); i > 0; i--) jobs.push(this.login());
    for (let i = n(rate / 2); i > 0; i--) jobs.push(this.rotate());
    // Keep the population around 300 users: more logouts above it.
    const logoutRate = (rate / 2) * (this.#logins.size > 300 ? 3 : 1);
    for (let i = n(logoutRate); i > 0; i--) jobs.push(this.logout());
    await Promise.all(jobs);
  }

  /** Writes without TTL (a client that forgot `EX`) and a PERSIST that removes one. */
  async tokensWithoutExpiry(): Promise<string> {
    for (let i = 0; i < 3; i++) await this.#run(this.#redis.set(`oauth:refresh:${id()}`, 'rt'));
    const l = pick(this.logins);
    if (l) await this.#run(this.#redis.persist(`session:${l.sid}`));
    return `3 refresh tokens written without TTL, PERSIST on ${l ? 1 : 0} session`;
  }

  /** Churn spike: ten times the login rate for a few seconds, then a mass logout. */
  async churnSpike(rate: number, ms: number): Promise<string> {
    const before = { ...this.stats };
    const end = Date.now() + ms;
    while (Date.now() < end) {
      await this.tick(rate * 10);
      await sleep(200);
    }
    const victims = this.logins.filter(() => Math.random() < 0.6);
    await Promise.all(victims.map((l) => this.logout(l)));
    return `${this.stats.logins - before.logins} logins, ${this.stats.logouts - before.logouts} logouts (mass logout of ${victims.length})`;
  }

  /** A blind spot: the keyspace subscriber is killed while tokens keep changing. */
  async blindSpot(): Promise<string> {
    const killed = (await this.#redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) as number;
    // Changes in this window are lost to pub/sub; reconciliation (SCAN) finds them afterwards.
    for (let i = 0; i < 5; i++) await this.login();
    await this.logout();
    return `${killed} subscriber connection(s) killed; 5 logins and 1 logout while blind`;
  }

  /**
   * Mass eviction: large cache values without TTL fill `maxmemory`; with `volatile-lru` Redis
   * evicts keys that have a TTL, the tokens. The values are deleted afterwards.
   */
  async massEviction(): Promise<string> {
    const evicted = async (): Promise<number> =>
      Number(/evicted_keys:(\d+)/.exec(await this.#redis.info('stats'))?.[1] ?? 0);
    const start = await evicted();
    const blob = 'x'.repeat(256 * 1024);
    const keys: string[] = [];
    for (let i = 0; i < 200; i++) {
      const key = `demo:cache-blob:${i}`;
      try {
        await this.#redis.set(key, blob);
        keys.push(key);
      } catch {
        break; // OOM: nothing with a TTL left to evict
      }
      if ((await evicted()) - start >= 150) break;
    }
    const n = (await evicted()) - start;
    if (keys.length > 0) await this.#run(this.#redis.del(...keys));
    // Evicted logins are gone from Redis; later refreshes of them would resurrect keys.
    const live = new Set(
      await Promise.all(
        this.logins.map(async (l) => ((await this.#redis.exists(`session:${l.sid}`)) ? l.sid : '')),
      ),
    );
    for (const l of this.logins) if (!live.has(l.sid)) this.forget(l.sid);
    return `${keys.length} cache values of 256 KiB written, Redis evicted ${n} keys`;
  }

  async #run(cmd: Promise<unknown> | { exec(): Promise<unknown> }): Promise<void> {
    try {
      const r = 'exec' in cmd ? await cmd.exec() : await cmd;
      // MULTI replies carry per-command errors ([err, value] pairs).
      if (Array.isArray(r) && r.some((x) => Array.isArray(x) && x[0])) this.stats.refused += 1;
    } catch {
      this.stats.refused += 1;
    }
  }
}
