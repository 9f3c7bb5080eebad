import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AuditInput, Committed } from '../audit/record.js';
import type { CacheMetricsConfig } from '../config/cache-health-schema.js';
import type { ProviderEvent } from '../domain/provider-event.js';
import type { TokenEvent } from '../domain/token-event.js';
import type { CacheHealthMetrics, EndReason } from '../metrics/cache-health-metrics.js';
import { ReadSampler, type SampleWindow, type SamplerState } from './read-sampler.js';
import { RecentlyEnded } from './recently-ended.js';
import type { TokenRules } from './token-rules.js';

export interface CacheHealthOptions {
  config: CacheMetricsConfig;
  rules: TokenRules;
  metrics: CacheHealthMetrics;
  /** Fingerprinter.prefix: provider fingerprints under other key ids cannot match. */
  fingerprintPrefix: string;
  maxKeyBytes: number;
  /** Provider event types that revoke (the correlator's revocationEventTypes). */
  revocationTypes: ReadonlySet<string>;
  append: (input: AuditInput) => void;
  now: () => number;
  logger: Logger;
  /** How often miss counts are summarised into a `cache.misses` audit record. */
  summaryIntervalMs?: number;
}

const ENDS: Partial<Record<TokenEvent['type'], EndReason>> = {
  deleted: 'deleted',
  expired: 'expired',
  evicted: 'evicted',
  vanished: 'deleted',
};

type Counts = Record<string, number>;

/**
 * Cache health per token kind (issue #21): exact misses from `keymiss` notifications, misses on
 * tokens that ended recently, and sampled read windows that turn into a hit ratio. Fed by the
 * node watchers (keymiss), the committed audit batches (token ends, in commit order) and the
 * provider events (revocations). Only kinds, counts and truncated HMAC digests are kept.
 */
