import type { Redis } from 'ioredis';
import type { Snapshot } from './inventory.js';
import type { TokenRules } from './token-rules.js';

/** One token key a SCAN page found, with its PEXPIRETIME (Redis clock; null = no TTL). */
export interface FoundToken {
  kind: string;
  digest: string;
  due: number | null;
  /** The raw key: only to classify it (fingerprints, key attributes); never stored or logged. */
  key: Buffer;
}

export interface ScanResult {
  snapshot: Snapshot;
  scanned: number;
  matched: number;
  unmatched: number;
  durationMs: number;
}

/**
 * Reads every token key of a node with SCAN (binary-safe) and its expiry with PEXPIRETIME
 * (absolute, Redis >= 7.0), so the result compares exactly with what live events recorded. Keys
 * that vanish between SCAN and PEXPIRETIME (-2) are simply not in the snapshot. Tokens are keyed
 * by their fingerprint digest (TokenRules.identify), as the inventory keys them.
 *
 * `expiries` looks up a SCAN page with one script call per 1000 keys (the event applier's
 * EVALSHA, with its pipeline fallback); the next SCAN page is requested before this one is
 * classified, so Redis scans while we fingerprint.
 */
export async function scanSnapshot(
  client: Redis,
  rules: TokenRules,
  options: {
    count: number;
    maxKeyBytes: number;
    expiries: (keys: Buffer[]) => Promise<number[]>;
    /**
     * Called with each page's tokens once their expiries are known, before the next page is
     * read: the baseline records them as it goes (a million keys never sit in memory as keys).
     */
    onPage?: (page: FoundToken[]) => void | Promise<void>;
  },
): Promise<ScanResult> {
  const started = performance.now();
  const snapshot: Snapshot = new Map();
  for (const k of rules.kinds) snapshot.set(k, new Map());
  const scan = (cursor: string) => {
    const p = client.scanBuffer(cursor, 'COUNT', options.count);
    // Prefetched: when this reconciliation fails before awaiting it, its rejection is not an
    // unhandled one (the await below still sees it).
    p.catch(() => undefined);
    return p;
  };
  let page = scan('0');
  let cursor: string;
  let scanned = 0;
  let matched = 0;
  let unmatched = 0;
  do {
    const [next, keys] = await page;
    cursor = next.toString();
    if (cursor !== '0') page = scan(cursor);
    scanned += keys.length;
    const found: { kind: string; digest: string }[] = [];
    const tokens: FoundToken[] = [];
    const lookup: Buffer[] = [];
    for (const key of keys) {
      const c =
        key.length > options.maxKeyBytes ? undefined : rules.identify(key.toString('latin1'));
      if (!c) {
        unmatched += 1;
        continue;
      }
      found.push(c);
      lookup.push(key);
    }
    if (found.length === 0) continue;
    const replies = await options.expiries(lookup);
    for (let i = 0; i < found.length; i++) {
      const f = found[i] as { kind: string; digest: string };
      const key = lookup[i] as Buffer;
      const t = replies[i];
      // An unanswered look-up fails the reconciliation (it is retried), never guesses.
      if (typeof t !== 'number' || Number.isNaN(t))
        throw new Error('PEXPIRETIME failed during SCAN');
      if (t === -2) continue;
      matched += 1;
      let m = snapshot.get(f.kind);
      if (!m) {
        m = new Map();
        snapshot.set(f.kind, m);
      }
      m.set(f.digest, t === -1 ? null : t);
      if (options.onPage)
        tokens.push({ kind: f.kind, digest: f.digest, due: t === -1 ? null : t, key });
    }
    if (tokens.length > 0) await options.onPage?.(tokens);
  } while (cursor !== '0');
  return { snapshot, scanned, matched, unmatched, durationMs: performance.now() - started };
}

/** Offset of the Redis clock against ours (ms): redisTime - localTime, from TIME. */
export async function clockOffset(client: Redis, now: () => number): Promise<number> {
  const t0 = now();
  const [sec, usec] = (await client.call('TIME')) as [string, string];
  const t1 = now();
  // Whole ms: the estimate is only good to half a round trip anyway.
  return Math.round(Number(sec) * 1000 + Number(usec) / 1000 - (t0 + t1) / 2);
}

/** keyspace_hits / keyspace_misses from INFO stats. */
export async function readHitMiss(client: Redis): Promise<{ hits: number; misses: number }> {
  const text = (await client.call('INFO', 'stats')) as string;
  const get = (name: string): number => {
    const m = new RegExp(`^${name}:(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { hits: get('keyspace_hits'), misses: get('keyspace_misses') };
}

/** How many FLUSHDB / FLUSHALL (sync or async) the node has executed, from INFO commandstats. */
export async function readFlushCount(client: Redis): Promise<number> {
  const text = (await client.call('INFO', 'commandstats')) as string;
  let n = 0;
  for (const m of text.matchAll(/^cmdstat_(?:flushdb|flushall):calls=(\d+)/gm)) n += Number(m[1]);
  return n;
}
