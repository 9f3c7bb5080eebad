/**
 * The ground truth of a scripted scenario: what the driver did to Redis, logged as it does it,
 * in the report's own terms (docs/compliance.md "How each number is computed").
 */

export type Kind = 'access_token' | 'refresh_token' | 'session';
export const KINDS: Kind[] = ['access_token', 'refresh_token', 'session'];

export const kindOf = (key: string): Kind =>
  key.startsWith('oauth:access:')
    ? 'access_token'
    : key.startsWith('oauth:refresh:')
      ? 'refresh_token'
      : 'session';

export type TruthEvent =
  'write' | 'appeared' | 'ttl_changed' | 'deleted' | 'expired' | 'evicted' | 'vanished';

const zeros = (): Record<string, number> => ({
  issued: 0,
  refreshed: 0,
  deleted: 0,
  expired: 0,
  evicted: 0,
  vanished: 0,
  present: 0,
});

export class Truth {
  /** Token keys live in Redis now. */
  readonly live = new Map<string, { kind: Kind }>();
  readonly lifecycle: Record<Kind, Record<string, number>> = {
    access_token: zeros(),
    refresh_token: zeros(),
    session: zeros(),
  };
  /** Tokens with a TTL-stating record in the period (write, appear, TTL change, present). */
  readonly ttlStated = Object.fromEntries(KINDS.map((k) => [k, new Set<string>()])) as Record<
    Kind,
    Set<string>
  >;
  /** token.written records the driver caused (SET), per kind. */
  readonly writes: Record<Kind, number> = { access_token: 0, refresh_token: 0, session: 0 };
  /** Revocation propagation latencies, seconds, measured by the driver's clock. */
  readonly latencies: number[] = [];

  /** A token that existed before the period (not counted in the lifecycle). */
  existing(key: string): void {
    this.live.set(key, { kind: kindOf(key) });
  }

  log(event: TruthEvent, key: string): void {
    const kind = kindOf(key);
    const l = this.lifecycle[kind];
    if (event === 'write') {
      this.writes[kind] += 1;
      l[this.live.has(key) ? 'refreshed' : 'issued']! += 1;
      this.live.set(key, { kind });
      this.ttlStated[kind].add(key);
    } else if (event === 'appeared') {
      l.issued! += 1;
      this.live.set(key, { kind });
      this.ttlStated[kind].add(key);
    } else if (event === 'ttl_changed') {
      l.refreshed! += 1;
      this.ttlStated[kind].add(key);
    } else {
      l[event]! += 1;
      this.live.delete(key);
    }
  }

  /** A restart's reconciliation found the live tokens (but `except`) unchanged: `present`. */
  presentAgain(except: ReadonlySet<string>): void {
    for (const [k, t] of this.live) {
      if (except.has(k)) continue;
      this.lifecycle[t.kind].present! += 1;
      this.ttlStated[t.kind].add(k);
    }
  }

  /** Live tokens per kind. */
  sizes(): Record<Kind, number> {
    const out: Record<Kind, number> = { access_token: 0, refresh_token: 0, session: 0 };
    for (const t of this.live.values()) out[t.kind] += 1;
    return out;
  }

  /** Nearest-rank quantile of the latencies (as the report computes it). */
  latency(q: number): number {
    const sorted = [...this.latencies].sort((x, y) => x - y);
    return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
  }
}