export class CacheHealth {
  readonly recent: RecentlyEnded;
  readonly #o: CacheHealthOptions;
  readonly #samplers = new Map<string, ReadSampler>();
  #misses: Counts = {};
  #afterEnd: Record<string, Counts> = {};
  #summaryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: CacheHealthOptions) {
    this.#o = options;
    this.recent = new RecentlyEnded({
      maxEntries: options.config.recentlyEnded.maxEntries,
      horizonMs: options.config.recentlyEnded.horizonSeconds * 1000,
    });
  }

  get keyMisses(): boolean {
    return this.#o.config.keyMisses;
  }

  /** The flags the node watchers must manage on top of the base ones. */
  get extraFlags(): string {
    return this.#o.config.keyMisses ? 'm' : '';
  }

  start(): void {
    if (!this.keyMisses) return;
    this.#summaryTimer = setInterval(
      () => this.flushSummary(),
      this.#o.summaryIntervalMs ?? 60_000,
    );
    this.#summaryTimer.unref();
  }

  /** One `keymiss` notification of `node` (the key as Redis sent it). */
  onKeyMiss(node: string, key: Buffer, at: number): void {
    const sampler = this.#samplers.get(node);
    if (key.length > this.#o.maxKeyBytes) {
      sampler?.onKeyMiss('', undefined);
      return;
    }
    const k = key.toString('latin1');
    const hit = this.#o.rules.identify(k);
    sampler?.onKeyMiss(k, hit?.kind);
    if (!hit) return;
    const m = this.#o.metrics;
    m.lookups.inc({ kind: hit.kind, result: 'miss' });
    this.#misses[hit.kind] = (this.#misses[hit.kind] ?? 0) + 1;
    const end = this.recent.get(hit.digest, at);
    if (end) {
      m.missesAfterEnd.inc({ kind: hit.kind, end });
      const per = (this.#afterEnd[hit.kind] ??= {});
      per[end] = (per[end] ?? 0) + 1;
    }
  }

  /** Committed audit batches: remember token ends, forget tokens written again. */
  onCommitted(batch: readonly Committed[]): void {
    if (!this.keyMisses) return;
    const prefix = this.#o.fingerprintPrefix;
    for (const c of batch) {
      if (c.event?.type === 'provider') {
        this.onProviderEvent(c.event.event);
        continue;
      }
      if (c.event?.type !== 'token') continue;
      const ev = c.event.event;
      const end = ENDS[ev.type];
      if (end) this.recent.endFingerprint(ev.fingerprint, prefix, end, ev.observedAt);
      else if (ev.type === 'written' || ev.type === 'appeared') {
        const d = digestOf(ev.fingerprint, prefix);
        if (d) this.recent.forget(d);
      }
    }
  }

  /** A provider event (authenticated delivery): revocations mark their token and session ids. */
  onProviderEvent(ev: ProviderEvent): void {
    if (!this.keyMisses || ev.outcome === 'failure' || !this.#o.revocationTypes.has(ev.type))
      return;
    const at = ev.observedAt;
    const prefix = this.#o.fingerprintPrefix;
    for (const id of ev.tokenIds) this.recent.endFingerprint(id, prefix, 'revoked', at);
    if (ev.sessionId) this.recent.endFingerprint(ev.sessionId, prefix, 'revoked', at);
  }

  /** A Redis node to sample (when metrics.readSampling is set). */
  addNode(node: string, base: Redis, commands: Redis, markerTag?: () => string | undefined): void {
    const s = this.#o.config.readSampling;
    if (!s || this.#closed || this.#samplers.has(node)) return;
    const m = this.#o.metrics;
    for (const outcome of ['ok', 'refused', 'failed']) m.sampleWindows.inc({ node, outcome }, 0);
    m.samplingActive.set({ node }, 0);
    const sampler = new ReadSampler({
      node,
      base,
      commands,
      rules: this.#o.rules,
      maxKeyBytes: this.#o.maxKeyBytes,
      windowMs: s.windowMs,
      everyMs: s.everySeconds * 1000,
      now: this.#o.now,
      logger: this.#o.logger,
      onWindow: (w) => this.#onWindow(w),
      onState: (st) => this.#onState(node, st),
      markerTag,
    });
    this.#samplers.set(node, sampler);
    sampler.start();
  }

  removeNode(node: string): void {
    const s = this.#samplers.get(node);
    if (!s) return;
    this.#samplers.delete(node);
    void s.close();
    this.#o.metrics.samplingActive.remove({ node });
  }

  /** The sampler of a node (tests run windows on demand). */
  sampler(node: string): ReadSampler | undefined {
    return this.#samplers.get(node);
  }

  /** For /readyz: what the cache-health side does and, where it does not, why (undefined: off). */
  details(): Record<string, unknown> | undefined {
    if (!this.keyMisses) return undefined;
    const out: Record<string, unknown> = { keyMisses: this.keyMisses };
    if (this.#o.config.readSampling) {
      const nodes: Record<string, SamplerState> = {};
      for (const [node, s] of this.#samplers) nodes[node] = s.state;
      out.readSampling = nodes;
    }
    return out;
  }

  /** Writes the misses counted since the last summary as one `cache.misses` record. */
  flushSummary(): void {
    if (Object.keys(this.#misses).length === 0) return;
    this.#o.append({
      time: this.#o.now(),
      source: 'redis',
      type: 'cache.misses',
      attrs: { afterEnd: this.#afterEnd, misses: this.#misses },
    });
    this.#misses = {};
    this.#afterEnd = {};
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#summaryTimer);
    await Promise.all([...this.#samplers.values()].map((s) => s.close()));
    this.#samplers.clear();
    this.flushSummary();
  }

  #onWindow(w: SampleWindow): void {
    const m = this.#o.metrics;
    m.sampleWindows.inc({ node: w.node, outcome: 'ok' });
    for (const [kind, reads] of Object.entries(w.reads)) {
      const misses = Math.min(reads, w.misses[kind] ?? 0);
      m.sampledReads.inc({ kind }, reads);
      m.sampledMisses.inc({ kind }, misses);
      m.hitRatio.set({ kind }, (reads - misses) / reads);
      m.hitRatioSampleSize.set({ kind }, reads);
    }
    this.#o.append({
      time: w.end,
      source: 'redis',
      type: 'cache.read_sample',
      attrs: { end: w.end, misses: w.misses, node: w.node, reads: w.reads, start: w.start },
    });
  }

  #onState(node: string, s: SamplerState): void {
    const m = this.#o.metrics;
    m.samplingActive.set({ node }, s.state === 'sampling' ? 1 : 0);
    if (s.state === 'refused' || s.state === 'failed') {
      m.sampleWindows.inc({ node, outcome: s.state });
      // No estimate without windows: the ratio is absent rather than stale.
      if (this.#samplers.size <= 1) {
        m.hitRatio.reset();
        m.hitRatioSampleSize.reset();
      }
    }
  }
}

function digestOf(fingerprint: string, prefix: string): string | undefined {
  if (!fingerprint.startsWith(prefix)) return undefined;
  const hex = fingerprint.slice(prefix.length);
  return /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex').toString('latin1') : undefined;
}
