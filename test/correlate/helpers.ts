import { createHash } from 'node:crypto';
import type { Finding } from '../../src/domain/finding.js';
import type { ProviderEvent, ProviderEventType } from '../../src/domain/provider-event.js';
import type { TokenEvent, TokenEventType } from '../../src/domain/token-event.js';
import { Correlator } from '../../src/correlate/correlator.js';
import type { CorrelatorOptions, KindRule } from '../../src/correlate/options.js';
import type { Clock } from '../../src/correlate/types.js';

export const T0 = 1_700_000_000_000;

export class FakeClock implements Clock {
  t = T0;
  now(): number {
    return this.t;
  }
}

/** A well-formed fingerprint (`hmac-sha256:<keyId>:<hex>`) standing in for the HMAC of `secret`. */
export const fp = (secret: string): string =>
  `hmac-sha256:k1:${createHash('sha256').update(secret).digest('hex')}`;

export const KINDS: KindRule[] = [
  { kind: 'session', joins: { sessionId: 'sid', subject: 'sub' }, fingerprintIsTokenId: false },
  {
    kind: 'access_token',
    joins: { tokenId: 'jti', subject: 'sub', clientId: 'client' },
    maxTtlSeconds: 3600,
  },
  {
    kind: 'refresh_token',
    joins: { tokenId: 'rt', subject: 'sub', clientId: 'client', sessionId: 'sid' },
    fingerprintIsTokenId: false,
  },
];

export interface TokenRef {
  kind: string;
  fingerprint: string;
  keyAttrs: Record<string, string>;
}

/** `session:{sid}` carrying the subject. */
export const session = (sid: string, sub = 'alice'): TokenRef => ({
  kind: 'session',
  fingerprint: fp(sid),
  keyAttrs: { sid: fp(sid), sub },
});

/** `at:{sub}:{client}:{jti}`. */
export const access = (jti: string, sub = 'alice', client = 'web'): TokenRef => ({
  kind: 'access_token',
  fingerprint: fp(jti),
  keyAttrs: { sub, client, jti: fp(jti) },
});

/** `rt:{sid}:{rt}`: first secret placeholder is the session. */
export const refresh = (rt: string, sid: string, sub = 'alice', client = 'web'): TokenRef => ({
  kind: 'refresh_token',
  fingerprint: fp(sid),
  keyAttrs: { sid: fp(sid), rt: fp(rt), sub, client },
});

/** A correlator driven by a fake clock, numbering evidence seqs from 1. */
export class World {
  readonly clock = new FakeClock();
  readonly c: Correlator;
  seq = 0;
  #providerIds = 0;

  constructor(
    options: CorrelatorOptions = {},
    restoreFrom?: { snapshot: unknown; at: number; seq: number },
  ) {
    const opts = { kinds: KINDS, ...options };
    if (restoreFrom) {
      this.clock.t = restoreFrom.at;
      this.seq = restoreFrom.seq;
      this.c = Correlator.fromSnapshot(opts, { clock: this.clock }, restoreFrom.snapshot);
    } else this.c = new Correlator(opts, { clock: this.clock });
  }

  /**
   * A restart: this world's snapshot through JSON (as the ledger stores it), restored into a new
   * correlator whose clock is `downMs` later, resumed as the service does.
   */
  restart(downMs: number, options: CorrelatorOptions = {}): World {
    const snapshot = JSON.parse(JSON.stringify(this.c.snapshot())) as unknown;
    const w = new World(options, { snapshot, at: this.clock.t + downMs, seq: this.seq });
    w.c.resume();
    return w;
  }

  token(type: TokenEventType, ref: TokenRef, extra: Partial<TokenEvent> = {}): Finding[] {
    const now = this.clock.t;
    const setsTtl = type === 'written' || type === 'appeared';
    const ev: TokenEvent = {
      type,
      kind: ref.kind,
      fingerprint: ref.fingerprint,
      keyAttrs: ref.keyAttrs,
      node: 'redis-a:6379',
      db: 0,
      observedAt: now,
      redisEvent: type === 'written' ? 'set' : type,
      ...(setsTtl ? { dueAt: now + 600_000, ttlMs: 600_000 } : {}),
      ...extra,
    };
    return this.c.onTokenEvent(ev, ++this.seq);
  }

  provider(type: ProviderEventType, extra: Partial<ProviderEvent> = {}): Finding[] {
    return this.c.onProviderEvent(this.providerEvent(type, extra), ++this.seq);
  }

  providerEvent(type: ProviderEventType, extra: Partial<ProviderEvent> = {}): ProviderEvent {
    const now = this.clock.t;
    return {
      provider: 'okta',
      id: `evt-${++this.#providerIds}`,
      type,
      occurredAt: now,
      observedAt: now,
      tokenIds: [],
      outcome: 'success',
      vendorType: type,
      attributes: {},
      ...extra,
    };
  }

  /** Advances the clock in 1 s steps, ticking after each, as the service does. */
  advance(ms: number): Finding[] {
    const out: Finding[] = [];
    const end = this.clock.t + ms;
    while (this.clock.t < end) {
      this.clock.t = Math.min(end, this.clock.t + 1000);
      out.push(...this.c.tick());
    }
    return out;
  }

  tick(): Finding[] {
    return this.c.tick();
  }
}

export const rules = (fs: readonly Finding[]): string[] => fs.map((f) => `${f.rule}:${f.state}`);
