import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/schema.js';
import { TokenwatchError } from '../errors.js';

type RedisConfig = Config['redis'];

export type ConnectionRole = 'subscriber' | 'commands';

export interface Endpoint {
  host: string;
  port: number;
}

/** `host:port` (IPv6 in brackets) -> endpoint. */
export function parseHostPort(value: string): Endpoint {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value);
  if (!m) throw new TokenwatchError('ERR_CONFIG_INVALID', `not a host:port: ${value}`);
  return { host: m[1] as string, port: Number(m[2]) };
}

export function endpointLabel(e: Endpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/**
 * Builds ioredis connections with the configured credentials (ACL user), TLS and db, for a
 * standalone URL, a discovered Cluster node or a Sentinel-managed master. Files (CA, cert,
 * key) are read once. The subscriber never auto-resubscribes: the watcher resubscribes itself
 * before reconciling, so the order "subscribe, then SCAN" holds after every reconnect.
 */
export class RedisConnector {
  readonly #cfg: RedisConfig;
  readonly #url: URL;
  readonly #tls: ConnectionOptions | undefined;

  constructor(cfg: RedisConfig) {
    this.#cfg = cfg;
    this.#url = new URL(cfg.url);
    const wantsTls = this.#url.protocol === 'rediss:' || cfg.tls !== undefined;
    this.#tls = wantsTls ? readTls(cfg.tls) : undefined;
  }

  /** The standalone endpoint from `redis.url`. */
  get urlEndpoint(): Endpoint {
    return {
      host: this.#url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(this.#url.port || 6379),
    };
  }

  #base(role: ConnectionRole): RedisOptions {
    const username = this.#cfg.username ?? (decodeURIComponent(this.#url.username) || undefined);
    const password = this.#cfg.password ?? (decodeURIComponent(this.#url.password) || undefined);
    const opts: RedisOptions = {
      lazyConnect: true,
      db: this.#cfg.db,
      username,
      password,
      tls: this.#tls,
      connectionName: role === 'subscriber' ? 'tokenwatch-keyspace' : 'tokenwatch-commands',
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
    };
    if (role === 'subscriber') {
      opts.autoResubscribe = false;
      opts.maxRetriesPerRequest = null;
    } else {
      opts.maxRetriesPerRequest = 1;
    }
    return opts;
  }

  /** A connection to one node (standalone or a Cluster master). */
  forNode(e: Endpoint, role: ConnectionRole): Redis {
    // Cluster nodes only have db 0; SELECT would fail there.
    return new Redis({
      ...this.#base(role),
      host: e.host,
      port: e.port,
      ...(this.#cfg.cluster ? { db: 0 } : {}),
    });
  }

  /** A one-shot connection (topology probes): fails fast instead of retrying. */
  forProbe(e: Endpoint): Redis {
    return new Redis({
      ...this.#base('commands'),
      host: e.host,
      port: e.port,
      db: 0,
      connectionName: 'tokenwatch-topology',
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      // connectTimeout ends once TCP connects: a stopped node must not hold the ready check.
      commandTimeout: 2000,
    });
  }

  /**
   * The coordination Redis of several instances (docs/ha.md): `url` when given (its own
   * credentials in the URL, TLS for rediss://), else the watched deployment itself: the
   * standalone server, the Sentinel master, or the Cluster (leases carry the node id in a hash
   * tag, so each script's keys share a slot). Commands time out after `commandTimeoutMs`: a
   * partitioned instance then fails its renewals instead of waiting on them.
   */
  forCoordination(url: string | undefined, commandTimeoutMs: number): Redis | Cluster {
    const tune = (o: RedisOptions): RedisOptions => ({
      ...o,
      connectionName: 'tokenwatch-coordination',
      commandTimeout: commandTimeoutMs,
      maxRetriesPerRequest: 0,
      lazyConnect: false,
    });
    if (url !== undefined) {
      const u = new URL(url);
      return new Redis(url, {
        ...tune({}),
        tls: u.protocol === 'rediss:' ? (this.#tls ?? {}) : undefined,
        retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 2000),
      });
    }
    const base = tune(this.#base('commands'));
    if (this.#cfg.cluster) {
      return new Cluster(this.#cfg.cluster.nodes.map(parseHostPort), {
        redisOptions: { ...base, db: 0 },
        lazyConnect: false,
        enableOfflineQueue: true,
      });
    }
    if (this.#cfg.sentinel) {
      const s = this.#cfg.sentinel;
      return new Redis({
        ...base,
        sentinels: s.sentinels.map(parseHostPort),
        name: s.name,
        role: 'master',
        sentinelPassword: s.password,
        enableTLSForSentinelMode: this.#tls !== undefined,
      });
    }
    const e = this.urlEndpoint;
    return new Redis({ ...base, host: e.host, port: e.port });
  }

  /** A connection to whichever node Sentinel names as the master now. */
  forSentinelMaster(role: ConnectionRole): Redis {
    const s = this.#cfg.sentinel;
    if (!s) throw new TokenwatchError('ERR_CONFIG_INVALID', 'redis.sentinel is not configured');
    return new Redis({
      ...this.#base(role),
      sentinels: s.sentinels.map(parseHostPort),
      name: s.name,
      role: 'master',
      sentinelPassword: s.password,
      sentinelRetryStrategy: (times) => Math.min(200 * times, 2000),
      enableTLSForSentinelMode: this.#tls !== undefined,
    });
  }
}

function readTls(tls: RedisConfig['tls']): ConnectionOptions {
  const read = (file: string | undefined, key: string): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new TokenwatchError('ERR_CONFIG_INVALID', `redis.tls.${key}: cannot read ${file}`, {
        cause: err,
      });
    }
  };
  return {
    ca: read(tls?.ca, 'ca'),
    cert: read(tls?.cert, 'cert'),
    key: read(tls?.key, 'key'),
    servername: tls?.servername,
    rejectUnauthorized: tls?.rejectUnauthorized ?? true,
  };
}
